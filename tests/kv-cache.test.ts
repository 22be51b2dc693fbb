// Decoding with the KV cache gives the logits that recomputing the whole sequence gives.
import { describe, expect, it } from 'vitest';
import { fullLogits } from '../workers/engine/generate';
import { KVCache } from '../workers/engine/llama';
import * as tf from '../workers/engine/tf';
import { TINY_VARIANTS } from '../workers/tiny/tiny-model';
import { loadEngine, maxAbs } from './helpers';

const IDS = [1, 30, 140, 3, 250, 99, 12, 45, 300, 7, 60];

describe.each(TINY_VARIANTS.map((v) => v.name))('%s', (name) => {
  it('prefill, chunk and single-token steps equal a full recompute', async () => {
    const engine = await loadEngine(name);
    const { model } = engine.current;
    const full = (await fullLogits(model, IDS).data()) as Float32Array;
    const V = model.config.vocabSize;
    const cache = new KVCache(model.config.numLayers);
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
