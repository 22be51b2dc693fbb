// The LM head's softmax cross-entropy, from the head's products z [n, V] (train/lm-loss.ts runs the product):
// per row its logsumexp, the target's negative log-likelihood and whether the argmax hits the target, stats [n, 3];
// and, when asked, the gradient of the NLL for z: dz = (softmax(l) − onehot(target)) ⊙ l′ [n, V]. Under Gemma's
// soft-capping l = cap · tanh(z / cap) and l′ = 1 − tanh², else l = z. One kernel on WebGPU
// (ops/lm-cross-entropy-webgpu.ts: a workgroup per row for its statistics, then dz one thread per value) where tfjs's
// ops take about twenty dispatches a chunk. Elsewhere lm-loss.ts keeps its ops, which never build an [n, V] one-hot;
// `lmCrossEntropyOps` here is the same in tfjs's ops, the reference the kernel is checked against.
import * as tf from '../tf';
import { hasKernel } from './webgpu-program';

export const LM_CROSS_ENTROPY = 'WebtuneLmCrossEntropy';

export interface LmCrossEntropyAttrs {
  cap: number; // soft-capping of the logits; 0 = none
  grad: boolean; // also dz
}

export interface LmCrossEntropy {
  stats: tf.Tensor2D; // [n, 3]: logsumexp, the target's NLL, 1 where argmax (its first index) is the target else 0
  dz: tf.Tensor2D | null; // [n, V] when asked
}

/** Whether the kernel runs on `backend` (the current one by default). */
export function lmCrossEntropyRuns(backend = tf.getBackend()): boolean {
  return hasKernel(LM_CROSS_ENTROPY, backend);
}

/** The kernel, where it runs (lmCrossEntropyRuns). z [n, V] float32, targets [n] int32 in [0, V). */
export function lmCrossEntropy(z: tf.Tensor2D, targets: tf.Tensor1D, cap: number | null, grad: boolean): LmCrossEntropy {
  const attrs: LmCrossEntropyAttrs = { cap: cap ?? 0, grad };
  const out = tf.engine().runKernel(LM_CROSS_ENTROPY, { z, targets }, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor2D[];
  return { stats: out[0], dz: grad ? out[1] : null };
}

/** The same in tfjs's ops (with a one-hot): what the kernel is checked against. */
export function lmCrossEntropyOps(z: tf.Tensor2D, targets: tf.Tensor1D, cap: number | null, grad: boolean): LmCrossEntropy {
  const [stats, dz] = tf.tidy(() => {
    const V = z.shape[1];
    const tc = cap ? tf.tanh(tf.div(z, cap)) : null;
    const l = tc ? (tf.mul(tc, cap!) as tf.Tensor2D) : z; // [n, V]
    const lse = tf.logSumExp(l, 1); // [n]
    const hot = tf.oneHot(targets, V).toFloat(); // [n, V]
    const nll = tf.sub(lse, tf.sum(tf.mul(l, hot), 1)); // [n]
    const hit = tf.cast(tf.equal(tf.argMax(l, 1), targets), 'float32'); // [n]
    const stats = tf.stack([lse, nll, hit], 1) as tf.Tensor2D; // [n, 3]
    if (!grad) return [stats];
    const dl = tf.sub(tf.exp(tf.sub(l, lse.reshape([-1, 1]))), hot); // [n, V]
    return [stats, (tc ? tf.mul(dl, tf.sub(1, tf.square(tc))) : dl) as tf.Tensor2D];
  });
  return { stats, dz: dz ?? null };
}
