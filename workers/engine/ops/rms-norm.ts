// RMSNorm over the last axis, y = x · rsqrt(mean(x²) + eps) · (w + offset) (offset 1 for Gemma's (1 + w)), as
// one kernel where one is registered (WebGPU: ops/rms-norm-webgpu.ts) and as tfjs's own ops elsewhere (WASM and
// cpu, whose fast elementwise paths need no fusing). Its gradient is one kernel too: with r = rsqrt(mean(x²) + eps)
// and g = dy · (w + offset), dx = r·g − r³·x·Σ(g·x)/C. The norm weights are frozen, so dw is formed only if asked.
import * as tf from '../tf';
import { hasKernel } from './webgpu-program';

export const RMS_NORM = 'WebtuneRmsNorm';
export const RMS_NORM_GRAD = 'WebtuneRmsNormGrad';

export interface RmsNormAttrs {
  eps: number;
  offset: number;
}

/** The formula in tfjs's ops: what every backend without the kernel runs, and what the kernel is checked against. */
export function rmsNormOps<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number, offset: number): T {
  const variance = tf.mean(tf.square(x), -1, true); // [..., 1]
  const scale = offset ? tf.add(w, offset) : w;
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), scale) as T;
}

/** RMSNorm of x [..., C] by w [C]: the fused kernel on a backend that has one, else `rmsNormOps`. */
export function rmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number, offset: number): T {
  if (!hasFusedRmsNorm()) return rmsNormOps(x, w, eps, offset);
  return tf.engine().runKernel(RMS_NORM, { x, w }, { eps, offset } as unknown as tf.NamedAttrMap) as T;
}

export function hasFusedRmsNorm(backend = tf.getBackend()): boolean {
  return hasKernel(RMS_NORM, backend);
}

export function registerRmsNormGradient(): void {
  tf.registerGradient({
    kernelName: RMS_NORM,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, saved, attrs) => {
      const [x, w] = saved;
      const { eps } = attrs as unknown as RmsNormAttrs;
      return {
        x: () => tf.engine().runKernel(RMS_NORM_GRAD, { x, w, dy: dy as tf.Tensor }, attrs) as tf.Tensor,
        w: () => {
          const C = x.shape[x.shape.length - 1];
          const r = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
          return tf.sum(tf.mul(tf.mul(dy as tf.Tensor, x), r).reshape([-1, C]), 0);
        },
      };
    },
  });
}
