// LoRA: gradients of A and B against central finite differences of the independent float64 reference;
// B = 0 leaves the model unchanged; only A and B receive gradients; masked and padded targets do not count.
import { describe, expect, it } from 'vitest';
import { fullLogits } from '../workers/engine/generate';
import { LORA_TARGETS, LoraAdapter, type LoraTarget } from '../workers/engine/lora';
import { collate, tokenizeExample } from '../workers/engine/train/examples';
import { chunkedLmLoss } from '../workers/engine/train/lm-loss';
import * as tf from '../workers/engine/tf';
import type { ForwardOptions } from '../workers/engine/llama';
import { loadEngine, modelDir } from './helpers';
import { loadRef, refLossSum, type RefModel } from './reference/llama-ref';

// Biases (Qwen2), q/k norms (Qwen3), Gemma's four norms, GELU, sliding windows, and soft-capped scores and logits.
const GRAD_VARIANTS = ['qwen2-bias-bf16', 'qwen3-headdim-bf16', 'gemma3-window-bf16', 'gemma3-v5-softcap-f32'];
const IDS = [1, 20, 77, 140, 3, 250, 99, 12, 2];
const W = [0, 1, 1, 0, 1, 1, 1, 1]; // weight of each next-token target

function lossOf(model: ReturnType<typeof Object>, ids: number[], weights: number[], mode: ForwardOptions = {}): tf.Scalar {
  const m = model as import('../workers/engine/llama').LlamaModel;
  const T = ids.length - 1;
  const hidden = m.forward(tf.tensor2d(ids.slice(0, -1), [1, T], 'int32'), mode);
  const head = m.head();
  return chunkedLmLoss(hidden.reshape([T, -1]) as tf.Tensor2D, head, Int32Array.from(ids.slice(1)), Float32Array.from(weights), 3, m.config.finalSoftcap);
}

