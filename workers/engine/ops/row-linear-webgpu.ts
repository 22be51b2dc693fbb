// The row-linear kernel on WebGPU (ops/row-linear.ts): x [N, C] · W [C, O] for N ≤ 4 rows, one workgroup of
// 4 × 64 threads per 64 output columns. The 64 columns' threads read 64 adjacent weights of one input row at a
// time, the four groups take every fourth input row, and shared memory adds their partial sums; each weight is read
// once for all N rows. The pre-norm's scale r = rsqrt(mean(x²) + eps) is found by the same threads first (applied
// at the end, as Σ x·(w+o)·W · r), and the bias, the residual or the gate's activation are added as it writes. An
// adapter's x·Aᵀ (rank r ≤ 128) is computed by every workgroup into shared memory first, r·C multiply-adds, and its
// (x·Aᵀ)·Bᵀ added per column. Shared memory stays within 10 KiB, under WebGPU's guaranteed 16 KiB.
import * as tf from '../tf';
import { programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { ROW_LINEAR, ROW_LINEAR_MAX_ROWS, type RowLinearAttrs } from './row-linear';
import { ACT } from './gated-act-webgpu';
import type { Activation } from './gated-act';

const COLS = 64;
const PARTS = 4;
const THREADS = COLS * PARTS;

interface Variant {
  N: number;
  rank: number; // the adapter's, 0 without one
  norm: boolean;
  bias: boolean;
  residual: boolean;
  act: Activation | '';
}

function program(h: ProgramHelpers, v: Variant, O: number) {
  const { N, norm, act, rank: R } = v;
  const gated = act !== '';
  const names = ['x', 'w', ...(norm ? ['normW'] : []), ...(v.bias ? ['bias'] : []), ...(v.residual ? ['residual'] : []), ...(gated ? ['w2'] : []), ...(R ? ['loraA', 'loraB'] : [])];
  const xn = (n: string, c: string) => `x[${n} * C + ${c}]${norm ? ` * (normW[${c}] + uniforms.offset)` : ''}`; // before the norm's r
  const rows = (body: string) => `for (var n = 0; n < ${N}; n++) { ${body} }`;
  return {
    outputShape: [N, O],
    shaderKey: `webtune_row_linear_${N}_${names.join('_')}_${act}_${R}`,
    dispatchLayout: { x: [], y: [0, 1] }, // not flat: main() takes no index (columns come from workgroup ids)
    dispatch: [Math.ceil(O / COLS), 1, 1] as [number, number, number],
    variableNames: names,
    uniforms: 'C : i32, O : i32, eps : f32, offset : f32, scale : f32,',
    workgroupSize: [THREADS, 1, 1] as [number, number, number],
    getUserCode: () => `
      var<workgroup> part : array<f32, ${(gated ? 2 : 1) * N * THREADS}>;
      var<workgroup> rs : array<f32, ${N}>;
      ${R ? `var<workgroup> xa : array<f32, ${N * R}>; // the adapter's x·Aᵀ [N, R], each workgroup its own` : ''}
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
        ${R ? `
        for (var nr = lane; nr < ${N * R}; nr += ${THREADS}) {
          let n = nr / ${R};
          let r = nr % ${R};
          var t = 0.0;
          for (var c = 0; c < C; c++) { t += ${xn('n', 'c')} * loraA[r * C + c]; }
          xa[nr] = t${norm ? ' * rs[n]' : ''};
        }
        workgroupBarrier();` : ''}
        var acc : array<f32, ${N}>;
        ${gated ? `var acc2 : array<f32, ${N}>;` : ''}
        if (j < O) {
          for (var c = grp; c < C; c += ${PARTS}) {
            let wv = w[c * O + j];
            ${gated ? 'let wv2 = w2[c * O + j];' : ''}
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
            ${R ? `var low = 0.0;
            for (var r = 0; r < ${R}; r++) { low += xa[n * ${R} + r] * loraB[j * ${R} + r]; }
            y += uniforms.scale * low;` : ''}
            ${v.residual ? 'y += residual[n * O + j];' : ''}
            ${gated ? `let g = y;${ACT[act as Activation]}
            y = a * y2;` : ''}
            setOutputAtIndex(n * O + j, y);`)}
        }
      }`,
  };
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
      const w = inputs.w as tf.TensorInfo;
      const [N, C] = x.shape;
      const O = w.shape[1];
      if (N > ROW_LINEAR_MAX_ROWS) throw new Error(`row-linear takes at most ${ROW_LINEAR_MAX_ROWS} rows, not ${N}`);
      const A = inputs.loraA as tf.TensorInfo | undefined;
      const v: Variant = { N, rank: A ? A.shape[0] : 0, norm: !!inputs.normW, bias: !!inputs.bias, residual: !!inputs.residual, act: a.act };
      const p = program(helpers, v, O);
      const ins = p.variableNames.map((name) => inputs[name] as tf.TensorInfo);
      const uniforms = [
        { type: 'int32', data: [C] },
        { type: 'int32', data: [O] },
        { type: 'float32', data: [a.eps] },
        { type: 'float32', data: [a.offset] },
        { type: 'float32', data: [a.scale] },
      ];
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(p, ins, 'float32', uniforms);
    },
  });
}
