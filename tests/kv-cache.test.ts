// Decoding with the KV cache gives the logits that recomputing the whole sequence gives.
import { describe, expect, it } from 'vitest';
import { Engine } from '../workers/engine/engine';
import { fullLogits } from '../workers/engine/generate';
import { KVCache } from '../workers/engine/llama';
import * as tf from '../workers/engine/tf';
import { MemoryModelFiles } from '../workers/engine/source';
import { makeModelFiles, TINY_VARIANTS } from '../workers/tiny/tiny-model';
import { loadEngine, maxAbs } from './helpers';

const IDS = [1, 30, 140, 3, 250, 99, 12, 45, 300, 7, 60];

describe.each(TINY_VARIANTS.map((v) => v.name))('%s', (name) => {
  it('prefill, chunk and single-token steps equal a full recompute', async () => {
    const engine = await loadEngine(name);
    const { model } = engine.current;
    const full = (await fullLogits(model, IDS).data()) as Float32Array;
    const V = model.config.vocabSize;
    const cache = new KVCache(model.config.numLayers, 4); // 4 positions a block: it grows at 4, 7 → 8, 9 → 12
    const chunks = [IDS.slice(0, 4), IDS.slice(4, 7), ...IDS.slice(7).map((id) => [id])]; // T=4, T=3 at offset 4, then T=1
    let pos = 0;
    for (const chunk of chunks) {
      const logits = tf.tidy(() => model.logits(model.forward(tf.tensor2d(chunk, [1, chunk.length], 'int32'), { cache })));
      const got = (await logits.data()) as Float32Array;
      logits.dispose();
      const want = full.subarray(pos * V, (pos + chunk.length) * V);
      let err = 0;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
      expect(err).toBeLessThanOrEqual(1e-4 * maxAbs(want));
      pos += chunk.length;
      expect(cache.length).toBe(pos);
    }
    cache.dispose();
    engine.unload();
  });
});

describe.each(['wasm', 'cpu'] as const)('the KV cache on %s', (backend) => {
  it('writes a decoded token in place: no copy of the cache, its memory flat within a block, grown by whole blocks', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', backend);
    const { model } = engine.current;
    const { numLayers, numKvHeads, headDim } = model.config;
    const cache = new KVCache(numLayers, 8);
    // Kernels that copy the cache ([B, S, KVH, D]): a concat; on WASM, whose attention kernel reads the cache where it
    // lies, a slice too (cpu's attention is tfjs's ops, which take the filled rows sliced).
    const copies: string[] = [];
    const copying = (name: string) => name === 'Concat' || (name === 'Slice' && backend === 'wasm');
    const step = async (ids: number[]) => {
      const { kernels } = await tf.profile(async () => {
        const logits = tf.tidy(() => model.logits(model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'), { cache })));
        await logits.data();
        logits.dispose();
      });
      if (cache.length > ids.length) copies.push(...kernels.filter((k) => copying(k.name) && k.outputShapes[0]?.length === 4).map((k) => `${k.name} ${k.outputShapes[0]}`));
      return tf.memory();
    };
    const first = await step([1, 30, 140]); // 3 positions: one block of 8 allotted
    const within = [];
    for (const id of [3, 250, 99, 12, 45]) within.push(await step([id])); // positions 4 … 8: the same block
    for (const m of within) expect([m.numTensors, m.numBytes]).toEqual([first.numTensors, first.numBytes]);
    expect(copies).toEqual([]);
    const next = await step([300]); // position 9: a second block, k and v for each layer
    expect(next.numTensors).toBe(first.numTensors);
    expect(next.numBytes - first.numBytes).toBe(numLayers * 2 * 8 * numKvHeads * headDim * 4);
    cache.dispose();
    expect(tf.memory().numBytes).toBe(first.numBytes - numLayers * 2 * 8 * numKvHeads * headDim * 4);
    engine.unload();
  });
});

describe('a forward pass with no gradient recorded (decoding, evaluation)', () => {
  it("holds one layer's intermediates at a time: its peak beyond the weights does not grow with the layers", async () => {
    const base = TINY_VARIANTS.find((v) => v.name === 'llama-tied-gqa-f32')!;
    const peakBeyond = async (layers: number) => {
      const engine = new Engine();
      await engine.loadFiles(new MemoryModelFiles(makeModelFiles({ ...base, layers, maxPositions: 512 }), `layers-${layers}`), { backend: 'wasm' });
      const { model } = engine.current;
      const ids = tf.tensor2d(Array.from({ length: 256 }, (_, i) => (i * 37) % 300), [1, 256], 'int32');
      const before = tf.memory().numBytes;
      const { peakBytes } = await tf.profile(() => tf.tidy(() => model.forward(ids).sum()));
      ids.dispose();
      engine.unload();
      return peakBytes - before;
    };
    const [two, eight] = [await peakBeyond(2), await peakBeyond(8)];
    // Kept across the whole pass: each layer's output (256 × 64 floats, 64 KiB), against ~1 MiB of one layer's work.
    expect(eight / two).toBeLessThan(1.5);
  });
});
