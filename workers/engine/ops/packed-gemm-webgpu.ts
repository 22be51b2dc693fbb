// PackedGemm on WebGPU (the kernel of ops/packed-matmul.ts's packedGemm): a training-sized product with a packed
// frozen W [R, K], x [M, K] · Wᵀ → [M, R] (forward) or dy [M, R] · W → [M, K] (backward's dx), tiled, with the
// unpacking fused into the tile loads. No float32 copy of W exists at any time: each workgroup decodes the 64 × 16
// slice of W it needs into shared memory, next to the matching 64 × 16 slice of x, and every thread accumulates a
// 4 × 4 block of the 64 × 64 output tile from them. Bytes read from W are the packed ones (2, 1 or ½ per weight,
// once per 64 rows of x), against an unpacked copy's 4 written and 4 read again. The halves and quantized values
// are decoded by ops/dequantize-webgpu.ts's weightAt, as every packed kernel decodes them.
import * as tf from '../tf';
import { PER_WORD, type Packing } from '../quant/format';
import { PACKED_GEMM, type PackedGemmAttrs } from './packed-matmul';
import { weightAt } from './dequantize-webgpu';
import { programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';

const TILE = 64; // output tile edge (rows of x, output columns)
const DEPTH = 16; // inner-dimension slice per step
const SIDE = 16; // threads per workgroup edge: 16 × 16 threads, each 4 × 4 outputs
const LOADS = (TILE * DEPTH) / (SIDE * SIDE); // values each thread loads into each shared tile per step

function program(h: ProgramHelpers, a: PackedGemmAttrs, M: number, cols: number, withScales: boolean) {
  // W's element at (inner index i, output column c): W[c, i] for x·Wᵀ, W[i, c] for x·W. Adjacent threads load
  // adjacent k (the packed words' order) in both: along i for x·Wᵀ, along c for x·W.
  const [r, k] = a.transposeW ? ['i', 'c'] : ['c', 'i'];
  const slot = a.transposeW ? `let bi = e / ${TILE}; let bc = e % ${TILE};` : `let bc = e / ${DEPTH}; let bi = e % ${DEPTH};`;
  return {
    outputShape: [M, cols],
    shaderKey: `webtune_packed_gemm_${a.format}_${a.transposeW ? 'xw' : 'xwt'}`,
    dispatchLayout: { x: [], y: [0, 1] }, // not flat: main() takes no index (tiles come from workgroup ids)
    dispatch: [Math.ceil(cols / TILE), Math.ceil(M / TILE), 1] as [number, number, number],
    variableNames: ['x', 'words', ...(withScales ? ['scales'] : [])],
    uniforms: 'M : i32, inner : i32, cols : i32, wordsPerRow : i32, groups : i32, group : i32,',
    workgroupSize: [SIDE, SIDE, 1] as [number, number, number],
    getUserCode: () => `
      ${weightAt(a.format)}
      var<workgroup> xs : array<f32, ${TILE * DEPTH}>; // [row of the tile][inner]
      var<workgroup> ws : array<f32, ${DEPTH * TILE}>; // [inner][column of the tile]

      ${h.getMainHeaderString()} {
        let lane = i32(localIndex);
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let m0 = i32(workgroupId.y) * ${TILE};
        let c0 = i32(workgroupId.x) * ${TILE};
        var acc : array<f32, 16>;
        for (var t = 0; t < uniforms.inner; t += ${DEPTH}) {
          for (var l = 0; l < ${LOADS}; l++) {
            let e = lane + l * ${SIDE * SIDE};
            let xm = m0 + e / ${DEPTH};
            let xi = t + e % ${DEPTH};
            var xv = 0.0;
            if (xm < uniforms.M && xi < uniforms.inner) { xv = x[xm * uniforms.inner + xi]; }
            xs[e] = xv;
            ${slot}
            let i = t + bi;
            let c = c0 + bc;
            var wv = 0.0;
            if (i < uniforms.inner && c < uniforms.cols) { wv = weightAt(${r}, ${k}); }
            ws[bi * ${TILE} + bc] = wv;
          }
          workgroupBarrier();
          for (var d = 0; d < ${DEPTH}; d++) {
            let b = vec4<f32>(ws[d * ${TILE} + tx * 4], ws[d * ${TILE} + tx * 4 + 1], ws[d * ${TILE} + tx * 4 + 2], ws[d * ${TILE} + tx * 4 + 3]);
            for (var p = 0; p < 4; p++) {
              let av = xs[(ty * 4 + p) * ${DEPTH} + d];
              acc[p * 4] += av * b.x;
              acc[p * 4 + 1] += av * b.y;
              acc[p * 4 + 2] += av * b.z;
              acc[p * 4 + 3] += av * b.w;
            }
          }
          workgroupBarrier();
        }
        for (var p = 0; p < 4; p++) {
          let m = m0 + ty * 4 + p;
          for (var q = 0; q < 4; q++) {
            let c = c0 + tx * 4 + q;
            if (m < uniforms.M && c < uniforms.cols) { setOutputAtIndex(m * uniforms.cols + c, acc[p * 4 + q]); }
          }
        }
      }`,
  };
}

/** Register the WebGPU kernel once tfjs-backend-webgpu is loaded (ops/index.ts). */
export async function registerPackedGemmWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(PACKED_GEMM, 'webgpu')) return;
  const h = await programHelpers();
  tf.registerKernel({
    kernelName: PACKED_GEMM,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as PackedGemmAttrs;
      const x = inputs.x as tf.TensorInfo;
      const words = inputs.words as tf.TensorInfo;
      const scales = inputs.scales as tf.TensorInfo | undefined;
      const [M, inner] = x.shape;
      const [R, W] = words.shape;
      const K = W * PER_WORD[a.format];
      const cols = a.transposeW ? K : R;
      const uniforms = [M, inner, cols, W, K / a.group, a.group].map((v) => ({ type: 'int32', data: [v] }));
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(h, a, M, cols, !!scales), scales ? [x, words, scales] : [x, words], 'float32', uniforms);
    },
  });
}
