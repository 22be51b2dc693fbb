// The seams between the engine's parts: one checkpoint error from every store, the LoRA scale per request,
// engines that let go of the device-loss listener, custom ops registered from one list, the one reach into
// tfjs internals, and run records whose write failures reach the user.
import 'fake-indexeddb/auto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getGradient } from '@tensorflow/tfjs-core/dist/kernel_registry';
import { describe, expect, it } from 'vitest';
import { DatasetLibrary } from '../workers/browser/datasets';
import { IdbCheckpointStore } from '../workers/browser/idb-checkpoints';
import { RunRecorder } from '../workers/browser/runs';
import type { RunStore } from '../workers/browser/store';
import { selectBackend } from '../workers/engine/backend';
import { Engine } from '../workers/engine/engine';
import { deviceLossListenerCount } from '../workers/engine/gpu-device';
import { batchMatMulGradient } from '../workers/engine/ops/matmul';
import { engineState, recording } from '../workers/engine/ops/own-tape';
import * as tf from '../workers/engine/tf';
import { MemoryCheckpointStore, type CheckpointStore } from '../workers/engine/train/checkpoint';
import { DirCheckpointStore } from '../workers/node/dir-checkpoints';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';
import type { TrainEvent } from '../workers/shared/types';
import { loadEngine, modelDir } from './helpers';
import { chats, QA } from './train-helpers';

const TINY = 'llama-tied-gqa-f32';

describe('checkpoint stores', () => {
  const stores: [string, () => CheckpointStore][] = [
    ['in memory', () => new MemoryCheckpointStore('run r1')],
    ['in a directory', () => new DirCheckpointStore(mkdtempSync(join(tmpdir(), 'ckpt-')))],
    ['in IndexedDB', () => new IdbCheckpointStore('r1')],
  ];
  it.each(stores)('%s: a missing checkpoint is CheckpointNotFoundError, naming the ones stored', async (_, make) => {
    setupNodeHost();
    const store = make();
    const engine = new Engine({ checkpoints: () => store });
    await engine.loadFiles(new DirModelFiles(modelDir(TINY)), { backend: 'cpu' });
    await engine.train({ examples: chats(), runId: 'r1', train: { epochs: 1, maxSteps: 1, valSplit: 0 } });
    await expect(store.load('epoch-9')).rejects.toMatchObject({ name: 'CheckpointNotFoundError', message: expect.stringMatching(/^There is no checkpoint "epoch-9" in .*\. It has: epoch-1\. /) });
    await expect(engine.useCheckpoint('r1', 'epoch-9')).rejects.toMatchObject({ name: 'CheckpointNotFoundError' });
    expect((await engine.useCheckpoint('r1', 'epoch-1')).parameters).toBeGreaterThan(0);
    engine.dispose();
  });
});

describe('the LoRA scale is per request', () => {
  it('two replies at different scales, asked at once, each get their own', async () => {
    const engine = await loadEngine(TINY);
    await engine.train({ examples: chats(), train: { epochs: 5, batchSize: 8, learningRate: 1e-2, warmupRatio: 0, schedule: 'constant', valSplit: 0 }, lora: { dropout: 0 } });
    const ask = (loraScale: number) => engine.generate({ messages: [{ role: 'user', content: QA[0][0] }] }, { maxNewTokens: 16, loraScale });
    const alone = [(await ask(0)).ids, (await ask(1)).ids];
    expect(alone[0]).not.toEqual(alone[1]);
    const together = await Promise.all([ask(0), ask(1)]); // their tokens interleave on the event loop
    expect(together.map((r) => r.ids)).toEqual(alone);
    await expect(ask(1.5)).rejects.toThrow(/LoRA scale must be between 0 and 1, got 1\.5/);
    engine.dispose();
  });
});

describe('engine lifetime', () => {
  it('a disposed engine no longer listens for device loss (nothing keeps it alive)', () => {
    const before = deviceLossListenerCount();
    const engines = [new Engine(), new Engine()];
    expect(deviceLossListenerCount()).toBe(before + 2);
    for (const e of engines) e.dispose();
    expect(deviceLossListenerCount()).toBe(before);
  });
});

describe('custom ops and tfjs internals', () => {
  it('selectBackend registers the ops of ops/index.ts (the matmul gradient among them)', async () => {
    await selectBackend('cpu');
    expect(getGradient(tf.BatchMatMul).gradFunc).toBe(batchMatMulGradient.gradFunc);
  });

  it("the gradient tape is where ops/own-tape.ts reaches for it in this tfjs version", () => {
    const state = engineState();
    expect('activeTape' in state).toBe(true);
    let during: unknown = null;
    const [g] = tf.grads((x: tf.Tensor) => {
      during = engineState().activeTape;
      expect(recording()).toBe(true);
      return tf.sum(tf.square(x));
    })([tf.tensor1d([1, 2])]);
    expect(Array.isArray(during)).toBe(true); // the tape being recorded
    expect(recording()).toBe(false);
    expect(Array.from(g.dataSync())).toEqual([2, 4]);
  });
});

describe('run records', () => {
  it('a record that cannot be written is told to the user once, and training goes on', async () => {
    const engine = await loadEngine(TINY, 'cpu');
    const datasets = new DatasetLibrary(engine);
    const file = new File([chats().map((e) => JSON.stringify(e)).join('\n')], 'qa.jsonl');
    const stored = await datasets.addDataset(file, { maxSeqLen: 128 });
    let writes = 0;
    const failing: RunStore = {
      put: async () => {
        writes++;
        throw new Error('the database connection is closing');
      },
      list: async () => [],
      get: async () => undefined,
    };
    const events: TrainEvent[] = [];
    const result = await new RunRecorder(engine, datasets, failing).trainOnDataset({ datasetId: stored.id, train: { epochs: 1, valSplit: 0 } }, (e) => events.push(e));
    expect(result.status).toBe('done');
    expect(writes).toBeGreaterThan(1); // every write is still tried
    expect(events.filter((e) => e.type === 'warning')).toEqual([{ type: 'warning', message: expect.stringMatching(/^This run's settings and curve are not being kept: it could not be written \(the database connection is closing\)\. Training goes on/) }]);
    engine.dispose();
  });
});
