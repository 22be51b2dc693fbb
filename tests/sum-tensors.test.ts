// sumTensors: the two-input-add tree that replaces tf.addN (whose WebGPU kernel has no input cap).
import { describe, expect, it } from 'vitest';
import { sumTensors } from '../workers/engine/ops/sum-tensors';
import * as tf from '../workers/engine/tf';

describe('sumTensors', () => {
  it('equals the plain sum for 1 to 37 terms and leaves no tensor behind', async () => {
    await tf.setBackend('cpu');
    for (const n of [1, 2, 3, 8, 9, 37]) {
      const terms = Array.from({ length: n }, (_, i) => tf.tensor1d([i, 2 * i + 1, 3 - i]));
      const before = tf.memory().numTensors;
      const s = sumTensors(terms);
      expect(tf.memory().numTensors).toBe(before + 1); // only the result
      const expected = [0, 0, 0];
      for (let i = 0; i < n; i++) [i, 2 * i + 1, 3 - i].forEach((v, j) => (expected[j] += v));
      expect(Array.from(await s.data())).toEqual(expected);
      s.dispose();
      expect(terms.every((t) => !t.isDisposed)).toBe(true); // the terms are the caller's
      terms.forEach((t) => t.dispose());
    }
    expect(() => sumTensors([])).toThrow(/at least one/);
  });
});
