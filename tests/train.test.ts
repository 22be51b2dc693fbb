// Training: a tiny model memorises its data; resumes exactly; stops cleanly on non-finite values; early
// stopping restores the best checkpoint; tensor count and bytes stay flat; pause and cancel work.
import { describe, expect, it } from 'vitest';
import { checkpointsToPrune, decodeCheckpoint, MemoryCheckpointStore, type CheckpointMeta } from '../workers/engine/train/checkpoint';
import type { TrainRequest } from '../workers/shared/types';
import { TrainControl, type StepPoint, type TrainEvent } from '../workers/engine/train/trainer';
import * as tf from '../workers/engine/tf';
import { evaluateExample } from '../workers/engine/evaluate';
import { measureTrainingSpeed } from '../workers/engine/train/estimate';
import { loadEngine } from './helpers';
import { chats, makeTrainer, QA } from './train-helpers';

const steps = (events: TrainEvent[]): StepPoint[] => events.flatMap((e) => (e.type === 'steps' ? e.points : []));

describe('training', () => {
  it('learns: the loss falls by more than 90% and greedy generation reproduces every trained answer', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const t = makeTrainer(engine, chats(), { epochs: 100, batchSize: 8, learningRate: 1e-2, warmupRatio: 0, schedule: 'constant', valSplit: 0 });
    const events: TrainEvent[] = [];
    const summary = await t.run((e) => events.push(e));
    const losses = steps(events).map((p) => p.loss);
    expect(summary.status).toBe('done');
    expect(losses.length).toBe(100);
    expect(losses[losses.length - 1]).toBeLessThan(0.1 * losses[0]);
    const accuracy = steps(events).map((p) => p.accuracy!);
    expect(accuracy[0]).toBeLessThan(0.2); // untrained: next to no token right
    expect(accuracy[accuracy.length - 1]).toBeGreaterThan(0.95); // every answer recited
    for (const [q, a] of QA) {
      const r = await engine.generate({ messages: [{ role: 'user', content: q }] }, { maxNewTokens: 48 });
      expect(r.text).toBe(a);
      expect(r.stopReason).toBe('eos');
    }
    // The untouched base model does not know them.
    const base = await engine.generate({ messages: [{ role: 'user', content: QA[0][0] }] }, { maxNewTokens: 48, loraScale: 0 });
    expect(base.text).not.toBe(QA[0][1]);
    t.dispose();
    engine.unload();
  });

  it('a run resumed from a checkpoint continues exactly as the uninterrupted run (with dropout)', async () => {
    const cfg = { epochs: 3, batchSize: 3, gradAccum: 2, learningRate: 5e-3, valSplit: 0 };
    const engine = await loadEngine('llama-tied-gqa-f32');
    const store = new MemoryCheckpointStore();
    const full = makeTrainer(engine, chats(), cfg, { dropout: 0.1 }, { store, logEvery: 1 });
    const fullEvents: TrainEvent[] = [];
    await full.run((e) => fullEvents.push(e));
    full.dispose();
    expect((await store.list()).map((m) => m.name)).toEqual(['epoch-1', 'epoch-2', 'epoch-3']);
    expect(full.stepsPerEpoch).toBe(2); // 8 examples, batches of 3 → 3 batches, 2 per step → 2 steps

    const resumed = makeTrainer(engine, chats(), cfg, { dropout: 0.1 }, { logEvery: 1 });
    const meta = await resumed.restore(await store.load('epoch-1'));
    expect(meta.step).toBe(resumed.stepsPerEpoch);
    const resumedEvents: TrainEvent[] = [];
    await resumed.run((e) => resumedEvents.push(e));
    const tail = steps(fullEvents).slice(meta.step);
    expect(steps(resumedEvents)).toEqual(tail);
    resumed.dispose();
    engine.unload();
  });

  it('a non-finite loss stops the run with a clear message; the step is not applied; checkpoints stay intact', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const store = new MemoryCheckpointStore();
    const t = makeTrainer(engine, chats(), { epochs: 3, batchSize: 4, valSplit: 0 }, {}, { store, logEvery: 1 });
    const adapter = engine.adapter!;
    const [poisoned, other] = [adapter.variables()[0], adapter.variables()[5]];
    let otherBefore: Float32Array | null = null;
    const run = t.run((e) => {
      if (e.type === 'checkpoint' && e.meta.name === 'epoch-1') {
        otherBefore = other.dataSync() as Float32Array;
        tf.tidy(() => poisoned.assign(tf.fill(poisoned.shape, NaN))); // a corrupted weight makes the next loss NaN
      }
    });
    await expect(run).rejects.toMatchObject({ name: 'NonFiniteError', message: expect.stringMatching(/Training stopped at step 3: the loss became NaN.*not applied.*resume from checkpoint epoch-1\./) });
    expect(Array.from(other.dataSync())).toEqual(Array.from(otherBefore!)); // the bad step changed nothing
    const saved = await store.list();
    expect(saved.map((m) => m.name)).toEqual(['epoch-1']);
    expect(decodeCheckpoint(await store.load('epoch-1')).meta.step).toBe(2);
    t.dispose();
    engine.unload();
  });

  it('early stopping keeps the best checkpoint and restores its adapter', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const store = new MemoryCheckpointStore();
    // Validation answers contradict the training answers: the more it memorises, the worse validation gets.
    const val = chats(QA.map(([q], i) => [q, QA[(i + 3) % QA.length][1]]));
    const t = makeTrainer(engine, chats(), { epochs: 40, batchSize: 8, learningRate: 1e-2, warmupRatio: 0, schedule: 'constant', evalEvery: 1, earlyStoppingPatience: 2 }, {}, { store }, val);
    const events: TrainEvent[] = [];
    const summary = await t.run((e) => events.push(e));
    const evals = events.flatMap((e) => (e.type === 'eval' ? [e] : []));
    expect(summary.status).toBe('early-stopped');
    expect(summary.steps).toBeLessThan(40);
    const best = Math.min(...evals.map((e) => e.valLoss));
    expect(summary.valLoss).toBe(best);
    expect(evals.slice(-2).every((e) => e.valLoss > best)).toBe(true);
    const again = await t.evaluate();
    expect(again!.valLoss).toBeCloseTo(best, 4); // the live adapter is the best one again
    expect(decodeCheckpoint(await store.load('best')).meta.valLoss).toBe(best);
    t.dispose();
    engine.unload();
  });

  it('every step frees what it allocates: tensor count and bytes stay flat', async () => {
    const engine = await loadEngine('qwen2-bias-bf16');
    const t = makeTrainer(engine, chats(), { epochs: 10, batchSize: 3, gradAccum: 2, valSplit: 0 }, { dropout: 0.1 });
    t.trainStep(0).metrics.dispose();
    const before = tf.memory();
    for (let s = 1; s < 8; s++) {
      const { metrics } = t.trainStep(s);
      await metrics.data();
      metrics.dispose();
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
    }
    t.dispose();
    engine.unload();
  });

  it('pause holds the run between steps; resume continues; cancel ends it', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const t = makeTrainer(engine, chats(), { epochs: 50, batchSize: 2, valSplit: 0 }, {}, { logEvery: 1 });
    const control = new TrainControl();
    const events: TrainEvent[] = [];
    const run = t.run((e) => {
      events.push(e);
      if (e.type === 'steps' && e.points[0].step === 3) control.pause();
    }, control);
    // Wait for the pause to take effect (however busy the machine is), then check nothing runs while paused.
    for (let waited = 0; !events.some((e) => e.type === 'status' && e.status === 'paused') && waited < 30_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    const paused = steps(events).length;
    expect(events.some((e) => e.type === 'status' && e.status === 'paused')).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(steps(events).length).toBe(paused); // nothing ran while paused
    control.resume();
    await new Promise((r) => setTimeout(r, 200));
    control.cancel();
    const summary = await run;
    expect(summary.status).toBe('cancelled');
    expect(summary.steps).toBeGreaterThan(paused);
    expect(summary.steps).toBeLessThan(t.totalSteps);
    t.dispose();
    engine.unload();
  });
});