describe('LoRA', () => {
  it.each(GRAD_VARIANTS)('%s: gradients of A and B match central finite differences of the float64 reference', async (NAME) => {
    const engine = await loadEngine(NAME, 'cpu');
    const { model } = engine.current;
    const adapter = LoraAdapter.create(model.config, { rank: 2, alpha: 4, dropout: 0, targets: [...LORA_TARGETS], rslora: false }, 7);
    adapter.variables().forEach((v, i) => {
      if (v.name.includes('lora_B')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i)));
    });
    const vars = adapter.variables();
    const { value, grads } = tf.variableGrads(() => lossOf(model, IDS, W, { adapter }), vars);

    // The reference gets the same adapter values, in float64.
    const ref: RefModel = loadRef(modelDir(NAME));
    ref.lora = new Map();
    for (const [path, { A, B }] of adapter.modules) {
      ref.lora.set(path, { A: Float64Array.from(await A.data()), B: Float64Array.from(await B.data()), r: 2, scale: adapter.scale });
    }
    expect((await value.data())[0]).toBeCloseTo(refLossSum(ref, IDS, W), 3);

    const checks: [string, 'A' | 'B', number][] = [
      ['model.layers.0.self_attn.q_proj', 'A', 5],
      ['model.layers.0.self_attn.v_proj', 'B', 3],
      ['model.layers.1.mlp.down_proj', 'A', 40],
      ['model.layers.1.mlp.gate_proj', 'B', 17],
      ['model.layers.1.self_attn.o_proj', 'A', 9],
      ['model.layers.0.mlp.up_proj', 'B', 60],
      [`model.layers.${model.config.numLayers - 1}.self_attn.k_proj`, 'A', 11],
    ];
    for (const [path, which, idx] of checks) {
      const pair = adapter.modules.get(path)!;
      const engineGrad = (await grads[pair[which].name].data())[idx];
      const arr = ref.lora.get(path)![which];
      const h = 1e-5;
      const orig = arr[idx];
      arr[idx] = orig + h;
      const plus = refLossSum(ref, IDS, W);
      arr[idx] = orig - h;
      const minus = refLossSum(ref, IDS, W);
      arr[idx] = orig;
      const fd = (plus - minus) / (2 * h);
      expect(Math.abs(fd)).toBeGreaterThan(1e-4); // a real, non-vanishing gradient
      expect(Math.abs(engineGrad - fd)).toBeLessThanOrEqual(2e-3 * Math.abs(fd) + 1e-5);
    }
    tf.dispose([value, ...Object.values(grads)]);
    adapter.dispose();
    engine.unload();
  });

  it('a fresh adapter (B = 0) leaves the logits unchanged; only A and B receive gradients', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const { model } = engine.current;
    const base = await fullLogits(model, IDS).data();
    const adapter = LoraAdapter.create(model.config, { rank: 4, alpha: 8, dropout: 0, targets: [...LORA_TARGETS], rslora: false }, 1);
    const tuned = await fullLogits(model, IDS, adapter).data();
    expect(Array.from(tuned)).toEqual(Array.from(base));
    // With every trainable variable in scope, the gradients are exactly the adapter's.
    const { value, grads } = tf.variableGrads(() => lossOf(model, IDS, W, { adapter }));
    expect(Object.keys(grads).sort()).toEqual(adapter.variables().map((v) => v.name).sort());
    expect([...model.weights.values()].some((t) => t instanceof tf.Variable)).toBe(false);
    tf.dispose([value, ...Object.values(grads)]);
    adapter.dispose();
    engine.unload();
  });

  it('masked targets and padding do not change the loss', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const { model, tokenizer } = engine.current;
    const head = model.head();
    const batchLoss = async (b: ReturnType<typeof collate>) => {
      const t = tf.tidy(() => {
        const h = model.forward(tf.tensor2d(b.ids, [b.B, b.T], 'int32'));
        return chunkedLmLoss(h.reshape([b.B * b.T, -1]) as tf.Tensor2D, head, b.targets, b.weights, 5);
      });
      const v = (await t.data())[0];
      t.dispose();
      return v;
    };
    const short = tokenizeExample(tokenizer, { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there.' }] }, 512, 'assistant');
    const long = tokenizeExample(tokenizer, { messages: [{ role: 'user', content: 'Tell me about the weather today, please.' }, { role: 'assistant', content: 'It is sunny and warm, about 21 degrees.' }] }, 512, 'assistant');
    // A prompt position's target is masked: changing it changes nothing.
    const b = collate([short]);
    const before = await batchLoss(b);
    const masked = b.weights.findIndex((w) => w === 0);
    b.targets[masked] = (b.targets[masked] + 7) % model.config.vocabSize;
    expect(await batchLoss(b)).toBe(before);
    // Padding: a batch of two equals the sum of each alone.
    const together = await batchLoss(collate([short, long]));
    const apart = (await batchLoss(collate([short]))) + (await batchLoss(collate([long])));
    expect(together).toBeCloseTo(apart, 3);
    // …whatever id the padding has.
    const repadded = collate([short, long]);
    for (let t = short.ids.length - 1; t < repadded.T; t++) repadded.ids[t] = repadded.targets[t] = model.config.vocabSize - 1;
    expect(await batchLoss(repadded)).toBeCloseTo(together, 6);
    engine.unload();
  });
});

