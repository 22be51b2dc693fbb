// The gated activation and its gradients on WebGPU (ops/gated-act.ts): one thread per element. One dispatch
// forward where tfjs's ops took three (SiLU) or nine (GELU), and one per input gradient.
import * as tf from '../tf';
import { flatProgram, programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { GATED_ACT, GATED_ACT_GRAD, type Activation, type GatedActAttrs } from './gated-act';

// WGSL: act(g) as `a` and act′(g) as `da`. tanh from exp(−2|u|), finite for every u (as tfjs's own kernel does).
export const ACT: Record<Activation, string> = {
  silu: `
          let s = 1.0 / (1.0 + exp(-g));
          let a = g * s;
          let da = s * (1.0 + g * (1.0 - s));`,
  gelu_tanh: `
          let u = 0.7978845608028654 * (g + 0.044715 * g * g * g);
          let e = exp(-2.0 * abs(u));
          let th = sign(u) * (1.0 - e) / (1.0 + e);
          let a = 0.5 * g * (1.0 + th);
          let da = 0.5 * (1.0 + th) + 0.5 * g * (1.0 - th * th) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * g * g);`,
};

/** The inputs a program reads, in binding order: a buffer a shader never reads has no binding to be given. */
const inputNames = (wrt: GatedActAttrs['wrt']) => (wrt === 'gate' ? ['gate', 'up', 'dy'] : wrt === 'up' ? ['gate', 'dy'] : ['gate', 'up']);

function program(h: ProgramHelpers, shape: number[], act: Activation, wrt: GatedActAttrs['wrt']) {
  const result = wrt === 'gate' ? 'dy[index] * up[index] * da' : wrt === 'up' ? 'dy[index] * a' : 'a * up[index]';
  return flatProgram(h, {
    outputShape: shape,
    shaderKey: `webtune_gated_${act}${wrt ? `_d${wrt}` : ''}`,
    variableNames: inputNames(wrt),
    uniforms: '',
    workgroupX: 128,
    prelude: '',
    body: `
          let g = gate[index];${ACT[act]}
          setOutputAtIndex(index, ${result});`,
  });
}

export async function registerGatedActWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(GATED_ACT, 'webgpu')) return;
  const helpers = await programHelpers();
  for (const grad of [false, true]) {
    tf.registerKernel({
      kernelName: grad ? GATED_ACT_GRAD : GATED_ACT,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const { act, wrt } = attrs as unknown as GatedActAttrs;
        const gate = inputs.gate as tf.TensorInfo;
        const which = grad ? wrt : undefined;
        const ins = inputNames(which).map((name) => inputs[name] as tf.TensorInfo);
        return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(helpers, gate.shape, act, which), ins, 'float32');
      },
    });
  }
}
