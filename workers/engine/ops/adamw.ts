// One AdamW update of a parameter, its moments read and the three new tensors written by three kernels where
// they are registered (WebGPU: ops/adamw-webgpu.ts; WASM: the plain loop below), where tfjs's ops take about twenty
// per parameter: on WASM, a 30-layer adapter's 420 tensors took 14,000 kernels and about a second a step, on one
// thread. The update (train/optimizer.ts holds the formula for the cpu backend): g = grad · clip; m' = β₁m + (1 − β₁)g;
// v' = β₂v + (1 − β₂)g²; p' = p(1 − lr·decay) − lr · (m'/c₁) / (√(v'/c₂) + ε); each kept as it was when `ok` is 0
// (a non-finite gradient norm, decided on the device).
import * as tf from '../tf';
import { registerLoopKernel } from './backend-io';
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

/** AdamW as a plain loop on WASM (the three kernels each a pass over the parameter; cpu keeps tfjs's ops). */
export function registerAdamWLoop(): void {
  registerLoopKernel<AdamWAttrs>(
    ADAMW,
    ({ p }) => p!.shape,
    ({ p, m, v, grad, clip, ok }, out, { out: which, beta1, beta2, c1, c2, epsilon, lr, decay }) => {
      const keep = which === 'p' ? p! : which === 'm' ? m! : v!;
      if (!ok![0]) return out.set(keep);
      const k = clip![0];
      const n = out.length;
      if (which === 'm') for (let i = 0; i < n; i++) out[i] = beta1 * m![i] + (1 - beta1) * grad![i] * k;
      else if (which === 'v') for (let i = 0; i < n; i++) out[i] = beta2 * v![i] + (1 - beta2) * (grad![i] * k) ** 2;
      else {
        const [keepP, step] = [1 - lr * decay, lr / c1];
        for (let i = 0; i < n; i++) {
          const g = grad![i] * k;
          const mNew = beta1 * m![i] + (1 - beta1) * g;
          const vNew = beta2 * v![i] + (1 - beta2) * g * g;
          out[i] = p![i] * keepP - (step * mNew) / (Math.sqrt(vNew / c2) + epsilon);
        }
      }
    },
    { wasmOnly: true },
  );
}
