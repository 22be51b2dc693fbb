// The chunked LM-head cross-entropy op: its value and its gradient equal plain autodiff over full logits,
// for every chunk size, and the gradient matches central finite differences.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../workers/engine/backend';
import { chunkedLmEval, chunkedLmLoss } from '../workers/engine/train/lm-loss';
import * as tf from '../workers/engine/tf';
import { setupNodeHost } from '../workers/node/host';

function plainLoss(h: tf.Tensor2D, W: tf.Tensor2D, t: tf.Tensor1D, w: tf.Tensor1D): tf.Scalar {
  const logits = tf.matMul(h, W, false, true);
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.sum(tf.mul(logp, tf.oneHot(t, W.shape[0])), 1), w))) as tf.Scalar;
}

describe.each(['cpu', 'wasm'] as const)('chunkedLmLoss on %s', (backend) => {
  it('value and gradient equal full-logit autodiff for chunks of 1, 3 and all rows; gradient matches finite differences', async () => {
    setupNodeHost();
    await selectBackend(backend);
    const N = 7, C = 5, V = 11;
    const h = tf.randomNormal([N, C], 0, 1, 'float32', 1) as tf.Tensor2D;
    const W = tf.randomNormal([V, C], 0, 1, 'float32', 2) as tf.Tensor2D; // [V, C] for the plain version
    const head = tf.transpose(W) as tf.Tensor2D; // [C, V] as the op takes it
    const tIds = Int32Array.from([0, 3, 10, 4, 4, 7, 1]);
    const wIds = Float32Array.from([1, 0, 1, 1, 0, 1, 1]);
    const t = tf.tensor1d(tIds, 'int32');
    const w = tf.tensor1d(wIds, 'float32');
    const want = tf.grad((x: tf.Tensor) => plainLoss(x as tf.Tensor2D, W, t, w))(h);
    const wantValue = (await plainLoss(h, W, t, w).data())[0];
    const wantGrad = await want.data();
    for (const chunk of [1, 3, N]) {
      const before = tf.memory().numTensors;
      const got = tf.grad((x: tf.Tensor) => chunkedLmLoss(x as tf.Tensor2D, head, tIds, wIds, chunk))(h);
      const gotData = await got.data();
      for (let i = 0; i < gotData.length; i++) expect(gotData[i]).toBeCloseTo(wantGrad[i], 5);
      const value = chunkedLmLoss(h, head, tIds, wIds, chunk);
      expect((await value.data())[0]).toBeCloseTo(wantValue, 4);
      tf.dispose([got, value]);
      expect(tf.memory().numTensors).toBe(before); // the op keeps nothing behind
    }
    // Finite differences on a few entries, in float32 with a wide step.
    const hv = await h.data();
    const grad = await tf.grad((x: tf.Tensor) => chunkedLmLoss(x as tf.Tensor2D, head, tIds, wIds, 2))(h).data();
    for (const i of [0, 6, 13, 34]) {
      const eps = 1e-2;
      const plus = hv.slice(); plus[i] += eps;
      const minus = hv.slice(); minus[i] -= eps;
      const lp = (await chunkedLmLoss(tf.tensor2d(plus, [N, C]), head, tIds, wIds, 2).data())[0];
      const lm = (await chunkedLmLoss(tf.tensor2d(minus, [N, C]), head, tIds, wIds, 2).data())[0];
      expect(grad[i]).toBeCloseTo((lp - lm) / (2 * eps), 2);
    }
    // Evaluation: Σ NLL equals the loss, correct counts argmax hits on weighted rows.
    const ev = await chunkedLmEval(h, head, tIds, wIds, 3).data();
    expect(ev[0]).toBeCloseTo(wantValue, 4);
    const am = await tf.argMax(tf.matMul(h, W, false, true), 1).data();
    const tv = await t.data(), wv = await w.data();
    let correct = 0;
    for (let i = 0; i < N; i++) correct += am[i] === tv[i] ? wv[i] : 0;
    expect(ev[1]).toBe(correct);
    // Training's token accuracy comes from the loss's own logits and equals evaluation's count, for any chunking.
    for (const chunk of [1, 3, N]) {
      let hits: tf.Scalar | null = null;
      const l = chunkedLmLoss(h, head, tIds, wIds, chunk, null, (c) => (hits = tf.keep(c)));
      expect((await hits!.data())[0]).toBe(correct);
      tf.dispose([l, hits!]);
    }
  });

  it('stays exact for extreme logits (loss ~100 per token), fractional weights and all-zero weights', async () => {
    setupNodeHost();
    await selectBackend(backend);
    const N = 6, C = 4, V = 9;
    const h = tf.mul(tf.randomNormal([N, C], 0, 1, 'float32', 3), 40) as tf.Tensor2D;
    const W = tf.randomNormal([V, C], 0, 1, 'float32', 4) as tf.Tensor2D;
    const head = tf.transpose(W) as tf.Tensor2D;
    const tIds = Int32Array.from([8, 0, 5, 2, 2, 7]);
    for (const wIds of [Float32Array.from([0.5, 1, 0, 0.25, 1, 1]), new Float32Array(N)]) {
      const t = tf.tensor1d(tIds, 'int32');
      const w = tf.tensor1d(wIds, 'float32');
      const wantValue = (await plainLoss(h, W, t, w).data())[0];
      const wantGrad = await tf.grad((x: tf.Tensor) => plainLoss(x as tf.Tensor2D, W, t, w))(h).data();
      for (const chunk of [1, 4]) {
        const value = (await chunkedLmLoss(h, head, tIds, wIds, chunk).data())[0];
        expect(Number.isFinite(value)).toBe(true);
        expect(Math.abs(value - wantValue)).toBeLessThan(1e-4 * Math.max(1, Math.abs(wantValue)));
        const got = await tf.grad((x: tf.Tensor) => chunkedLmLoss(x as tf.Tensor2D, head, tIds, wIds, chunk))(h).data();
        got.forEach((g, i) => expect(g).toBeCloseTo(wantGrad[i], 4));
      }
    }
    if (backend === 'cpu') expect((await plainLoss(h, W, tf.tensor1d(tIds, 'int32'), tf.ones([N])).data())[0] / N).toBeGreaterThan(20);
  });
});
