// The matmul helper and its replacement BatchMatMul gradient: values and gradients for every transpose
// combination, rank 2, rank 4 and rank 4 × rank 2 (a broadcast operand), on WASM (materialised transposes, one
// 2-D product per batch entry) and cpu (native), match finite differences.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../workers/engine/backend';
import { matmul, SPLIT_MIN_MACS } from '../workers/engine/ops/matmul';
import { transposeStats } from '../workers/engine/ops/wasm-transpose';
import { matmulStats, summedRows } from '../workers/engine/ops/wasm-matmul';
import { sliceStats } from '../workers/engine/ops/wasm-slice';
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
    for (const [batch, bBatch] of [[[], []], [[2, 3], [2, 3]], [[2, 3], []]]) {
      const [m, k, n] = [4, 5, 3];
      const aShape = [...batch, ...(ta ? [k, m] : [m, k])];
      const bShape = [...bBatch, ...(tb ? [n, k] : [k, n])];
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
            for (let p = 0; p < k; p++) s += av[z * m * k + (ta ? p * m + i : i * k + p)] * bv[(bBatch.length ? z : 0) * k * n + (tb ? j * k + p : p * n + j)];
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

// Products large enough for WASM's one-2-D-product-per-entry path (SPLIT_MIN_MACS), against plain loops:
// the value, and the gradients of Σ(op(A)·op(B) ⊙ W), which are W·op(B)ᵀ and op(A)ᵀ·W mapped back through op.
describe('batched matmul split per entry (WASM)', () => {
  it.each([
    [false, false],
    [false, true],
    [true, false],
  ])('transposeA=%s transposeB=%s', async (ta, tb) => {
    setupNodeHost();
    await selectBackend('wasm');
    const [m, k, n] = [64, 64, 64];
    expect(m * k * n).toBeGreaterThanOrEqual(SPLIT_MIN_MACS);
    const Z = 3;
    const a = tf.randomNormal([Z, ...(ta ? [k, m] : [m, k])], 0, 1, 'float32', 4);
    const b = tf.randomNormal([Z, ...(tb ? [n, k] : [k, n])], 0, 1, 'float32', 5);
    const w = tf.randomNormal([Z, m, n], 0, 1, 'float32', 6);
    const [av, bv, wv] = await Promise.all([a.data(), b.data(), w.data()]);
    const A = (z: number, i: number, p: number) => av[z * m * k + (ta ? p * m + i : i * k + p)]; // op(A)[z, i, p]
    const B = (z: number, p: number, j: number) => bv[z * k * n + (tb ? j * k + p : p * n + j)]; // op(B)[z, p, j]
    const got = await matmul(a, b, ta, tb).data();
    const [ga, gb] = await Promise.all(tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matmul(x, y, ta, tb), w)))([a, b]).map((g) => g.data()));
    for (let z = 0; z < Z; z++)
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += A(z, i, p) * B(z, p, j);
          expect(got[z * m * n + i * n + j]).toBeCloseTo(s, 3);
        }
    for (let z = 0; z < Z; z++)
      for (let i = 0; i < m; i++)
        for (let p = 0; p < k; p++) {
          let s = 0; // d/dop(A)[z,i,p] = Σ_j W[z,i,j]·op(B)[z,p,j]
          for (let j = 0; j < n; j++) s += wv[z * m * n + i * n + j] * B(z, p, j);
          expect(ga[z * m * k + (ta ? p * m + i : i * k + p)]).toBeCloseTo(s, 3);
        }
    for (let z = 0; z < Z; z++)
      for (let p = 0; p < k; p++)
        for (let j = 0; j < n; j++) {
          let s = 0; // d/dop(B)[z,p,j] = Σ_i op(A)[z,i,p]·W[z,i,j]
          for (let i = 0; i < m; i++) s += A(z, i, p) * wv[z * m * n + i * n + j];
          expect(gb[z * k * n + (tb ? j * k + p : p * n + j)]).toBeCloseTo(s, 3);
        }
  });
});

