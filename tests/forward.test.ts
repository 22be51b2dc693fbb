// The engine's logits and greedy ids agree with the independent float64 reference on every tiny variant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullLogits } from '../workers/engine/generate';
import type { Engine } from '../workers/engine/engine';
import { TINY_VARIANTS } from '../workers/tiny/tiny-model';
import { loadEngine, maxAbs, modelDir } from './helpers';
import { loadRef, refGreedy, refLogits } from './reference/llama-ref';

const PROMPT = [1, 20, 77, 140, 3, 250, 99, 12, 2, 45, 300, 7];

for (const backend of ['wasm', 'cpu'] as const) {
  describe.each(TINY_VARIANTS.map((v) => v.name))(`%s on ${backend}`, (name) => {
    let engine: Engine;
    const ref = loadRef(modelDir(name));
    beforeAll(async () => {
      engine = await loadEngine(name, backend);
    });
    afterAll(() => engine.unload());

    it('logits match the reference within 1e-4 × max|logit|', async () => {
      const expected = refLogits(ref, PROMPT);
      const t = fullLogits(engine.current.model, PROMPT);
      const got = (await t.data()) as Float32Array;
      t.dispose();
      const V = ref.cfg.vocab_size;
      expect(got.length).toBe(PROMPT.length * V);
      let maxErr = 0;
      let maxLogit = 0;
      for (let p = 0; p < PROMPT.length; p++) {
        maxLogit = Math.max(maxLogit, maxAbs(expected[p]));
        for (let v = 0; v < V; v++) maxErr = Math.max(maxErr, Math.abs(got[p * V + v] - expected[p][v]));
      }
      expect(maxLogit).toBeGreaterThan(1); // the random model is not degenerate
      expect(maxErr).toBeLessThanOrEqual(1e-4 * maxLogit);
    });

    it('greedy ids match the reference', async () => {
      const prompt = PROMPT.slice(0, 5);
      const r = await engine.generate({ ids: prompt }, { maxNewTokens: 8 });
      expect(r.ids).toEqual(refGreedy(ref, prompt, 8, engine.info()!.eosIds));
    });
  });
}
