// The matmul helper and its replacement BatchMatMul gradient: values and gradients for every transpose
// combination, rank 2 and rank 4, on WASM (materialised transposes) and cpu (native), match finite differences.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../workers/engine/backend';
import { matmul } from '../workers/engine/ops/matmul';
import * as tf from '../workers/engine/tf';
import { setupNodeHost } from '../workers/node/host';

describe.each(['wasm', 'cpu'] as const)('matmul on %s', (backend) => {
  it.each([
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ])('transposeA=%s transposeB=%s: value and gradients', async (ta, tb) => {
    setupNodeHost();
    await selectBackend(backend);
    for (const batch of [[], [2, 3]]) {
      const [m, k, n] = [4, 5, 3];
      const aShape = [...batch, ...(ta ? [k, m] : [m, k])];
      const bShape = [...batch, ...(tb ? [n, k] : [k, n])];
      const a = tf.randomNormal(aShape, 0, 1, 'float32', 1);
      const b = tf.randomNormal(bShape, 0, 1, 'float32', 2);
      const w = tf.randomNormal([...batch, m, n], 0, 1, 'float32', 3); // a fixed projection to make a scalar loss
      const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matmul(x, y, ta, tb), w));
      // Value: against plain loops.
      const av = await a.data(), bv = await b.data(), got = await matmul(a, b, ta, tb).data();
      const B = batch.reduce((p, q) => p * q, 1);
      for (let z = 0; z < B; z++)
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s += av[z * m * k + (ta ? p * m + i : i * k + p)] * bv[z * k * n + (tb ? j * k + p : p * n + j)];
            expect(got[z * m * n + i * n + j]).toBeCloseTo(s, 4);
          }
      // Gradients: against central finite differences.
      const [ga, gb] = tf.grads(loss)([a, b]);
      for (const [x, gx, which] of [[a, ga, 0], [b, gb, 1]] as const) {
        const xv = (await x.data()) as Float32Array;
        const gv = await gx.data();
        for (const idx of [0, xv.length - 1, Math.floor(xv.length / 2)]) {
          const h = 1e-2;
          const plus = xv.slice(); plus[idx] += h;
          const minus = xv.slice(); minus[idx] -= h;
          const at = (vals: Float32Array) => (which === 0 ? loss(tf.tensor(vals, x.shape), b) : loss(a, tf.tensor(vals, x.shape)));
          const fd = ((await at(plus).data())[0] - (await at(minus).data())[0]) / (2 * h);
          expect(gv[idx]).toBeCloseTo(fd, 2);
        }
      }
    }
  });
});
