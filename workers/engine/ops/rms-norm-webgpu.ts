// RMSNorm and its gradient on WebGPU (the kernels of ops/rms-norm.ts): one workgroup of 64 threads per row. The
// threads sum their strided share of the row, the workgroup adds the 64 partial sums in shared memory, and each
// thread writes its share of the outputs: one dispatch where tfjs's ops take six forward and a dozen backward.
import * as tf from '../tf';
import { programHelpers, workgroupPerRow, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { RMS_NORM, RMS_NORM_GRAD, type RmsNormAttrs } from './rms-norm';

const THREADS = 64;

/** WGSL: the workgroup's sum of `term(c)` over its row's columns, into `name` (every thread gets it). */
const rowSum = (name: string, term: string, slot: string) => `
  var ${name}Part = 0.0;
  for (var c = lane; c < C; c += ${THREADS}) { if (valid) { ${name}Part += ${term}; } }
  ${slot}[lane] = ${name}Part;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}; stride > 0; stride >>= 1) {
    if (lane < stride) { ${slot}[lane] += ${slot}[lane + stride]; }
    workgroupBarrier();
  }
  let ${name} = ${slot}[0];
  workgroupBarrier();`;

function program(h: ProgramHelpers, grad: boolean, shape: number[], rows: number) {
  const frame = workgroupPerRow(rows, shape.length);
  return {
    outputShape: shape,
    shaderKey: `webtune_rms_norm${grad ? '_grad' : ''}`,
    dispatchLayout: frame.dispatchLayout,
    dispatch: frame.dispatch,
    variableNames: grad ? ['x', 'w', 'dy'] : ['x', 'w'],
    uniforms: 'rows : i32, cols : i32, eps : f32, offset : f32,',
    workgroupSize: [THREADS, 1, 1] as [number, number, number],
    getUserCode: () => `
      var<workgroup> sums : array<f32, ${THREADS}>;
      ${h.getMainHeaderString()} {
        ${frame.rowHeader}
        let C = uniforms.cols;
        let base = row * C;
        ${rowSum('squares', 'x[base + c] * x[base + c]', 'sums')}
        let r = inverseSqrt(squares / f32(C) + uniforms.eps);
        ${grad ? `${rowSum('gx', 'dy[base + c] * (w[c] + uniforms.offset) * x[base + c]', 'sums')}
        let k = r * r * r * gx / f32(C);
        for (var c = lane; c < C; c += ${THREADS}) {
          if (valid) { setOutputAtIndex(base + c, r * dy[base + c] * (w[c] + uniforms.offset) - k * x[base + c]); }
        }` : `
        for (var c = lane; c < C; c += ${THREADS}) {
          if (valid) { setOutputAtIndex(base + c, x[base + c] * r * (w[c] + uniforms.offset)); }
        }`}
      }`,
  };
}

/** RMSNorm of x by w (with dy: its gradient for x) as one program on `backend`; row-linear runs it too. */
export function runRmsNorm(backend: WebGpuBackendLike, helpers: ProgramHelpers, x: tf.TensorInfo, w: tf.TensorInfo, { eps, offset }: RmsNormAttrs, dy?: tf.TensorInfo): tf.TensorInfo {
  const cols = x.shape[x.shape.length - 1];
  const rows = tf.util.sizeFromShape(x.shape) / cols;
  const uniforms = [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [cols] },
    { type: 'float32', data: [eps] },
    { type: 'float32', data: [offset] },
  ];
  return backend.runWebGPUProgram(program(helpers, !!dy, x.shape, rows), [x, w, ...(dy ? [dy] : [])], 'float32', uniforms);
}

/** Register both kernels once tfjs-backend-webgpu is loaded. */
export async function registerRmsNormWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(RMS_NORM, 'webgpu')) return;
  const helpers = await programHelpers();
  for (const grad of [false, true]) {
    tf.registerKernel({
      kernelName: grad ? RMS_NORM_GRAD : RMS_NORM,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, attrs, backend }) =>
        runRmsNorm(backend as unknown as WebGpuBackendLike, helpers, inputs.x as tf.TensorInfo, inputs.w as tf.TensorInfo, attrs as unknown as RmsNormAttrs, grad ? (inputs.dy as tf.TensorInfo) : undefined),
    });
  }
}
