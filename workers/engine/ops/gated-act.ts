// The gated MLP's activation, act(gate) · up, with act SiLU (SwiGLU) or GELU in its tanh form (Gemma), as one
// kernel where one is registered (WebGPU: ops/gated-act-webgpu.ts; WASM: the plain loops here, for a decoded
// token) and as tfjs's ops elsewhere. Its gradient is one kernel per input: d gate = dy · up · act′(gate),
// d up = dy · act(gate).
import * as tf from '../tf';
import { registerLoopKernel } from './backend-io';
import { kernelRuns } from './webgpu-program';
import type { ModelConfig } from '../config';

export const GATED_ACT = 'WebtuneGatedAct';
export const GATED_ACT_GRAD = 'WebtuneGatedActGrad';

export type Activation = ModelConfig['activation'];

export interface GatedActAttrs {
  act: Activation;
  wrt?: 'gate' | 'up'; // the gradient kernel: which input's gradient
}

/** GELU, tanh approximation (PyTorch's gelu(approximate="tanh")): ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** act(gate) · up in tfjs's ops: what backends without the kernel run, and what the kernel is checked against. */
export function gatedActOps<T extends tf.Tensor>(gate: T, up: T, act: Activation): T {
  return tf.mul(act === 'silu' ? tf.mul(gate, tf.sigmoid(gate)) : geluTanh(gate), up) as T;
}

/** act(gate) · up [..., I]: the fused kernel on a backend that has one, else `gatedActOps`. */
export function gatedAct<T extends tf.Tensor>(gate: T, up: T, act: Activation): T {
  if (!kernelRuns(GATED_ACT, gate.size)) return gatedActOps(gate, up, act);
  return tf.engine().runKernel(GATED_ACT, { gate, up }, { act } as unknown as tf.NamedAttrMap) as T;
}

export function registerGatedActGradient(): void {
  tf.registerGradient({
    kernelName: GATED_ACT,
    inputsToSave: ['gate', 'up'],
    gradFunc: (dy, saved, attrs) => {
      const [gate, up] = saved;
      const grad = (wrt: 'gate' | 'up') => () => tf.engine().runKernel(GATED_ACT_GRAD, { gate, up, dy: dy as tf.Tensor }, { ...attrs, wrt } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return { gate: grad('gate'), up: grad('up') };
    },
  });
}

/** act(g) and act′(g), as the WGSL kernels compute them (ops/gated-act-webgpu.ts). */
const GELU_C = Math.sqrt(2 / Math.PI);
const ACTIVATIONS: Record<Activation, { a: (g: number) => number; da: (g: number) => number }> = {
  silu: {
    a: (g) => g / (1 + Math.exp(-g)),
    da: (g) => {
      const s = 1 / (1 + Math.exp(-g));
      return s * (1 + g * (1 - s));
    },
  },
  gelu_tanh: {
    a: (g) => 0.5 * g * (1 + Math.tanh(GELU_C * (g + 0.044715 * g * g * g))),
    da: (g) => {
      const th = Math.tanh(GELU_C * (g + 0.044715 * g * g * g));
      return 0.5 * (1 + th) + 0.5 * g * (1 - th * th) * GELU_C * (1 + 3 * 0.044715 * g * g);
    },
  },
};

/** The kernel and its gradients as plain loops on WASM. */
export function registerGatedActLoops(): void {
  for (const grad of [false, true]) {
    registerLoopKernel<GatedActAttrs>(
      grad ? GATED_ACT_GRAD : GATED_ACT,
      ({ gate }) => gate!.shape,
      ({ gate, up, dy }, out, { act, wrt }) => {
        const { a, da } = ACTIVATIONS[act];
        const n = out.length;
        if (!grad) for (let i = 0; i < n; i++) out[i] = a(gate![i]) * up![i];
        else if (wrt === 'gate') for (let i = 0; i < n; i++) out[i] = dy![i] * up![i] * da(gate![i]);
        else for (let i = 0; i < n; i++) out[i] = dy![i] * a(gate![i]);
      },
      { wasmOnly: true },
    );
  }
}
