// The row-linear kernel on WebGPU (ops/row-linear.ts): x [N, C] · W [C, O] for N ≤ 4 rows, one workgroup of
// 4 × 64 threads per 64 output columns. The 64 columns' threads read 64 adjacent weights of one input row at a
// time, the four groups take every fourth input row, and shared memory adds their partial sums; each weight is read
// once for all N rows. The pre-norm's scale r = rsqrt(mean(x²) + eps) is found by the same threads first (applied
// at the end, as Σ x·(w+o)·W · r), and the bias, the residual or the gate's activation are added as it writes (the
// gate its own product's, or an input). An
// adapter's x·Aᵀ (rank r ≤ 128) is computed by every workgroup into shared memory first, r·C multiply-adds, and its
// (x·Aᵀ)·Bᵀ added per column; the gated pair takes one adapter on each of its products. Shared memory stays within
// 12.1 KiB (4 rows, gated, two adapters of rank 128), under WebGPU's guaranteed 16 KiB. A packed W (and W₂) is read
// from its words as it stands ([O, C]: the thread of column j decodes element c of row j), by the decoder every
// packed kernel shares (ops/dequantize-webgpu.ts).
import * as tf from '../tf';
import { programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { runRmsNorm } from './rms-norm-webgpu';
import { ROW_LINEAR, ROW_LINEAR_MAX_ROWS, type RowLinearAttrs } from './row-linear';
import { ACT } from './gated-act-webgpu';
import type { Activation } from './gated-act';
import { weightAt } from './dequantize-webgpu';
import type { PackFormat } from '../quant/format';

const COLS = 64;
const PARTS = 4;
const THREADS = COLS * PARTS;

interface Variant {
  N: number;
  rank: number; // W's adapter's, 0 without one
  rank2: number; // W₂'s adapter's (gated), 0 without one
  norm: boolean;
  bias: boolean;
  residual: boolean;
  act: Activation | ''; // the gated pair's, or the given gate's
  gate: boolean; // act(gate) · (x·W) with the gate an input [N, O]
  format: PackFormat | ''; // W's packing ('' float32 [C, O])
  scales: boolean; // the packing has scales (int8, int4)
}

function program(h: ProgramHelpers, v: Variant, O: number) {
  const { N, norm, act, rank: R, rank2: R2, format } = v;
  const gated = act !== '' && !v.gate; // the pair: W₂ bound too
  const weight = (suffix: string) => (format ? [`words${suffix}`, ...(v.scales ? [`scales${suffix}`] : [])] : [`w${suffix}`]);
  const names = ['x', ...weight(''), ...(norm ? ['normW'] : []), ...(v.bias ? ['bias'] : []), ...(v.residual ? ['residual'] : []), ...(v.gate ? ['gate'] : []), ...(gated ? weight('2') : []), ...(R ? ['loraA', 'loraB'] : []), ...(R2 ? ['lora2A', 'lora2B'] : [])];
  // W[c, j] (and W₂'s): float32 [C, O], or element c of a packed [O, C] matrix's row j
  const wAt = format ? 'weightAt(j, c)' : 'w[c * O + j]';
  const w2At = format ? 'weightAt2(j, c)' : 'w2[c * O + j]';
  const decoders = format ? `${weightAt(format)}${gated ? weightAt(format, '2') : ''}` : '';
  const xn = (n: string, c: string) => `x[${n} * C + ${c}]${norm ? ` * (normW[${c}] + uniforms.offset)` : ''}`; // before the norm's r
  const rows = (body: string) => `for (var n = 0; n < ${N}; n++) { ${body} }`;
  // An adapter's x·Aᵀ [N, rank] into shared memory `xa`, and its term added to `y` per column.
  const lowRank = (rank: number, A: string, xa: string) => `
        for (var nr = lane; nr < ${N * rank}; nr += ${THREADS}) {
          let n = nr / ${rank};
          let r = nr % ${rank};
          var t = 0.0;
          for (var c = 0; c < C; c++) { t += ${xn('n', 'c')} * ${A}[r * C + c]; }
          ${xa}[nr] = t${norm ? ' * rs[n]' : ''};
        }`;
  const addLowRank = (rank: number, B: string, xa: string, y: string, scale: string) => `{
            var low = 0.0;
            for (var r = 0; r < ${rank}; r++) { low += ${xa}[n * ${rank} + r] * ${B}[j * ${rank} + r]; }
            ${y} += ${scale} * low;
            }`;
  return {
    outputShape: [N, O],
    shaderKey: `webtune_row_linear_${N}_${names.join('_')}_${act}_${R}_${R2}_${format}`,
    dispatchLayout: { x: [], y: [0, 1] }, // not flat: main() takes no index (columns come from workgroup ids)
    dispatch: [Math.ceil(O / COLS), 1, 1] as [number, number, number],
    variableNames: names,
    uniforms: 'C : i32, O : i32, eps : f32, offset : f32, scale : f32, scale2 : f32, wordsPerRow : i32, groups : i32, group : i32,',
    workgroupSize: [THREADS, 1, 1] as [number, number, number],
    getUserCode: () => `
      var<workgroup> part : array<f32, ${(gated ? 2 : 1) * N * THREADS}>;
      var<workgroup> rs : array<f32, ${N}>;
      ${R ? `var<workgroup> xa : array<f32, ${N * R}>; // the adapter's x·Aᵀ [N, R], each workgroup its own` : ''}
      ${R2 ? `var<workgroup> xa2 : array<f32, ${N * R2}>; // W₂'s adapter's` : ''}
      ${decoders}
      ${h.getMainHeaderString()} {
        let lane = i32(localIndex);
        let col = lane % ${COLS};
        let grp = lane / ${COLS};
        let j = i32(workgroupId.x) * ${COLS} + col;
        let C = uniforms.C;
        let O = uniforms.O;
        ${norm ? `
        ${rows(`var sq = 0.0;
          for (var c = lane; c < C; c += ${THREADS}) { let xv = x[n * C + c]; sq += xv * xv; }
          part[n * ${THREADS} + lane] = sq;`)}
        workgroupBarrier();
        if (lane < ${N}) {
          var t = 0.0;
          for (var i = 0; i < ${THREADS}; i++) { t += part[lane * ${THREADS} + i]; }
          rs[lane] = inverseSqrt(t / f32(C) + uniforms.eps);
        }
        workgroupBarrier();` : ''}
        ${R ? lowRank(R, 'loraA', 'xa') : ''}
        ${R2 ? lowRank(R2, 'lora2A', 'xa2') : ''}
        ${R || R2 ? 'workgroupBarrier();' : ''}
        var acc : array<f32, ${N}>;
        ${gated ? `var acc2 : array<f32, ${N}>;` : ''}
        if (j < O) {
          for (var c = grp; c < C; c += ${PARTS}) {
            let wv = ${wAt};
            ${gated ? `let wv2 = ${w2At};` : ''}
            ${rows(`let xv = ${xn('n', 'c')};
              acc[n] += xv * wv;${gated ? ' acc2[n] += xv * wv2;' : ''}`)}
          }
        }
        ${rows(`part[(n * ${PARTS} + grp) * ${COLS} + col] = acc[n];${gated ? ` part[${N * THREADS} + (n * ${PARTS} + grp) * ${COLS} + col] = acc2[n];` : ''}`)}
        workgroupBarrier();
        if (grp == 0 && j < O) {
          ${rows(`var y = 0.0;
            ${gated ? 'var y2 = 0.0;' : ''}
            for (var p = 0; p < ${PARTS}; p++) {
              y += part[(n * ${PARTS} + p) * ${COLS} + col];
              ${gated ? `y2 += part[${N * THREADS} + (n * ${PARTS} + p) * ${COLS} + col];` : ''}
            }
            ${norm ? `y *= rs[n];${gated ? ' y2 *= rs[n];' : ''}` : ''}
            ${v.bias ? 'y += bias[j];' : ''}
            ${R ? addLowRank(R, 'loraB', 'xa', 'y', 'uniforms.scale') : ''}
            ${R2 ? addLowRank(R2, 'lora2B', 'xa2', 'y2', 'uniforms.scale2') : ''}
            ${v.residual ? 'y += residual[n * O + j];' : ''}
            ${gated ? `let g = y;${ACT[act as Activation]}
            y = a * y2;` : ''}
            ${v.gate ? `let g = gate[n * O + j];${ACT[act as Activation]}
            y = a * y;` : ''}
            setOutputAtIndex(n * O + j, y);`)}
        }
      }`,
  };
}

/** A lower cap on the storage buffers one program may bind than the device's, for the numerics page: a GPU that
 * binds only WebGPU's guaranteed 8 takes the split path, and the page checks it on any GPU. */
let bufferCap = Infinity;
export function capStorageBuffers(n: number): void {
  bufferCap = n;
}

export async function registerRowLinearWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(ROW_LINEAR, 'webgpu')) return;
  const helpers = await programHelpers();
  tf.registerKernel({
    kernelName: ROW_LINEAR,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as RowLinearAttrs;
      const x = inputs.x as tf.TensorInfo;
      const [N, C] = x.shape;
      const words = inputs.words as tf.TensorInfo | undefined;
      const O = a.format ? words!.shape[0] : (inputs.w as tf.TensorInfo).shape[1]; // packed [O, C / perWord]; float32 [C, O]
      if (N > ROW_LINEAR_MAX_ROWS) throw new Error(`row-linear takes at most ${ROW_LINEAR_MAX_ROWS} rows, not ${N}`);
      const gpu = backend as unknown as WebGpuBackendLike;
      const rank = (A: tf.TensorInfo | undefined) => (A ? A.shape[0] : 0);
      let v: Variant = { N, rank: rank(inputs.loraA), rank2: rank(inputs.lora2A), norm: !!inputs.normW, bias: !!inputs.bias, residual: !!inputs.residual, act: a.act, gate: !!inputs.gate, format: a.format, scales: !!inputs.scales };
      let p = program(helpers, v, O);
      // Past the device's storage buffers per shader (8 guaranteed; the gated pair with its norm and two adapters
      // binds 9 with the output), the norm runs first as a program of its own.
      let normed: tf.TensorInfo | null = null;
      if (p.variableNames.length + 1 > Math.min(bufferCap, gpu.device.limits.maxStorageBuffersPerShaderStage) && v.norm) {
        normed = runRmsNorm(gpu, helpers, x, inputs.normW as tf.TensorInfo, { eps: a.eps, offset: a.offset });
        v = { ...v, norm: false };
        p = program(helpers, v, O);
      }
      const ins = p.variableNames.map((name) => (name === 'x' && normed ? normed : (inputs[name] as tf.TensorInfo)));
      const uniforms = [
        { type: 'int32', data: [C] },
        { type: 'int32', data: [O] },
        { type: 'float32', data: [a.eps] },
        { type: 'float32', data: [a.offset] },
        { type: 'float32', data: [a.scale] },
        { type: 'float32', data: [a.scale2] },
        { type: 'int32', data: [words ? words.shape[1] : 0] },
        { type: 'int32', data: [a.format ? C / a.group : 0] },
        { type: 'int32', data: [a.group] },
      ];
      const out = gpu.runWebGPUProgram(p, ins, 'float32', uniforms);
      if (normed) gpu.disposeData(normed.dataId); // freed once the queued work that reads it is submitted
      return out;
    },
  });
}
