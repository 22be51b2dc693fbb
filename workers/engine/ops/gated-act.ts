// The gated MLP's activation, act(gate) · up, with act SiLU (SwiGLU) or GELU in its tanh form (Gemma), as one
// kernel where one is registered (WebGPU: ops/gated-act-webgpu.ts) and as tfjs's ops elsewhere. Its gradient is
// one kernel per input: d gate = dy · up · act′(gate), d up = dy · act(gate).
import * as tf from '../tf';
import { hasKernel } from './webgpu-program';
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

export function hasFusedGatedAct(backend = tf.getBackend()): boolean {
  return hasKernel(GATED_ACT, backend);
}

/** act(gate) · up [..., I]: the fused kernel on a backend that has one, else `gatedActOps`. */
export function gatedAct<T extends tf.Tensor>(gate: T, up: T, act: Activation): T {
  if (!hasFusedGatedAct()) return gatedActOps(gate, up, act);
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
