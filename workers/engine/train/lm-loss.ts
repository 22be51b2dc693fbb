// Custom op: the LM head and cross-entropy, row chunk by row chunk, with its own gradient, so that at
// most `chunkRows` × V logits exist at once (SmolLM2's V is 49,152; Qwen2.5's 151,936). The head W is
// frozen: only the hidden states get a gradient.
import * as tf from '../tf';
import { matmul } from '../ops/matmul';
import { sumTensors } from '../ops/sum-tensors';

/** Rows per chunk so that one chunk's logits take about `budgetBytes` (float32). */
export function chunkRowsFor(vocab: number, budgetBytes = 64 * 1024 * 1024): number {
  return Math.max(1, Math.floor(budgetBytes / (4 * vocab)));
}

function targetLogits(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [n, V] = logits.shape;
  const flatIdx = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), targets); // row·V + target
  return tf.gather(logits.reshape([-1]), flatIdx) as tf.Tensor1D; // [n]
}

/**
 * Σᵢ weightᵢ · CE(hiddenᵢ · W, targetᵢ).
 * hidden [N, C], head [C, V], targets [N], weights [N] → scalar. Targets and weights are host arrays.
 * Training always wants the gradient, so each chunk computes it together with its loss from the one set of
 * logits: dL/dhᵢ = weightᵢ · (softmax(logitsᵢ) − onehot(targetᵢ)) · Wᵀ, kept as [N, C] (the size of
 * `hidden`) and scaled by the incoming gradient in backward. The logits are never computed twice.
 */
export function chunkedLmLoss(hidden: tf.Tensor2D, head: tf.Tensor2D, targetIds: Int32Array, targetWeights: Float32Array, chunkRows: number): tf.Scalar {
  const N = hidden.shape[0];
  const V = head.shape[1];
  const spans: [number, number][] = [];
  for (let s = 0; s < N; s += chunkRows) spans.push([s, Math.min(chunkRows, N - s)]);

  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const headT = tf.getBackend() === 'wasm' ? tf.transpose(head) : null; // [V, C], once for all chunks (WASM's fast path)
    const chunks = spans.map(([s, n]) =>
      tf.tidy(() => {
        const logits = matmul(h.slice([s, 0], [n, -1]), head) as tf.Tensor2D; // [n, V]
        const t = tf.tensor1d(targetIds.subarray(s, s + n), 'int32');
        const w = tf.tensor1d(targetWeights.subarray(s, s + n), 'float32');
        const max = tf.max(logits, 1, true); // [n, 1]
        const e = tf.exp(tf.sub(logits, max)); // [n, V]
        const z = tf.sum(e, 1, true); // [n, 1]
        const lse = tf.add(tf.log(z), max).reshape([n]); // [n]
        const loss = tf.sum(tf.mul(tf.sub(lse, targetLogits(logits, t)), w));
        const diff = tf.mul(tf.sub(tf.div(e, z), tf.oneHot(t, V)), w.reshape([n, 1])); // [n, V]
        const grad = headT ? tf.matMul(diff, headT) : tf.matMul(diff, head, false, true); // [n, C]
        return [loss, grad] as const;
      }),
    );
    headT?.dispose();
    const losses = chunks.map(([l]) => l);
    const value = losses.length === 1 ? losses[0] : sumTensors(losses);
    if (losses.length > 1) losses.forEach((l) => l.dispose());
    const grads = chunks.map(([, g]) => g);
    const grad = grads.length === 1 ? grads[0] : tf.concat(grads, 0); // [N, C]
    if (grads.length > 1) grads.forEach((g) => g.dispose());
    save([grad]);
    return {
      value: value as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(saved[0], dy)],
    };
  });
  return op(hidden) as tf.Scalar;
}

/** Σ weighted NLL and Σ weighted correct argmax predictions, without gradients (evaluation). */
export function chunkedLmEval(hidden: tf.Tensor2D, head: tf.Tensor2D, targetIds: Int32Array, targetWeights: Float32Array, chunkRows: number): tf.Tensor1D {
  return tf.tidy(() => {
    const N = hidden.shape[0];
    const parts: tf.Tensor[] = [];
    for (let s = 0; s < N; s += chunkRows) {
      const n = Math.min(chunkRows, N - s);
      parts.push(
        tf.tidy(() => {
          const logits = matmul(hidden.slice([s, 0], [n, -1]), head) as tf.Tensor2D;
          const t = tf.tensor1d(targetIds.subarray(s, s + n), 'int32');
          const w = tf.tensor1d(targetWeights.subarray(s, s + n), 'float32');
          const nll = tf.sum(tf.mul(tf.sub(tf.logSumExp(logits, 1), targetLogits(logits, t)), w));
          const correct = tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), t), 'float32'), w));
          return tf.stack([nll, correct]);
        }),
      );
    }
    return sumTensors(parts) as tf.Tensor1D; // [Σ nll, Σ correct]
  });
}
