// AdamW on WASM runs three plain-loop kernels per parameter (ops/adamw.ts); the cpu backend keeps tfjs's ops, the
// reference here. The WebGPU kernels are checked on the numerics page.
import { describe, expect, it } from 'vitest';
import * as tf from '../workers/engine/tf';
import { selectBackend } from '../workers/engine/backend';
import { hasFusedAdamW } from '../workers/engine/ops/adamw';
import { AdamW } from '../workers/engine/train/optimizer';
import { DEFAULT_TRAIN } from '../workers/engine/train/config';

const seeded = (n: number, seed: number, scale: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * scale);

/** Four steps over parameters of a few shapes; the third step's gradient holds a NaN (nothing may change then). */
async function steps(backend: 'cpu' | 'wasm'): Promise<{ norms: number[]; params: number[][]; kernel: boolean; leaked: number }> {
  await selectBackend(backend);
  const shapes = [[8, 576], [192, 8], [3], [1, 1]];
  const params = shapes.map((s, i) => tf.variable(tf.tensor(seeded(s.reduce((a, b) => a * b), 100 + i, 0.1), s)));
  const opt = new AdamW(params, { ...DEFAULT_TRAIN, weightDecay: 0.01, maxGradNorm: 1 });
  const norms: number[] = [];
  let before = 0;
  for (let s = 0; s < 4; s++) {
    if (s === 1) before = tf.memory().numTensors;
    const grads = shapes.map((shape, i) => {
      const values = seeded(shape.reduce((a, b) => a * b), 7 * s + i, s === 1 ? 0.01 : 1); // step 2 below the clip
      if (s === 2 && i === 1) values[5] = NaN;
      return tf.tensor(values, shape);
    });
    const norm = opt.step(grads, 0.01);
    norms.push((await norm.data())[0]);
    tf.dispose([norm, ...grads]);
  }
  const leaked = tf.memory().numTensors - before;
  const out = { norms, params: await Promise.all(params.map(async (p) => Array.from(await p.data()))), kernel: hasFusedAdamW(), leaked };
  tf.dispose(params);
  opt.dispose();
  return out;
}

describe('AdamW', () => {
  it('runs as loop kernels on WASM and equals the cpu backend’s ops, a non-finite step changing nothing, the tensor count flat', async () => {
    const reference = await steps('cpu');
    const got = await steps('wasm');
    expect(reference.kernel).toBe(false);
    expect(got.kernel).toBe(true);
    expect(got.leaked).toBe(0);
    expect(Number.isNaN(got.norms[2])).toBe(true);
    for (const s of [0, 1, 3]) expect(got.norms[s]).toBeCloseTo(reference.norms[s], 4);
    let worst = 0;
    reference.params.forEach((p, i) => p.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - got.params[i][j])))));
    expect(worst).toBeLessThan(1e-6);
    // the steps moved the parameters (lr 0.01: up to 0.01 a step each), so the comparison above is not of the start
    expect(Math.abs(got.params[0][0] - seeded(1, 100, 0.1)[0])).toBeGreaterThan(0.005);
  });
});
