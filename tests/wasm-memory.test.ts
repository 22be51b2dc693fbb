// Running out of WASM memory: a training batch far too large for the heap ends with a named error that
// says what to change, the UI hears that the model is gone, and the same engine loads and answers again
// (on a fresh WASM heap) without a restart.
import { describe, expect, it } from 'vitest';
import * as tf from '../workers/engine/tf';
import { selectBackend, WasmHeapExhaustedError } from '../workers/engine/backend';
import { Engine } from '../workers/engine/engine';
import { attention, attentionOps, attentionRuns } from '../workers/engine/ops/attention';
import { PackedMatrix } from '../workers/engine/quant/packed-matrix';
import { MemoryModelFiles } from '../workers/engine/source';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';
import { TINY_VARIANTS, makeModelFiles } from '../workers/tiny/tiny-model';
import { modelDir } from './helpers';

describe('WASM out of memory', () => {
  it('is reported by name, drops the model, and a new load works on a fresh heap', async () => {
    // The tiny model with room for 2048 positions (training refuses a length the model cannot read).
    setupNodeHost();
    const engine = new Engine();
    const spec = { ...TINY_VARIANTS.find((v) => v.name === 'llama-tied-gqa-f32')!, maxPositions: 4096 };
    await engine.loadFiles(new MemoryModelFiles(makeModelFiles(spec), spec.name), { backend: 'wasm' });
    const heard: { message: string; name: string }[] = [];
    engine.watchDeviceLoss((message, name) => heard.push({ message, name }));
    // 64 sequences of 2048 tokens: one layer's attention scores alone would take 4 GiB.
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(60);
    const examples = Array.from({ length: 64 }, (_, i) => ({ text: `${i} ${text}` }));
    const err = await engine.train({ examples, train: { batchSize: 64, maxSeqLen: 2048, epochs: 1, valSplit: 0 } }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('WasmMemoryError');
    expect(err?.message).toMatch(/ran out of memory.*Lower the batch size or the maximum sequence length.*load the model again/);
    expect(heard).toEqual([{ message: err!.message, name: 'WasmMemoryError' }]);
    expect(() => engine.current).toThrow(/No model is loaded/);

    await engine.loadFiles(new DirModelFiles(modelDir('llama-tied-gqa-f32')), { backend: 'wasm' });
    const r = await engine.generate({ text: 'the quick' }, { maxNewTokens: 4 });
    expect(r.ids.length).toBeGreaterThan(0);
    engine.unload();
  }, 120_000);
});

describe('a WASM allocation past what the heap can give', () => {
  it('throws WasmHeapExhaustedError before tfjs writes anything, and the heap still answers (threads or not)', async () => {
    setupNodeHost();
    await selectBackend('wasm');
    const before = tf.memory().numTensors;
    // 2³⁰ float32 values are 4 GiB: past a 32-bit address, where malloc's argument would wrap to a small block.
    expect(() => tf.zeros([2 ** 30])).toThrow(WasmHeapExhaustedError);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(tf.tidy(() => tf.add(tf.tensor1d([1, 2]), 1)).dataSync())).toEqual([2, 3]);
  });
});

describe('WASM kernels of our own on a heap past 2 GiB', () => {
  it('the packed product (its scratch space) and attention read and write tensors at addresses above 2³¹', async () => {
    setupNodeHost();
    await selectBackend('wasm');
    const filler = tf.zeros([2 ** 29 + 2 ** 20]); // just over 2 GiB, so what comes after it sits above 2³¹
    const [R, K] = [48, 64];
    const w = Float32Array.from({ length: R * K }, (_, i) => Math.sin(i));
    const packed = PackedMatrix.fromValues(w, R, K, { format: 'int8', group: K });
    const x = tf.tensor2d(Float32Array.from({ length: 2 * K }, (_, i) => Math.cos(i)), [2, K]);
    const got = tf.tidy(() => packed.forward(x));
    const want = tf.tidy(() => tf.matMul(x, packed.dense(true)));
    expect(Math.max(...tf.tidy(() => tf.abs(tf.sub(got, want))).dataSync())).toBeLessThan(1e-3);
    const q = tf.tensor4d(Float32Array.from({ length: 4 * 8 }, (_, i) => Math.sin(i / 3)), [1, 1, 4, 8]);
    const kv = tf.tensor4d(Float32Array.from({ length: 5 * 2 * 8 }, (_, i) => Math.cos(i / 5)), [1, 5, 2, 8]);
    const attrs = { scale: 0.3, softcap: 0, window: 0 };
    expect(attentionRuns(q)).toBe(true);
    const a = tf.tidy(() => attention(q, kv, kv, attrs));
    const b = tf.tidy(() => attentionOps(q, kv, kv, attrs));
    expect(Math.max(...tf.tidy(() => tf.abs(tf.sub(a, b))).dataSync())).toBeLessThan(1e-5);
    tf.dispose([filler, x, got, want, q, kv, a, b]);
    packed.dispose();
  });
});
