// RMSNorm over the last axis, y = x · rsqrt(mean(x²) + eps) · (w + offset) (offset 1 for Gemma's (1 + w)), as
// one kernel where one is registered (WebGPU: ops/rms-norm-webgpu.ts; WASM: the plain loops here, for a decoded
// token's few rows) and as tfjs's own ops elsewhere (cpu, and WASM's larger tensors). Its gradient is one kernel too:
// with r = rsqrt(mean(x²) + eps) and g = dy · (w + offset), dx = r·g − r³·x·Σ(g·x)/C. The norm weights are frozen,
// so dw is formed only if asked.
import * as tf from '../tf';
import { registerLoopKernel } from './backend-io';
import { kernelRuns } from './webgpu-program';

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
  if (!kernelRuns(RMS_NORM, x.size)) return rmsNormOps(x, w, eps, offset);
  return tf.engine().runKernel(RMS_NORM, { x, w }, { eps, offset } as unknown as tf.NamedAttrMap) as T;
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

/** Both kernels as plain loops on WASM, row by row in double precision: dy given, the gradient for x. */
export function registerRmsNormLoops(): void {
  for (const grad of [false, true]) {
    registerLoopKernel<RmsNormAttrs>(
      grad ? RMS_NORM_GRAD : RMS_NORM,
      ({ x }) => x!.shape,
      ({ x, w, dy }, out, { eps, offset }, shapes) => {
        const C = shapes.x!.shape[shapes.x!.shape.length - 1];
        for (let row = 0; row < out.length; row += C) {
          let squares = 0;
          for (let c = 0; c < C; c++) squares += x![row + c] * x![row + c];
          const r = 1 / Math.sqrt(squares / C + eps);
          if (!grad) {
            for (let c = 0; c < C; c++) out[row + c] = x![row + c] * r * (w![c] + offset);
            continue;
          }
          let gx = 0;
          for (let c = 0; c < C; c++) gx += dy![row + c] * (w![c] + offset) * x![row + c];
          const k = (r * r * r * gx) / C;
          for (let c = 0; c < C; c++) out[row + c] = r * dy![row + c] * (w![c] + offset) - k * x![row + c];
        }
      },
      { wasmOnly: true },
    );
  }
}
