// The rotary kernel on WebGPU (ops/rotary.ts): one thread per output element, reading its own value, its
// rotate-half partner and the two table entries of its position. One dispatch where tfjs's ops took six
// (two table slices, the rotate-half product, two products and a sum).
import * as tf from '../tf';
import { flatProgram, programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { ROTARY, type RotaryAttrs } from './rotary';

function program(h: ProgramHelpers, shape: number[]) {
  return flatProgram(h, {
    outputShape: shape,
    shaderKey: 'webtune_rotary',
    variableNames: ['x', 'cosT', 'sinT'],
    uniforms: 'T : i32, nD : i32, D : i32, offset : i32, sign : f32,',
    workgroupX: 128,
    prelude: '',
    body: `
          let d = index % uniforms.D;
          let t = (index / uniforms.nD) % uniforms.T; // x [B, T, n, D]
          let half = uniforms.D / 2;
          let at = (uniforms.offset + t) * uniforms.D + d;
          var partner = index - half;
          var turn = 1.0;
          if (d < half) { partner = index + half; turn = -1.0; }
          setOutputAtIndex(index, x[index] * cosT[at] + uniforms.sign * turn * x[partner] * sinT[at]);`,
  });
}

export async function registerRotaryWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(ROTARY, 'webgpu')) return;
  const helpers = await programHelpers();
  tf.registerKernel({
    kernelName: ROTARY,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { offset, sign } = attrs as unknown as RotaryAttrs;
      const x = inputs.x as tf.TensorInfo;
      const [, T, n, D] = x.shape;
      const uniforms = [
        { type: 'int32', data: [T] },
        { type: 'int32', data: [n * D] },
        { type: 'int32', data: [D] },
        { type: 'int32', data: [offset] },
        { type: 'float32', data: [sign] },
      ];
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(helpers, x.shape), [x, inputs.cos as tf.TensorInfo, inputs.sin as tf.TensorInfo], 'float32', uniforms);
    },
  });
}
