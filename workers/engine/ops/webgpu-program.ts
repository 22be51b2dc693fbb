// What every WGSL op here builds on: tfjs-backend-webgpu's program helpers (its shader header, dispatch layout and
// size), the backend's program runner, and the frame of a program with one thread per output element.
import * as tf from '../tf';

export interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo;
}
export interface ProgramHelpers {
  getMainHeaderString(...index: string[]): string; // with an index: main(index : i32), one thread per element; without: main()
  computeDispatch(layout: { x: number[] }, shape: number[], workgroup: [number, number, number]): [number, number, number];
  flatDispatchLayout(shape: number[]): { x: number[] };
}

/** The parts of a program with one thread per output element (flat dispatch, `uniforms.size` bound): `body` is the
 * WGSL for output `index`, run only below the size. */
export function flatProgram(h: ProgramHelpers, p: { outputShape: number[]; shaderKey: string; variableNames: string[]; uniforms: string; workgroupX: number; prelude: string; body: string }) {
  const workgroupSize: [number, number, number] = [p.workgroupX, 1, 1];
  const dispatchLayout = h.flatDispatchLayout(p.outputShape);
  return {
    outputShape: p.outputShape,
    shaderKey: p.shaderKey,
    dispatchLayout,
    dispatch: h.computeDispatch(dispatchLayout, p.outputShape, workgroupSize),
    variableNames: p.variableNames,
    uniforms: p.uniforms,
    workgroupSize,
    size: true,
    getUserCode: () => `${p.prelude}
      ${h.getMainHeaderString('index')} {
        if (index < uniforms.size) {
          ${p.body}
        }
      }`,
  };
}

/** tfjs-backend-webgpu's helpers for writing a program (its shader header, dispatch layout and size). */
export async function programHelpers(): Promise<ProgramHelpers> {
  const util = (await import('@tensorflow/tfjs-backend-webgpu')).webgpu_util as unknown as ProgramHelpers;
  const main = (await import('@tensorflow/tfjs-backend-webgpu/dist/webgpu_program')) as unknown as Pick<ProgramHelpers, 'getMainHeaderString'>;
  return { ...util, getMainHeaderString: main.getMainHeaderString };
}

/** Whether `kernelName` has a kernel on `backend` (the current one by default): a fused op runs only where it does. */
export function hasKernel(kernelName: string, backend = tf.getBackend()): boolean {
  return tf.getKernel(kernelName, backend) !== undefined;
}
