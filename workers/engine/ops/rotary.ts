// Rotary position embedding of x [B, T, n, D] at positions offset…offset+T−1, in transformers' rotate-half form:
// y = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁], from cos/sin tables [L, D] (each angle twice). One
// kernel where one is registered (WebGPU: ops/rotary-webgpu.ts; WASM: the plain loop here, for a decoded token). Its
// gradient is the rotation back, the same kernel with sin negated (the tables hold each angle in both halves, so
// rotate_halfᵀ(dy·sin) = −rotate_half(dy)·sin).
import * as tf from '../tf';
import { registerLoopKernel } from './backend-io';
import { kernelRuns } from './webgpu-program';

export const ROTARY = 'WebtuneRotary';

export interface RotaryAttrs {
  offset: number;
  sign: number; // +1 rotates forward, −1 back (the gradient)
}

/** Whether rotating x runs the kernel here (else tfjs's ops: WASM takes its loop for few values only). */
export function rotaryRuns(x: tf.Tensor): boolean {
  return kernelRuns(ROTARY, x.size);
}

/** The rotation by one kernel; callers without it (rotaryRuns) use tfjs's ops. */
export function rotaryKernel(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D, offset: number): tf.Tensor4D {
  return tf.engine().runKernel(ROTARY, { x, cos, sin }, { offset, sign: 1 } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

export function registerRotaryGradient(): void {
  tf.registerGradient({
    kernelName: ROTARY,
    inputsToSave: ['cos', 'sin'],
    gradFunc: (dy, saved, attrs) => {
      const [cos, sin] = saved;
      const { offset, sign } = attrs as unknown as RotaryAttrs;
      return {
        x: () => tf.engine().runKernel(ROTARY, { x: dy as tf.Tensor, cos, sin }, { offset, sign: -sign } as unknown as tf.NamedAttrMap) as tf.Tensor,
        // The tables are constants of the model: nothing upstream asks for their gradient.
        cos: () => tf.zerosLike(cos),
        sin: () => tf.zerosLike(sin),
      };
    },
  });
}

/** The kernel as a plain loop on WASM: each value, its rotate-half partner and its position's two table entries. */
export function registerRotaryLoop(): void {
  registerLoopKernel<RotaryAttrs>(
    ROTARY,
    ({ x }) => x!.shape,
    ({ x, cos, sin }, out, { offset, sign }, shapes) => {
      const [, T, n, D] = shapes.x!.shape;
      const half = D / 2;
      for (let i = 0; i < out.length; i += D) {
        const at = (offset + (Math.floor(i / (n * D)) % T)) * D; // x [B, T, n, D]
        for (let d = 0; d < D; d++) {
          const turn = d < half ? -x![i + d + half] : x![i + d - half];
          out[i + d] = x![i + d] * cos![at + d] + sign * turn * sin![at + d];
        }
      }
    },
    { wasmOnly: true },
  );
}
