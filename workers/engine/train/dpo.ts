// Direct Preference Optimization (Rafailov et al., 2023) on log-probabilities of whole answers:
//   loss = −(1 − ε)·log σ(z) − ε·log σ(−z),  z = β·((log π(chosen) − log π(rejected)) − (log ref(chosen) − log ref(rejected)))
// with ε the label smoothing (conservative DPO; 0 = plain DPO). The reference is the same base with the adapter
// off, so no second model exists; its log-probabilities are computed once per pair and kept on the host. The
// implicit rewards β·(log π − log ref) give TRL's metrics (rewards/chosen, /rejected, /accuracies, /margins).
import * as tf from '../tf';
import type { ForwardOptions, LlamaModel } from '../llama';
import type { Batch } from './examples';
import { chunkedSequenceLosses } from './lm-loss';

/** log π(answer | prompt) of each sequence of the batch, summed over its trained tokens: [B], differentiable in
 * the LoRA weights (the adapter, scale and dropout are the pass's). */
export function sequenceLogProbs(model: LlamaModel, b: Batch, pass: ForwardOptions, chunkRows: number): tf.Tensor1D {
  const hidden = model.forward(tf.tensor2d(b.ids, [b.B, b.T], 'int32'), pass); // [B, T, C]
  const nll = chunkedSequenceLosses(hidden.reshape([b.B * b.T, -1]), model.head(), b.targets, b.weights, rowSequences(b.B, b.T), b.B, chunkRows, model.config.finalSoftcap);
  return tf.neg(nll);
}

/** log σ(z) for any z without overflow: min(z, 0) − log(1 + e^−|z|). */
function logSigmoid(z: tf.Tensor): tf.Tensor {
  return tf.sub(tf.minimum(z, 0), tf.log(tf.add(1, tf.exp(tf.neg(tf.abs(z))))));
}

/**
 * Per pair p: the loss and the two rewards. `policy` and `reference` hold log-probabilities with pair p's chosen
 * answer at 2p and its rejected one at 2p + 1. Returns [P] tensors; only `policy` carries a gradient.
 */
export function dpoTerms(policy: tf.Tensor1D, reference: Float32Array, beta: number, labelSmoothing: number): { loss: tf.Tensor1D; chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  const P = policy.shape[0] / 2;
  const pi = policy.reshape([P, 2]);
  const ref = tf.tensor2d(reference, [P, 2]);
  const rewards = tf.mul(tf.sub(pi, ref), beta); // [P, 2]: β·(log π − log ref) of chosen, rejected
  const [chosen, rejected] = tf.split(rewards, 2, 1).map((t) => t.reshape([P]) as tf.Tensor1D);
  const z = tf.sub(chosen, rejected); // [P]
  const loss = labelSmoothing === 0 ? tf.neg(logSigmoid(z)) : tf.sub(tf.mul(logSigmoid(z), -(1 - labelSmoothing)), tf.mul(logSigmoid(tf.neg(z)), labelSmoothing));
  return { loss: loss as tf.Tensor1D, chosen, rejected };
}

/** [Σ loss, Σ chosen reward, Σ rejected reward, Σ (chosen > rejected), Σ margin] of a batch's pairs, no gradient. */
export function dpoSums(t: { loss: tf.Tensor1D; chosen: tf.Tensor1D; rejected: tf.Tensor1D }): tf.Tensor1D {
  return tf.tidy(() => {
    const margin = tf.sub(t.chosen, t.rejected);
    return tf.stack([tf.sum(t.loss), tf.sum(t.chosen), tf.sum(t.rejected), tf.sum(tf.cast(tf.greater(margin, 0), 'float32')), tf.sum(margin)]) as tf.Tensor1D;
  });
}

/** Row → its sequence in a [B, T] batch flattened to B·T rows. */
export function rowSequences(B: number, T: number): Int32Array {
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) out.fill(b, b * T, (b + 1) * T);
  return out;
}