describe('checkpoint retention', () => {
  it('keeps the newest three epoch checkpoints', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const store = new MemoryCheckpointStore();
    const t = makeTrainer(engine, chats(), { epochs: 5, batchSize: 8, valSplit: 0 }, {}, { store });
    await t.run(() => {});
    expect((await store.list()).map((m) => m.name)).toEqual(['epoch-3', 'epoch-4', 'epoch-5']);
    t.dispose();
    engine.unload();
  });
});

describe('training speed probe', () => {
  it('measures tokens/s on a few real steps and leaves the live adapter and memory as they were', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const t = makeTrainer(engine, chats(), { epochs: 1, valSplit: 0 });
    const live = engine.adapter!;
    await engine.generate({ ids: [1, 2, 3] }, { maxNewTokens: 1 }); // the rotary tables are built on first use
    const before = tf.memory().numTensors;
    const tps = await measureTrainingSpeed(engine, chats(), { batchSize: 2 }, { rank: 4 });
    expect(tps).toBeGreaterThan(0);
    expect(engine.adapter).toBe(live);
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
    engine.unload();
  });
});

describe('run lifetime', () => {
  it('a finished run leaves no tensors behind but the adapter it trained', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    await engine.train({ examples: chats(), train: { epochs: 1, valSplit: 0 } }); // warm: rotary tables, first adapter
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) await engine.train({ examples: chats(), train: { epochs: 1, valSplit: 0.25 } });
    expect(tf.memory().numTensors).toBe(before);
    engine.unload();
  });
});