// WASM's BatchMatMul in the SIMD module (ops/wasm-matmul.ts: f32mm) against plain loops in double precision: a batch
// split by entries, single products split by rows, 16-column tiles with a 4-column rest, an inner side over one
// 256-row block, row counts that are not whole 8-row blocks; and the products it leaves to XNNPACK.
describe('BatchMatMul in the SIMD module (WASM)', () => {
  it('equals plain loops, split across the threads', async () => {
    setupNodeHost();
    await selectBackend('wasm');
    const cases: [number, number, number, number, boolean, boolean][] = [
      [12, 40, 64, 128, false, true], // attention's per-head products: a batch
      [3, 5, 6, 20, false, true], // a 16-column tile and a 4-column rest, few rows
      [1, 8, 520, 1536, true, true], // a LoRA factor's gradient: few rows summed over a batch's, an inner side over 256
      [1, 8, 520, 1536, false, false], // the same rows of a forward product: XNNPACK's, as with more rows
      [-1, 8, 520, 96, false, true], // a batch of one (rank 3): the module's, as a batch of more
      [1, 300, 8, 52, false, true], // a short inner side (rank 8), rows split across threads
      [2, 17, 258, 36, false, true],
      [3, 7, 10, 23, false, true], // 16, then 4, then 3 columns one at a time
      [1, 40, 64, 2, false, true], // fewer columns than a vector
      [1, 300, 576, 8, false, false], // a thin N: XNNPACK's
      [1, 96, 96, 96, false, false], // no thin side: XNNPACK's
      [2, 4, 3, 8, false, true], // an odd inner side: its last row alone
      [1, 9, 257, 37, true, true], // an odd inner side past one 256-row block: a block of one row
      [2, 6, 1, 20, false, true], // an inner side of one
    ];
    for (const [entries, M, K, N, summed, simd] of cases) {
      const E = Math.abs(entries); // −1: one entry kept as a batch of rank 3; 1: one product of rank 2
      const a = tf.randomNormal([E, M, K], 0, 1, 'float32', M + K);
      const b = tf.randomNormal([E, K, N], 0, 1, 'float32', K + N);
      const before = matmulStats.simd;
      const product = () => tf.matMul(entries === 1 ? a.reshape([M, K]) : a, entries === 1 ? b.reshape([K, N]) : b);
      const got = await (summed ? summedRows(product) : product()).data();
      expect(matmulStats.simd > before, `${[entries, M, K, N]}: the module ran`).toBe(simd);
      const [av, bv] = await Promise.all([a.data(), b.data()]);
      let worst = 0;
      for (let e = 0; e < E; e++)
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let s = 0;
            let size = 0;
            for (let k = 0; k < K; k++) {
              s += av[(e * M + m) * K + k] * bv[(e * K + k) * N + n];
              size += Math.abs(av[(e * M + m) * K + k] * bv[(e * K + k) * N + n]);
            }
            worst = Math.max(worst, Math.abs(got[(e * M + m) * N + n] - s) / size);
          }
      expect(worst, `${[entries, M, K, N]}`).toBeLessThan(1e-6);
      a.dispose();
      b.dispose();
    }
  });
});

// A row's value from the module depends neither on the rows beside it nor on where the columns end: a sequence alone
// and in a batch (attention's products; a rank-8 inner side), and a block of columns (the LM head's vocabulary).
describe('BatchMatMul in the SIMD module (WASM): the same bits whatever the batch', () => {
  it('gives a row alone, in a batch and in a block of columns the same value', async () => {
    setupNodeHost();
    await selectBackend('wasm');
    const before = matmulStats.simd;
    const [a, b] = [tf.randomNormal([2, 40, 64], 0, 1, 'float32', 7), tf.randomNormal([2, 64, 100], 0, 1, 'float32', 8)];
    const one = (t: tf.Tensor) => t.slice([0, 0, 0], [1, -1, -1]);
    expect(Array.from(await tf.matMul(one(a), one(b)).data())).toEqual(Array.from(await one(tf.matMul(a, b)).data()));
    const [x, w] = [tf.randomNormal([300, 8], 0, 1, 'float32', 9), tf.randomNormal([8, 55], 0, 1, 'float32', 10)];
    const rows = tf.matMul(x, w);
    expect(Array.from(await tf.matMul(x.slice([0, 0], [5, 8]), w).data())).toEqual(Array.from(await rows.slice([0, 0], [5, 55]).data()));
    expect(Array.from(await tf.matMul(x, w.slice([0, 0], [8, 23])).data())).toEqual(Array.from(await rows.slice([0, 0], [300, 23]).data()));
    expect(matmulStats.simd - before).toBe(5); // every product above ran in the module
  });
});

