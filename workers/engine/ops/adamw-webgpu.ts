// The AdamW kernels on WebGPU (ops/adamw.ts): one thread per element; each of the three writes one new tensor
// (a program has one output), recomputing the moments it needs, which costs nothing next to a dispatch.
import * as tf from '../tf';
import { flatProgram, programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { ADAMW, type AdamWAttrs } from './adamw';

const INPUTS: Record<AdamWAttrs['out'], string[]> = { p: ['p', 'm', 'v', 'grad', 'clip', 'ok'], m: ['m', 'grad', 'clip', 'ok'], v: ['v', 'grad', 'clip', 'ok'] };

const RESULT: Record<AdamWAttrs['out'], string> = {
  m: 'mNew',
  v: 'vNew',
  p: 'p[index] * (1.0 - uniforms.lr * uniforms.decay) - uniforms.lr * (mNew / uniforms.c1) / (sqrt(vNew / uniforms.c2) + uniforms.epsilon)',
};
const KEEP: Record<AdamWAttrs['out'], string> = { p: 'p[index]', m: 'm[index]', v: 'v[index]' };

function program(h: ProgramHelpers, shape: number[], out: AdamWAttrs['out']) {
  return flatProgram(h, {
    outputShape: shape,
    shaderKey: `webtune_adamw_${out}`,
    variableNames: INPUTS[out],
    uniforms: 'beta1 : f32, beta2 : f32, c1 : f32, c2 : f32, epsilon : f32, lr : f32, decay : f32,',
    workgroupX: 128,
    prelude: '',
    body: `
          let g = grad[index] * clip[0];
          ${out !== 'v' ? 'let mNew = uniforms.beta1 * m[index] + (1.0 - uniforms.beta1) * g;' : ''}
          ${out !== 'm' ? 'let vNew = uniforms.beta2 * v[index] + (1.0 - uniforms.beta2) * g * g;' : ''}
          setOutputAtIndex(index, select(${KEEP[out]}, ${RESULT[out]}, f32(ok[0]) > 0.5));`, // ok: a bool (held as i32)
  });
}

export async function registerAdamWWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(ADAMW, 'webgpu')) return;
  const helpers = await programHelpers();
  tf.registerKernel({
    kernelName: ADAMW,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as AdamWAttrs;
      const shape = (inputs.p as tf.TensorInfo).shape;
      const uniforms = [a.beta1, a.beta2, a.c1, a.c2, a.epsilon, a.lr, a.decay].map((x) => ({ type: 'float32', data: [x] }));
      const ins = INPUTS[a.out].map((name) => inputs[name] as tf.TensorInfo);
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(helpers, shape, a.out), ins, 'float32', uniforms);
    },
  });
}
