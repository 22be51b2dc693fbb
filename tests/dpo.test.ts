// DPO: the per-sequence log-probabilities and the DPO loss against the float64 reference, their gradients
// against its central finite differences; the first step's loss is ln 2 while B = 0; a learning test in which
// the tuned model's preference flips; the per-sequence loss op against per-sequence chunkedLmLoss.
import { describe, expect, it } from 'vitest';
import { LORA_TARGETS, LoraAdapter } from '../workers/engine/lora';
import { collate, tokenizePair, type PreferenceExample } from '../workers/engine/train/examples';
import { dpoTerms, sequenceLogProbs } from '../workers/engine/train/dpo';
import { chunkedLmLoss, chunkedSequenceLosses } from '../workers/engine/train/lm-loss';
import { Trainer, type StepPoint, type TrainEvent, type TrainerOptions } from '../workers/engine/train/trainer';
import { MemoryCheckpointStore } from '../workers/engine/train/checkpoint';
import { DEFAULT_TRAIN } from '../workers/shared/defaults';
import * as tf from '../workers/engine/tf';
import { loadEngine, modelDir } from './helpers';
import { loadRef, refLossSum, type RefModel } from './reference/llama-ref';

const PAIRS: PreferenceExample[] = [
  { prompt: [{ role: 'user', content: 'What is the capital of France?' }], chosen: [{ role: 'assistant', content: 'Paris.' }], rejected: [{ role: 'assistant', content: 'Lyon, I think.' }] },
  { prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Color of the sky?' }], chosen: [{ role: 'assistant', content: 'Blue.' }], rejected: [{ role: 'assistant', content: 'Green and purple.' }] },
  { prompt: [{ role: 'user', content: 'Who wrote Hamlet?' }], chosen: [{ role: 'assistant', content: 'Shakespeare.' }], rejected: [{ role: 'assistant', content: 'Dickens.' }] },
  { prompt: [{ role: 'user', content: 'What do bees make?' }], chosen: [{ role: 'assistant', content: 'Honey.' }], rejected: [{ role: 'assistant', content: 'Milk.' }] },
];

const logSigmoid = (z: number) => Math.min(z, 0) - Math.log1p(Math.exp(-Math.abs(z)));

/** Plain DPO in float64 over the reference model: its log-probs with the adapter (policy) and without (reference). */
function refDpo(ref: RefModel, seqs: { ids: number[]; w: number[] }[], beta: number, eps: number): number {
  const lora = ref.lora;
  const logp = (m: RefModel) => seqs.map((s) => -refLossSum(m, s.ids, s.w));
  const pi = logp(ref);
  ref.lora = undefined;
  const base = logp(ref);
  ref.lora = lora;
  let total = 0;
  for (let p = 0; p < seqs.length / 2; p++) {
    const z = beta * (pi[2 * p] - pi[2 * p + 1] - (base[2 * p] - base[2 * p + 1]));
    total += -(1 - eps) * logSigmoid(z) - eps * logSigmoid(-z);
  }
  return total;
}

describe('DPO', () => {
  it.each([
    ['llama-tied-gqa-f32', 0],
    ['gemma3-v5-softcap-f32', 0.1],
  ])('%s (label smoothing %s): loss and LoRA gradients match the float64 reference and its finite differences', async (NAME, eps) => {
    const engine = await loadEngine(NAME, 'cpu');
    const { model, tokenizer } = engine.current;
    const adapter = LoraAdapter.create(model.config, { rank: 2, alpha: 4, dropout: 0, targets: [...LORA_TARGETS], rslora: false }, 3);
    adapter.variables().forEach((v, i) => {
      if (v.name.includes('lora_B')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i)));
    });
    const pairs = PAIRS.slice(0, 2).map((p) => tokenizePair(tokenizer, p, 512));
    const seqs = pairs.flatMap((p) => [p.chosen, p.rejected]);
    const b = collate(seqs);
    const beta = 0.5;
    // The reference log-probs with the adapter off, as the trainer computes them once.
    const refLogp = tf.tidy(() => sequenceLogProbs(model, b, { adapter, loraScale: 0 }, 5));
    const reference = (await refLogp.data()) as Float32Array;
    refLogp.dispose();
    const { value, grads } = tf.variableGrads(() => tf.sum(dpoTerms(sequenceLogProbs(model, b, { adapter }, 5), reference, beta, eps).loss) as tf.Scalar, adapter.variables());

    const ref = loadRef(modelDir(NAME));
    ref.lora = new Map();
    for (const [path, { A, B }] of adapter.modules) ref.lora.set(path, { A: Float64Array.from(await A.data()), B: Float64Array.from(await B.data()), r: 2, scale: adapter.scale });
    const plain = seqs.map((s) => ({ ids: s.ids, w: Array.from(s.trained.subarray(1)) }));
    const want = refDpo(ref, plain, beta, eps);
    expect((await value.data())[0]).toBeCloseTo(want, 4);
    expect(Math.abs(want - 2 * Math.LN2)).toBeGreaterThan(1e-3); // B ≠ 0: the policy differs from the reference

    for (const [path, which, idx] of [
      ['model.layers.0.self_attn.q_proj', 'A', 5],
      ['model.layers.0.self_attn.v_proj', 'B', 3],
      ['model.layers.1.mlp.down_proj', 'A', 40],
      ['model.layers.1.mlp.gate_proj', 'B', 17],
    ] as const) {
      const engineGrad = (await grads[adapter.modules.get(path)![which].name].data())[idx];
      const arr = ref.lora.get(path)![which];
      const orig = arr[idx];
      const h = 1e-5;
      arr[idx] = orig + h;
      const plus = refDpo(ref, plain, beta, eps);
      arr[idx] = orig - h;
      const minus = refDpo(ref, plain, beta, eps);
      arr[idx] = orig;
      const fd = (plus - minus) / (2 * h);
      expect(Math.abs(fd)).toBeGreaterThan(1e-5);
      expect(Math.abs(engineGrad - fd)).toBeLessThanOrEqual(5e-3 * Math.abs(fd) + 1e-5);
    }
    tf.dispose([value, ...Object.values(grads)]);
    adapter.dispose();
    engine.unload();
  });

  it('per-sequence losses equal chunkedLmLoss of each sequence, and so do their gradients', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'wasm');
    const { model, tokenizer } = engine.current;
    const seqs = PAIRS.slice(0, 2).flatMap((p) => Object.values(tokenizePair(tokenizer, p, 512)));
    const b = collate(seqs);
    const hidden = tf.tidy(() => model.forward(tf.tensor2d(b.ids, [b.B, b.T], 'int32')).reshape([b.B * b.T, -1]) as tf.Tensor2D);
    const rowSeq = Int32Array.from({ length: b.B * b.T }, (_, i) => Math.floor(i / b.T));
    const dy = tf.tensor1d([0.5, -1, 2, 0.25]);
    const dys = await dy.data();
    for (const chunk of [3, 1000]) {
      const before = tf.memory().numTensors;
      const per = chunkedSequenceLosses(hidden, model.head(), b.targets, b.weights, rowSeq, b.B, chunk);
      const got = await per.data();
      // Gradient of Σ dy_s · loss_s equals Σ dy_s · grad(loss of sequence s alone).
      const g = tf.grad((h: tf.Tensor) => tf.sum(tf.mul(chunkedSequenceLosses(h as tf.Tensor2D, model.head(), b.targets, b.weights, rowSeq, b.B, chunk), dy)))(hidden);
      const gv = await g.data();
      tf.dispose([per, g]);
      expect(tf.memory().numTensors).toBe(before); // the op keeps nothing behind
      const want = new Float32Array(gv.length);
      for (let s = 0; s < b.B; s++) {
        const w = b.weights.map((x, i) => (rowSeq[i] === s ? x : 0));
        const [alone, gs] = tf.tidy(() => [chunkedLmLoss(hidden, model.head(), b.targets, w, chunk), tf.grad((h: tf.Tensor) => chunkedLmLoss(h as tf.Tensor2D, model.head(), b.targets, w, chunk))(hidden)]);
        expect(got[s]).toBeCloseTo((await alone.data())[0], 3);
        (await gs.data()).forEach((x, i) => (want[i] += dys[s] * x));
        tf.dispose([alone, gs]);
      }
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(gv[i] - want[i]));
      expect(diff).toBeLessThan(1e-4);
    }
    tf.dispose([hidden, dy]);
    engine.unload();
  });

  it("the first step's loss is ln 2 while B = 0, rewards are 0; then the preference flips on held-out-free training", async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'wasm');
    const { model, tokenizer, id } = engine.current;
    const cfg = { ...DEFAULT_TRAIN, method: 'dpo' as const, beta: 0.1, epochs: 30, batchSize: 4, learningRate: 1e-2, warmupRatio: 0, schedule: 'constant' as const, valSplit: 0 };
    const adapter = LoraAdapter.create(model.config, { rank: 8, alpha: 16, dropout: 0.1, targets: [...LORA_TARGETS], rslora: false }, cfg.seed);
    engine.setAdapter(adapter);
    const pairs = PAIRS.map((p) => tokenizePair(tokenizer, p, 512));
    // Held-out: the same pairs, to read their margins through evaluate().
    const trainer = new Trainer(model, adapter, pairs, pairs, cfg, { runId: 'dpo', baseModel: id, logEvery: 1 });
    const before = await trainer.evaluate();
    expect(before!.rewards!.margin).toBeCloseTo(0, 6);
    expect(before!.valLoss).toBeCloseTo(Math.LN2, 6);
    const events: TrainEvent[] = [];
    const tensors = tf.memory().numTensors;
    await trainer.run((e) => events.push(e));
    const points = events.flatMap((e) => (e.type === 'steps' ? e.points : [])) as StepPoint[];
    expect(points[0].loss).toBeCloseTo(Math.LN2, 6);
    expect(points[0].rewards).toEqual({ chosen: 0, rejected: 0, accuracy: 0, margin: 0 });
    const last = points[points.length - 1];
    expect(last.loss).toBeLessThan(0.1);
    expect(last.rewards!.accuracy).toBe(1);
    expect(last.rewards!.margin).toBeGreaterThan(2);
    const evals = events.flatMap((e) => (e.type === 'eval' ? [e] : []));
    expect(evals[evals.length - 1].rewards!.accuracy).toBe(1);
    // The tuned model now prefers each chosen answer; the base did not prefer them all.
    const margins = async (scale: number) => {
      const b = collate(pairs.flatMap((p) => [p.chosen, p.rejected]));
      const t = tf.tidy(() => sequenceLogProbs(model, b, { adapter, loraScale: scale }, 64));
      const v = await t.data();
      t.dispose();
      return pairs.map((_, p) => v[2 * p] - v[2 * p + 1]);
    };
    expect((await margins(1)).every((m) => m > 0)).toBe(true);
    expect((await margins(0)).some((m) => m < 0)).toBe(true);
    expect(tf.memory().numTensors).toBe(tensors); // every step freed what it made
    trainer.dispose();
    engine.unload();
  });

  it('a DPO run resumed from a checkpoint continues exactly as the uninterrupted run (with dropout)', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'wasm');
    const { model, tokenizer, id } = engine.current;
    const cfg = { ...DEFAULT_TRAIN, method: 'dpo' as const, epochs: 3, batchSize: 2, learningRate: 5e-3, valSplit: 0 };
    const pairs = PAIRS.map((p) => tokenizePair(tokenizer, p, 512));
    const store = new MemoryCheckpointStore();
    const make = (opts: Partial<TrainerOptions>) => {
      const adapter = LoraAdapter.create(model.config, { rank: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj'], rslora: false }, cfg.seed);
      return { adapter, trainer: new Trainer(model, adapter, pairs, [], cfg, { runId: 'dpo-resume', baseModel: id, logEvery: 1, ...opts }) };
    };
    const stepsOf = (events: TrainEvent[]) => events.flatMap((e) => (e.type === 'steps' ? e.points : []));
    const full = make({ store });
    const fullEvents: TrainEvent[] = [];
    await full.trainer.run((e) => fullEvents.push(e));
    const resumed = make({});
    const meta = await resumed.trainer.restore(await store.load('epoch-1'));
    const resumedEvents: TrainEvent[] = [];
    await resumed.trainer.run((e) => resumedEvents.push(e));
    expect(stepsOf(resumedEvents)).toEqual(stepsOf(fullEvents).slice(meta.step));
    expect(stepsOf(resumedEvents)[0].rewards).toBeDefined();
    for (const t of [full, resumed]) {
      t.trainer.dispose();
      t.adapter.dispose();
    }
    engine.unload();
  });
});