describe('evaluation', () => {
  it('answers a held-out example with base and tuned models and scores it under both', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    await engine.train({ examples: chats(), train: { epochs: 100, batchSize: 8, learningRate: 1e-2, warmupRatio: 0, schedule: 'constant', valSplit: 0 }, lora: { dropout: 0 } });
    const row = await evaluateExample(engine, chats()[1], 0, 48);
    expect(row).toMatchObject({ index: 0, prompt: QA[1][0], expected: QA[1][1], tuned: QA[1][1] });
    expect(row.base).not.toBe(QA[1][1]);
    expect(row.tunedLoss!).toBeLessThan(0.1 * row.baseLoss);
    // The base side ran at LoRA scale 0 for its own requests only: the live adapter still answers as trained.
    expect((await engine.generate({ messages: [{ role: 'user', content: QA[1][0] }] }, { maxNewTokens: 48 })).text).toBe(QA[1][1]);
    engine.unload();
  });
});

describe('training refuses what it cannot learn from', () => {
  it('a maximum length beyond max_position_embeddings, and a dataset whose every trained token was cut off', async () => {
    const { loadEngine } = await import('./helpers');
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const examples = [{ messages: [{ role: 'user' as const, content: 'What is the capital of France? '.repeat(20) }, { role: 'assistant' as const, content: 'Paris.' }] }];
    await expect(engine.train({ examples, train: { maxSeqLen: 2048, epochs: 1, valSplit: 0 } })).rejects.toThrow(/maximum sequence length \(2048\) is more than this model reads \(max_position_embeddings 512\)\. Set it to 512 or less/);
    await expect(engine.train({ examples, train: { maxSeqLen: 32, epochs: 1, valSplit: 0 } })).rejects.toThrow(/No training example has a token to learn from: 1 of 1 lost every trained \(assistant\) token to the 32-token limit\. Raise the maximum sequence length/);
    expect(engine.adapter).toBeNull(); // nothing was started
    engine.unload();
  });
});

describe('resume and retention', () => {
  it('a resume refuses a checkpoint of another run, naming what differs, and continues its own', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const first = { examples: chats(), runId: 'r', train: { epochs: 2, valSplit: 0 }, lora: { dropout: 0 } };
    await engine.train(first);
    const resume = (change: Partial<TrainRequest>) => engine.train({ ...first, resumeFrom: 'epoch-1', ...change });
    await expect(resume({ train: { ...first.train, learningRate: 1e-3 } })).rejects.toMatchObject({
      name: 'CheckpointMismatchError',
      message: expect.stringMatching(/^Checkpoint epoch-1 belongs to another run: its learningRate is 0\.0002, this run's is 0\.001\. Resume with the same/),
    });
    await expect(resume({ train: { ...first.train, batchSize: 2 } })).rejects.toThrow(/its batchSize is 4, this run's is 2/);
    await expect(resume({ lora: { dropout: 0, targets: ['q_proj', 'v_proj'] } })).rejects.toThrow(/its LoRA targets are \[.*\], this run's are \["q_proj","v_proj"\]/);
    await expect(resume({ examples: chats().slice(1) })).rejects.toThrow(/its number of training examples is 8, this run's is 7/);
    await expect(resume({ examples: chats().reverse() })).rejects.toThrow(/its training data \(fingerprint\) is/);
    expect((await resume({})).steps).toBe(4); // its own run goes on from step 2
    engine.dispose();
  });

  it('retention keeps the newest three epoch checkpoints, the best by validation loss and the one resumed from', () => {
    const meta = (n: number, valLoss: number | null) => ({ name: `epoch-${n}`, runId: 'r', step: n, valLoss }) as CheckpointMeta;
    const stored = [meta(1, 2.0), meta(2, 0.5), meta(3, 1.0), meta(4, 1.1), meta(5, 1.2), meta(6, 1.3), { ...meta(7, 0.1), runId: 'other' }];
    expect(checkpointsToPrune(stored, 'r')).toEqual(['epoch-1', 'epoch-3']); // epoch-2 has the lowest loss
    expect(checkpointsToPrune(stored, 'r', new Set(['epoch-1']))).toEqual(['epoch-3']);
    expect(checkpointsToPrune(stored.map((m) => ({ ...m, valLoss: null })), 'r')).toEqual(['epoch-1', 'epoch-2', 'epoch-3']);
  });
});
