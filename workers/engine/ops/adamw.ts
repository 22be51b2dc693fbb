// One AdamW update of a parameter, its moments read and the three new tensors written by three kernels where
// they are registered (WebGPU: ops/adamw-webgpu.ts), where tfjs's ops take about twenty per parameter. The
// update (train/optimizer.ts holds the formula for the other backends): g = grad · clip; m' = β₁m + (1 − β₁)g;
// v' = β₂v + (1 − β₂)g²; p' = p(1 − lr·decay) − lr · (m'/c₁) / (√(v'/c₂) + ε); each kept as it was when `ok` is 0
// (a non-finite gradient norm, decided on the device).
import * as tf from '../tf';
import { hasKernel } from './webgpu-program';

export const ADAMW = 'WebtuneAdamW';

export interface AdamWAttrs {
  out: 'p' | 'm' | 'v'; // which of the three new tensors this kernel writes
  beta1: number;
  beta2: number;
  c1: number; // 1 − β₁ᵗ
  c2: number; // 1 − β₂ᵗ
  epsilon: number;
  lr: number;
  decay: number; // the weight decay (decoupled)
}

export function hasFusedAdamW(backend = tf.getBackend()): boolean {
  return hasKernel(ADAMW, backend);
}

/** The parameter's, first and second moments' new values; `clip` (float32) and `ok` (bool) are scalars on the device. */
export function adamwKernels(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, grad: tf.Tensor, clip: tf.Scalar, ok: tf.Scalar, attrs: Omit<AdamWAttrs, 'out'>): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const run = (out: AdamWAttrs['out']) => tf.engine().runKernel(ADAMW, { p, m, v, grad, clip, ok }, { ...attrs, out } as unknown as tf.NamedAttrMap) as tf.Tensor;
  return [run('p'), run('m'), run('v')];
}
