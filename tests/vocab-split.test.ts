// The embedding and LM head split into row blocks (as on a GPU whose binding limit is below the matrix, e.g.
// Gemma 3's 262,144-row vocabulary): logits, greedy ids, the training loss and every LoRA gradient equal the
// unsplit model's, tied and untied.
import { describe, expect, it } from 'vitest';
import { Engine } from '../workers/engine/engine';
import { fullLogits } from '../workers/engine/generate';
import { LORA_TARGETS, LoraAdapter } from '../workers/engine/lora';
import * as tf from '../workers/engine/tf';
import { chunkedLmLoss } from '../workers/engine/train/lm-loss';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';
import { maxAbs, modelDir } from './helpers';

const IDS = [1, 20, 77, 140, 3, 250, 99, 12, 2, 45, 300, 7];
const W = [0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1];

async function load(name: string, backend: 'cpu' | 'wasm', vocabBlockBytes?: number): Promise<Engine> {
  setupNodeHost();
  const engine = new Engine();
  await engine.loadFiles(new DirModelFiles(modelDir(name)), { backend, vocabBlockBytes });
  return engine;
}

async function lossAndGrads(engine: Engine): Promise<{ loss: number; grads: number[][] }> {
  const { model } = engine.current;
  const adapter = LoraAdapter.create(model.config, { rank: 2, alpha: 4, dropout: 0, targets: [...LORA_TARGETS], rslora: false }, 5);
  adapter.variables().forEach((v, i) => {
    if (v.name.includes('lora_B')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i)));
  });
  const T = IDS.length - 1;
  const { value, grads } = tf.variableGrads(() => {
    const h = model.forward(tf.tensor2d(IDS.slice(0, -1), [1, T], 'int32'), { adapter });
    return chunkedLmLoss(h.reshape([T, -1]) as tf.Tensor2D, model.head(), Int32Array.from(IDS.slice(1)), Float32Array.from(W), 4, model.config.finalSoftcap);
  }, adapter.variables());
  const out = { loss: (await value.data())[0], grads: await Promise.all(adapter.variables().map(async (v) => Array.from(await grads[v.name].data()))) };
  tf.dispose([value, ...Object.values(grads)]);
  adapter.dispose();
  return out;
}

describe.each(['cpu', 'wasm'] as const)('vocabulary in row blocks on %s', (backend) => {
  it.each(['gemma3-window-bf16', 'llama-untied-mha-f16'])('%s: same logits, greedy ids, loss and LoRA gradients as one block', async (name) => {
    const whole = await load(name, backend);
    const C = whole.current.model.config.hiddenSize;
    const split = await load(name, backend, 100 * C * 4); // blocks of 100 rows and a remainder
    const V = split.current.model.config.vocabSize;
    expect(split.current.model.embed.blocks.length).toBe(Math.ceil(V / 100));
    expect(split.current.model.head().blocks.length).toBe(Math.ceil(V / 100));
    expect(split.info()!.tensorBytes).toBe(whole.info()!.tensorBytes);

    const a = (await fullLogits(whole.current.model, IDS).data()) as Float32Array;
    const b = (await fullLogits(split.current.model, IDS).data()) as Float32Array;
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
    expect(err).toBeLessThanOrEqual(1e-5 * maxAbs(a));
    const g1 = await whole.generate({ ids: IDS.slice(0, 5) }, { maxNewTokens: 6 });
    const g2 = await split.generate({ ids: IDS.slice(0, 5) }, { maxNewTokens: 6 });
    expect(g2.ids).toEqual(g1.ids);

    const before = tf.memory().numTensors;
    const x = await lossAndGrads(whole);
    const y = await lossAndGrads(split);
    expect(tf.memory().numTensors).toBe(before);
    expect(y.loss).toBeCloseTo(x.loss, 4);
    x.grads.forEach((g, i) => g.forEach((v, j) => expect(y.grads[i][j]).toBeCloseTo(v, 4)));
    whole.unload();
    split.unload();
  });
});