// WASM's Transpose of the last two axes by the SIMD module's 4 × 4 blocks (ops/wasm-transpose.ts), against a plain
// loop, bit for bit: matrices split across threads, batches, int32, and the shapes and permutations it leaves to
// tfjs's own kernel.
describe('Transpose on WASM', () => {
  it('moves every value where a plain loop puts it, through the SIMD blocks where it can', async () => {
    setupNodeHost();
    await selectBackend('wasm');
    const cases: [number[], number[], 'float32' | 'int32', boolean][] = [
      [[512, 576], [1, 0], 'float32', true],
      [[1536, 8], [1, 0], 'float32', true],
      [[20, 12], [1, 0], 'float32', true], // a band of 16 rows, then one of 4
      [[3, 8, 12], [0, 2, 1], 'float32', true],
      [[2, 2, 4, 8], [0, 1, 3, 2], 'int32', true],
      [[5, 7], [1, 0], 'float32', false], // not multiples of 4
      [[4, 8, 12], [1, 0, 2], 'float32', false], // not the last two axes
      [[8, 12], [1, 0], 'bool' as 'int32', false],
    ];
    for (const [shape, perm, dtype, simd] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) => (dtype === 'float32' ? Math.sin(i) * 1e3 : (i * 7919) % 2 ** 31));
      const x = tf.tensor(dtype === ('bool' as string) ? values.map((v) => v > 0) : values, shape, dtype);
      const before = transposeStats.simdMatrices;
      const got = await tf.transpose(x, perm).data();
      expect(transposeStats.simdMatrices > before, `${shape} ${perm}: the SIMD blocks ran`).toBe(simd);
      const xs = await x.data();
      const outShape = perm.map((p) => shape[p]);
      const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
      const want = new Array(n);
      for (let o = 0; o < n; o++) {
        let rest = o;
        let src = 0;
        for (let d = outShape.length - 1; d >= 0; d--) {
          src += (rest % outShape[d]) * strides[perm[d]];
          rest = Math.floor(rest / outShape[d]);
        }
        want[o] = xs[src];
      }
      expect(Array.from(got)).toEqual(want);
      x.dispose();
    }
  });
});

// WASM's Slice read in place, run by run (ops/wasm-slice.ts), against a plain loop, bit for bit: column blocks (the LM
// head's vocabulary blocks), cuts in several axes, short and long runs, int32 and bool, a contiguous slice and an
// empty one.
describe('Slice on WASM', () => {
  it('copies every value a plain loop picks, from the heap in place', async () => {
    setupNodeHost();
    await selectBackend('wasm');
    const cases: [number[], number[], number[], 'float32' | 'int32' | 'bool'][] = [
      [[341, 600], [0, 128], [-1, 256], 'float32'], // a block of columns: 341 runs of 256
      [[6, 5], [1, 2], [4, 1], 'float32'], // one column: runs of 1
      [[5, 40], [1, 0], [3, 20], 'float32'], // the first columns: a cut at 0 is still a cut
      [[3, 4, 5, 6], [1, 0, 2, 0], [2, 4, 3, 6], 'float32'], // runs of 3 × 6 across two axes
      [[3, 4, 5, 6], [0, 1, 0, 3], [3, 2, 5, 2], 'int32'], // cuts in the last axis and an outer one
      [[4, 40], [1, 0], [2, 40], 'float32'], // contiguous: one run
      [[7, 9], [2, 3], [3, 5], 'bool'],
      [[4, 6], [1, 2], [0, 3], 'float32'], // empty
    ];
    for (const [shape, begin, size, dtype] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) => (dtype === 'float32' ? Math.sin(i) * 1e3 : (i * 7919) % 2 ** 31));
      const x = tf.tensor(dtype === 'bool' ? values.map((v) => v % 3 === 0) : values, shape, dtype);
      const before = sliceStats.inPlace;
      const got = tf.slice(x, begin, size);
      const outShape = size.map((s, d) => (s === -1 ? shape[d] - begin[d] : s));
      expect(got.shape).toEqual(outShape);
      const m = outShape.reduce((a, b) => a * b, 1);
      // (an empty slice never reaches a kernel: tfjs makes it itself)
      expect(sliceStats.inPlace, `${shape} at ${begin}: sliced in place`).toBe(before + (m > 0 ? 1 : 0));
      const xs = await x.data();
      const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
      const want: number[] = [];
      for (let o = 0; o < m; o++) {
        let rest = o;
        let src = 0;
        for (let d = outShape.length - 1; d >= 0; d--) {
          src += ((rest % outShape[d]) + begin[d]) * strides[d];
          rest = Math.floor(rest / outShape[d]);
        }
        want.push(xs[src]);
      }
      expect(Array.from(await got.data())).toEqual(want);
      x.dispose();
      got.dispose();
    }
  });
});
