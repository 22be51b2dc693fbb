// Matrix products that stay on each backend's fast path. tfjs's WASM matmul is fast only for a single
// untransposed product: measured here at 1024³, 24 GFLOP/s plain, 1.8 with transposeB, 0.4 with
// transposeA; and a batched product runs its own slow loop (attention's [12,768,64]×[12,64,256]: 0.9
// GFLOP/s batched, 22 as twelve 2-D products). So on WASM a transposed operand is materialised first (an
// O(n²) copy before an O(n³) product) and a batched product goes to the SIMD module's float32 product as one call
// (ops/wasm-matmul.ts: 32–40 GFLOP/s a thread, split across the threads), or, where that module does not run, is
// done one matrix at a time.
// The gradient of BatchMatMul is replaced (ops/index.ts registers it) by one that routes through the same
// function; its per-input closures stay lazy, so frozen weights never get a gradient computed.
import * as tf from '../tf';
import { simdMatMulRuns, summedRows } from './wasm-matmul';

function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

/** op(a) · op(b), where op transposes the last two axes when asked. */
export function matmul<R extends tf.Rank>(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor<R> {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB) as tf.Tensor<R>;
  const x = transposeA ? swapLast(a) : a; // [..., M, K]
  const y = transposeB ? swapLast(b) : b; // [..., K, N]
  return (x.rank > 2 || y.rank > 2 ? batchedOneByOne(x, y) : tf.matMul(x, y)) as tf.Tensor<R>;
}

// Below this many multiply-adds per entry, one call of tfjs's batched loop costs less than n 2-D calls,
// each of which sets up an XNNPACK operator (decoding's [3, 64]·[64, S] attention products are far below).
export const SPLIT_MIN_MACS = 1 << 18;

const batchOf = (t: tf.Tensor) => t.shape.slice(0, -2).reduce((n, d) => n * d, 1);

// [...batch, M, K] · [...batch, K, N] as one 2-D product per batch entry. A [K, N] operand shared by
// every entry makes the product a single [batch·M, K] · [K, N] one.
function batchedOneByOne(x: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const [M, K] = x.shape.slice(-2);
  const N = y.shape[y.rank - 1];
  const outBatch = x.rank >= y.rank ? x.shape.slice(0, -2) : y.shape.slice(0, -2);
  const nx = batchOf(x);
  const ny = batchOf(y);
  // the whole batch in one call (ops/wasm-matmul.ts), a batch of one too: attention's path does not hang on B
  if (nx === ny && x.rank === y.rank && simdMatMulRuns(true, M, K, N)) return tf.matMul(x, y);
  if (ny === 1) return tf.matMul(x.reshape([nx * M, K]), y.reshape([K, N])).reshape([...outBatch, M, N]);
  if (nx !== ny || x.rank !== y.rank) return tf.matMul(x, y); // a broadcast this does not split: tfjs's own kernel
  if (M * K * N < SPLIT_MIN_MACS) return tf.matMul(x, y); // small (decoding's attention): the loop beats n calls
  return matmulEach(x.reshape([nx, M, K]), y.reshape([nx, K, N])).reshape([...outBatch, M, N]);
}

// [n, M, K] · [n, K, N] → [n, M, N], one 2-D product per entry, as one op: its gradient is two more such
// products (not n slices' gradients, each a zero-padded copy of the whole input).
// Its slices are cheap because the WASM Slice kernel reads in place (ops/wasm-slice.ts).
const matmulEach = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, y]);
  const each = (a: tf.Tensor, b: tf.Tensor) => {
    const [n, M, K] = a.shape as [number, number, number];
    const N = b.shape[2] as number;
    const rows = (t: tf.Tensor, i: number, r: number, c: number) => tf.slice(t, [i, 0, 0], [1, r, c]).reshape([r, c]);
    // concat of [M, N] blocks along rows, then a reshape: one copy (tf.stack measured 2.6× slower here)
    return tf.concat(Array.from({ length: n }, (_, i) => tf.matMul(rows(a, i, M, K), rows(b, i, K, N))), 0).reshape([n, M, N]);
  };
  return {
    value: each(x, y),
    gradFunc: (dy: tf.Tensor, [a, b]: tf.Tensor[]) => [each(dy, swapLast(b)), each(swapLast(a), dy)],
  };
}) as (x: tf.Tensor, y: tf.Tensor) => tf.Tensor;

// A gradient computed at the broadcast batch shape, summed back to its input's shape.
function unbroadcast(g: tf.Tensor, shape: number[]): tf.Tensor {
  const extra = g.rank - shape.length;
  const axes = g.shape.map((_, i) => i).filter((i) => i < extra || (shape[i - extra] === 1 && g.shape[i] !== 1));
  return axes.length === 0 ? g : tf.sum(g, axes).reshape(shape);
}

// C = op(A)·op(B). With G = dL/dC:
//   dA = G·op(B)ᵀ (A as is)      or op(B)·Gᵀ (A transposed)
//   dB = op(A)ᵀ·G (B as is)      or Gᵀ·op(A) (B transposed)
export const batchMatMulGradient: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as tf.Tensor[];
    const g = dy as tf.Tensor;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    return {
      // Each in its own tidy: a materialised transpose (a whole weight matrix, for a frozen linear layer)
      // is freed at once, not at the end of the backward pass.
      a: () => tf.tidy(() => unbroadcast(transposeA ? matmul(b, g, transposeB, true) : matmul(g, b, false, !transposeB), a.shape)),
      b: () => tf.tidy(() => summedRows(() => unbroadcast(transposeB ? matmul(g, a, true, transposeA) : matmul(a, g, !transposeA, false), b.shape))),
    };
  },
};
