// What every WGSL op here builds on: tfjs-backend-webgpu's program helpers (its shader header, dispatch layout and
// size), the backend's program runner, and the frame of a program with one thread per output element; and, for
// every fused op, whether its kernel runs on a backend (hasKernel, kernelRuns: WASM's loops only for few values).
import * as tf from '../tf';

export interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
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

const MAX_X = 65535; // workgroups per dispatch dimension (WebGPU's guaranteed limit): more rows spill into y

/** The frame of a program with one workgroup per row (RMSNorm, attention): its dispatch, with rows past one dimension
 * spilled into the second, and the WGSL that names the workgroup's `row`, whether it is `valid` (a spilled grid has
 * spare workgroups; they must still reach every barrier, so no early return) and the thread's `lane`. */
export function workgroupPerRow(rows: number, outputRank: number) {
  return {
    dispatchLayout: { x: [], y: Array.from({ length: outputRank }, (_, i) => i) }, // not flat: main() takes no index
    dispatch: [Math.min(rows, MAX_X), Math.ceil(rows / MAX_X), 1] as [number, number, number],
    rowHeader: `let row = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
        let valid = row < uniforms.rows;
        let lane = i32(localIndex);`,
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

/**
 * Elements up to which WASM takes an op's plain-loop kernel (a decoded token's norms, rotations and activations):
 * there one loop beats tfjs's op-by-op path, whose cost is per op; past it, tfjs's SIMD ops are faster.
 */
export const WASM_LOOP_MAX_ELEMENTS = 1 << 16;

/** Whether an op on `elements` values runs its kernel `kernelName` here: always where one is registered, except
 * on WASM past WASM_LOOP_MAX_ELEMENTS. */
export function kernelRuns(kernelName: string, elements: number, backend = tf.getBackend()): boolean {
  return hasKernel(kernelName, backend) && (backend !== 'wasm' || elements <= WASM_LOOP_MAX_ELEMENTS);
}
