// Matrix products that stay on each backend's fast path. tfjs's WASM matmul is fast only without
// transposes (measured here at 1024³: 24 GFLOP/s plain, 1.8 with transposeB, 0.4 with transposeA), so on
// WASM a transposed operand is materialised first (an O(n²) copy before an O(n³) product).
// The gradient of BatchMatMul is replaced by one that routes through the same function; its per-input
// closures stay lazy, so frozen weights never get a gradient computed.
import * as tf from '../tf';

function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

/** op(a) · op(b), where op transposes the last two axes when asked. */
export function matmul<R extends tf.Rank>(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor<R> {
  if ((transposeA || transposeB) && tf.getBackend() === 'wasm') {
    return tf.matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b) as tf.Tensor<R>;
  }
  return tf.matMul(a, b, transposeA, transposeB) as tf.Tensor<R>;
}

// C = op(A)·op(B). With G = dL/dC:
//   dA = G·op(B)ᵀ (A as is)      or op(B)·Gᵀ (A transposed)
//   dB = op(A)ᵀ·G (B as is)      or Gᵀ·op(A) (B transposed)
tf.registerGradient({
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as tf.Tensor[];
    const g = dy as tf.Tensor;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    return {
      a: () => (transposeA ? matmul(b, g, transposeB, true) : matmul(g, b, false, !transposeB)),
      b: () => (transposeB ? matmul(g, a, true, transposeA) : matmul(a, g, !transposeA, false)),
    };
  },
});