describe('examples → tokens', () => {
  it('trains assistant tokens through the end-of-turn marker only; honours weight 0; trainOn all', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const tok = engine.current.tokenizer;
    const ex = {
      messages: [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'Capital of France?' },
        { role: 'assistant' as const, content: 'Paris.', weight: 0 as const },
        { role: 'user' as const, content: 'And Italy?' },
        { role: 'assistant' as const, content: 'Rome.' },
      ],
    };
    const t = tokenizeExample(tok, ex, 512, 'assistant');
    const trainedText = tok.decode(t.ids.filter((_, i) => t.trained[i] === 1), false);
    expect(trainedText).toBe('Rome.<|im_end|>');
    expect(tok.decode(t.ids, false)).toBe(tok.applyChatTemplate(ex.messages, false));
    const all = tokenizeExample(tok, ex, 512, 'all');
    // Everything but the first token and the template's newline after the final <|im_end|> (never generated).
    expect(all.trained.reduce((a, b) => a + b, 0)).toBe(all.ids.length - 2);
    expect(tok.decode(all.ids.filter((_, i) => all.trained[i] === 0), false)).toBe('<|im_start|>\n');
    const cut = tokenizeExample(tok, ex, 10, 'assistant');
    expect(cut.ids.length).toBe(10);
    expect(cut.truncated).toBe(t.ids.length - 10);
    const text = tokenizeExample(tok, { text: 'plain text' }, 512, 'assistant');
    expect(tok.decode(text.ids, false)).toBe('plain text<|im_end|>');
    engine.unload();
  });
});

describe('activation checkpointing', () => {
  // All seven targets; none on the output projections (their recompute is skipped either way); only them.
  it.each([[[...LORA_TARGETS]], [['q_proj', 'v_proj', 'gate_proj']], [['o_proj', 'down_proj']]] as LoraTarget[][][])('gives the same loss and LoRA gradients as keeping every activation, with dropout (targets %j)', async (targets) => {
    for (const name of ['qwen2-bias-bf16', 'gemma3-window-bf16']) await checkpointingAgrees(name, targets); // Gemma: branches end in a norm
  });
});

async function checkpointingAgrees(name: string, targets: LoraTarget[]): Promise<void> {
  {
    const engine = await loadEngine(name, 'cpu');
    const { model } = engine.current;
    const adapter = LoraAdapter.create(model.config, { rank: 2, alpha: 4, dropout: 0.3, targets, rslora: false }, 3);
    adapter.variables().forEach((v, i) => {
      if (v.name.includes('lora_B')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i)));
    });
    const run = async (checkpointing: boolean) => {
      const mode = { adapter, dropout: { rate: 0.3, seed: 99 }, checkpointing };
      const { value, grads } = tf.variableGrads(() => lossOf(model, IDS, W, mode), adapter.variables());
      const out = { loss: (await value.data())[0], grads: await Promise.all(adapter.variables().map(async (v) => Array.from(await grads[v.name].data()))) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const plain = await run(false);
    const before = tf.memory().numTensors;
    const ckpt = await run(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(ckpt.loss).toBeCloseTo(plain.loss, 4);
    plain.grads.forEach((g, i) => g.forEach((v, j) => expect(ckpt.grads[i][j]).toBeCloseTo(v, 4)));
    expect(plain.grads.some((g) => g.some((v) => v !== 0))).toBe(true);
    adapter.dispose();
    engine.unload();
  }
}

describe('base models (no chat template)', () => {
  it('read a prompt/completion pair as raw text and train the completion and the end of sequence only', async () => {
    const engine = await loadEngine('llama-base-notemplate', 'cpu');
    const tok = engine.current.tokenizer;
    expect(tok.hasChatTemplate).toBe(false);
    const t = tokenizeExample(tok, { messages: [{ role: 'user', content: 'The capital of France is' }, { role: 'assistant', content: ' Paris.' }] }, 512, 'assistant');
    expect(tok.decode(t.ids, false)).toBe('The capital of France is Paris.<|im_end|>');
    expect(tok.decode(t.ids.filter((_, i) => t.trained[i] === 1), false)).toBe(' Paris.<|im_end|>');
    const multi = { messages: [{ role: 'user' as const, content: 'a' }, { role: 'assistant' as const, content: 'b' }, { role: 'user' as const, content: 'c' }, { role: 'assistant' as const, content: 'd' }] };
    expect(() => tokenizeExample(tok, multi, 512, 'assistant')).toThrow(/no chat template.*4 messages \(user,assistant,user,assistant\).*plain text .*prompt\/completion/);
    engine.unload();
  });
});
