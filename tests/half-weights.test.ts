// Frozen weights kept in 16 bits (LoadOptions.halfWeights): the unpack kernel gives every bf16 and f16 bit pattern
// exactly its float32 value on cpu and WASM, and a bf16/f16 checkpoint loaded this way computes the same logits and
// trains to the same losses as when loaded in float32, with its linear weights in half the bytes and no tensor left
// behind per step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../workers/engine/tf';
import { Engine } from '../workers/engine/engine';
import { fullLogits } from '../workers/engine/generate';
import { f16ToF32Bits } from '../workers/engine/safetensors';
import { packHalves, unpackHalf } from '../workers/engine/ops/unpack-half';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';
import { LINEAR_MODULES } from '../workers/shared/defaults';
import { linearShape } from '../workers/engine/config';
import { modelDir } from './helpers';
import { chats, makeTrainer } from './train-helpers';

const PROMPT = [1, 20, 77, 140, 3, 250, 99, 12, 2, 45, 300, 7];

async function load(name: string, backend: 'wasm' | 'cpu', halfWeights: boolean): Promise<Engine> {
  setupNodeHost();
  const engine = new Engine();
  await engine.loadFiles(new DirModelFiles(modelDir(name)), { backend, halfWeights });
  return engine;
}

async function logits(engine: Engine): Promise<Float32Array> {
  const t = fullLogits(engine.current.model, PROMPT);
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`the unpack kernel on ${backend}`, () => {
    it('gives every f16 and bf16 bit pattern its exact float32 value, in order', async () => {
      setupNodeHost();
      await new Engine().loadFiles(new DirModelFiles(modelDir('llama-tied-gqa-f32')), { backend });
      const all = new Uint16Array(65536).map((_, i) => i);
      const words = tf.tensor(packHalves(all), [256, 128], 'int32');
      for (const format of ['f16', 'bf16'] as const) {
        const out = unpackHalf(words, format);
        expect(out.shape).toEqual([256, 256]);
        const bits = new Uint32Array(((await out.data()) as Float32Array).buffer);
        out.dispose();
        let wrong = 0;
        for (let h = 0; h < 65536; h++) if (bits[h] !== (format === 'bf16' ? h << 16 : f16ToF32Bits(h)) >>> 0) wrong++;
        expect(wrong, format).toBe(0);
      }
      words.dispose();
    });
  });

  describe.each(['qwen2-bias-bf16', 'qwen3-headdim-bf16', 'gemma3-window-bf16', 'llama-untied-mha-f16'])(`%s on ${backend}, linear weights in 16 bits`, (name) => {
    let full: Engine;
    let half: Engine;
    beforeAll(async () => {
      full = await load(name, backend, false);
      half = await load(name, backend, true);
    });
    afterAll(() => {
      full.unload();
      half.unload();
    });

    it('computes the same logits as the float32 weights, exactly', async () => {
      expect(Array.from(await logits(half))).toEqual(Array.from(await logits(full)));
    });

    it('keeps the linear weights in half the bytes', () => {
      const c = full.current.config;
      const linear = c.numLayers * LINEAR_MODULES.reduce((n, m) => n + linearShape(c, m).reduce((a, b) => a * b, 1), 0);
      expect(full.current.model.weightBytes - half.current.model.weightBytes).toBe(2 * linear); // 4 → 2 bytes each
    });

    // Training on the plain JS cpu backend takes ten times as long and proves nothing the logits do not.
    it.runIf(backend === 'wasm')('trains to the same losses, with the tensor count flat across steps', async () => {
      const run = async (engine: Engine) => {
        const t = makeTrainer(engine, chats().slice(0, 4), { epochs: 3, batchSize: 4, valSplit: 0, learningRate: 1e-2 }, { dropout: 0 });
        const losses: number[] = [];
        const counts: number[] = [];
        await t.run((e) => {
          if (e.type === 'steps') for (const p of e.points) losses.push(p.loss);
          counts.push(tf.memory().numTensors);
        });
        t.dispose();
        return { losses, counts };
      };
      const a = await run(full);
      const b = await run(half);
      expect(b.losses).toHaveLength(3);
      expect(b.losses).toEqual(a.losses);
      expect(new Set(b.counts.slice(1)).size).toBeLessThanOrEqual(2); // no tensor left behind per step
    });
  });
}
