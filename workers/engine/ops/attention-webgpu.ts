// The attention kernel on WebGPU (ops/attention.ts): one workgroup of 64 threads per query row (b, t, h). The keys
// go by in chunks of 64, one score per thread into shared memory; the softmax is taken online (a running maximum
// and sum, the partial output rescaled when the maximum grows), and each thread accumulates its share of the D
// output values. The mask, the window and the cap are computed, not read: one dispatch where tfjs's ops take
// five or more (scores, scale, mask, softmax, values) plus the head transposes, and nothing [S]-sized is written.
import * as tf from '../tf';
import { programHelpers, workgroupPerRow, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { ATTENTION, type AttentionAttrs } from './attention';

const THREADS = 64; // threads per row, and keys per chunk

function program(h: ProgramHelpers, B: number, T: number, H: number, D: number) {
  const rows = B * T * H;
  const per = Math.ceil(D / THREADS); // output values per thread
  const frame = workgroupPerRow(rows, 3);
  return {
    outputShape: [B, T, H * D],
    shaderKey: `webtune_attention_${D}`,
    dispatchLayout: frame.dispatchLayout,
    dispatch: frame.dispatch,
    variableNames: ['q', 'k', 'v'],
    uniforms: 'rows : i32, T : i32, H : i32, S : i32, KVH : i32, scale : f32, softcap : f32, window : i32, kvRows : i32,',
    workgroupSize: [THREADS, 1, 1] as [number, number, number],
    getUserCode: () => `
      const D = ${D};
      var<workgroup> qs : array<f32, ${D}>;
      var<workgroup> p : array<f32, ${THREADS}>;
      ${h.getMainHeaderString()} {
        ${frame.rowHeader}
        let S = uniforms.S;
        let hd = row % uniforms.H;
        let t = (row / uniforms.H) % uniforms.T;
        let b = row / (uniforms.H * uniforms.T);
        let kvh = hd / (uniforms.H / uniforms.KVH);
        let pos = S - uniforms.T + t;
        var lo = 0;
        if (uniforms.window > 0) { lo = max(0, pos - uniforms.window + 1); }
        let hi = pos + 1; // keys lo..hi-1
        let qBase = row * D; // q [B, T, H, D] and the output [B, T, H·D] share their index
        for (var d = lane; d < D; d += ${THREADS}) { if (valid) { qs[d] = q[qBase + d]; } }
        workgroupBarrier();
        var m = -1e30;
        var l = 0.0;
        var acc : array<f32, ${per}>;
        for (var s0 = 0; s0 < S; s0 += ${THREADS}) {
          let s = s0 + lane;
          let ok = valid && s >= lo && s < hi;
          var sc = -1e30;
          if (ok) {
            let kBase = ((b * uniforms.kvRows + s) * uniforms.KVH + kvh) * D;
            var dot = 0.0;
            for (var d = 0; d < D; d++) { dot += qs[d] * k[kBase + d]; }
            sc = dot * uniforms.scale;
            if (uniforms.softcap > 0.0) { sc = uniforms.softcap * tanh(clamp(sc / uniforms.softcap, -15.0, 15.0)); }
          }
          p[lane] = sc;
          workgroupBarrier();
          let inChunk = valid && s0 < hi && s0 + ${THREADS} > lo; // the same for the whole row
          var cm = m;
          if (inChunk) { for (var j = 0; j < ${THREADS}; j++) { cm = max(cm, p[j]); } }
          workgroupBarrier();
          p[lane] = select(0.0, exp(sc - cm), ok);
          workgroupBarrier();
          if (inChunk) {
            let corr = exp(m - cm);
            let j0 = max(lo - s0, 0);
            let j1 = min(hi - s0, ${THREADS});
            var sum = 0.0;
            for (var j = j0; j < j1; j++) { sum += p[j]; }
            l = l * corr + sum;
            for (var a = 0; a < ${per}; a++) {
              let d = lane + a * ${THREADS};
              if (d < D) {
                var o = acc[a] * corr;
                for (var j = j0; j < j1; j++) { o += p[j] * v[((b * uniforms.kvRows + s0 + j) * uniforms.KVH + kvh) * D + d]; }
                acc[a] = o;
              }
            }
            m = cm;
          }
          workgroupBarrier();
        }
        for (var a = 0; a < ${per}; a++) {
          let d = lane + a * ${THREADS};
          if (valid && d < D) { setOutputAtIndex(qBase + d, acc[a] / l); }
        }
      }`,
  };
}

export async function registerAttentionWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(ATTENTION, 'webgpu')) return;
  const helpers = await programHelpers();
  tf.registerKernel({
    kernelName: ATTENTION,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { scale, softcap, window, keys } = attrs as unknown as AttentionAttrs;
      const [q, k, v] = [inputs.q, inputs.k, inputs.v] as tf.TensorInfo[];
      const [B, T, H, D] = q.shape;
      const [, rows, KVH] = k.shape; // rows allotted per sequence (kvRows); the first S in use
      const S = keys ?? rows;
      const uniforms = [
        { type: 'int32', data: [B * T * H] },
        { type: 'int32', data: [T] },
        { type: 'int32', data: [H] },
        { type: 'int32', data: [S] },
        { type: 'int32', data: [KVH] },
        { type: 'float32', data: [scale] },
        { type: 'float32', data: [softcap] },
        { type: 'int32', data: [window] },
        { type: 'int32', data: [rows] },
      ];
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(helpers, B, T, H, D), [q, k, v], 'float32', uniforms);
    },
  });
}
