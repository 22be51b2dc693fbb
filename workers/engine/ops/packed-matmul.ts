// PackedMatMul: x [N, K] · Wᵀ for a packed frozen W [R, K] (quant/format.ts) → [N, R], read straight from the
// packed words on cpu and WASM (there with SIMD where it can: ops/packed-matmul-simd.ts). For few rows (decoding's one
// token) this beats unpacking W and multiplying: the unpacked matrix would be written, then re-packed by XNNPACK, for
// a single use. On WASM, int8's integer product in the SIMD module beats that at any row count, so training's rows
// take it too, and PackedMatMulT, backward's dy [N, R] · W → [N, K], reads int8 words the same way. Other rows and
// formats go through ops/dequantize.ts and the backend's matmul on cpu and WASM; on WebGPU, PackedGemm
// (ops/packed-gemm-webgpu.ts) takes them, x·Wᵀ and backward's dy·W, unpacking inside its tiles.
// PackedMatrix.forward and .backward choose. The gradient (dy · W, for x) is given by PackedMatrix.forward; W,
// frozen, has none.
import * as tf from '../tf';
import { decodeRow, packedProduct, PER_WORD, type Packing } from '../quant/format';
import { registerLoopKernel } from './backend-io';
import { packedMatMulOnHeap, packedMatMulTOnHeap } from './packed-matmul-simd';

export const PACKED_MATMUL = 'WebtunePackedMatMul';
export const PACKED_GEMM = 'WebtunePackedGemm';
/** dy [N, R] · W [R, K] → [N, K] with packed W: the backward product, on WASM (int8 in the SIMD module). */
export const PACKED_MATMUL_T = 'WebtunePackedMatMulT';

export interface PackedGemmAttrs extends Packing {
  /** false: x [M, K] · Wᵀ → [M, R] (the forward product); true: x [M, R] · W → [M, K] (backward's dx). */
  transposeW: boolean;
}

const packedInputs = (x: tf.Tensor, words: tf.Tensor, scales: tf.Tensor | null): tf.NamedTensorMap => (scales ? { x, words, scales } : { x, words });

/** x float32 [N, K], words int32 [R, K / perWord] (+ scales [R, K / group]) → x·Wᵀ float32 [N, R]. */
export function packedMatMul(x: tf.Tensor2D, words: tf.Tensor, scales: tf.Tensor | null, packing: Packing): tf.Tensor2D {
  return tf.engine().runKernel(PACKED_MATMUL, packedInputs(x, words, scales), { ...packing } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** dy float32 [N, R] · W → float32 [N, K], W packed [R, K] (WASM only: hasKernel(PACKED_MATMUL_T)). */
export function packedMatMulT(dy: tf.Tensor2D, words: tf.Tensor, scales: tf.Tensor | null, packing: Packing): tf.Tensor2D {
  return tf.engine().runKernel(PACKED_MATMUL_T, packedInputs(dy, words, scales), { ...packing } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** A product of any number of rows with packed W, unpacked inside the kernel (WebGPU only: hasKernel(PACKED_GEMM)). */
export function packedGemm(x: tf.Tensor2D, words: tf.Tensor, scales: tf.Tensor | null, packing: Packing, transposeW: boolean): tf.Tensor2D {
  return tf.engine().runKernel(PACKED_GEMM, packedInputs(x, words, scales), { ...packing, transposeW } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

export function registerPackedMatMul(): void {
  registerLoopKernel<Packing>(
    PACKED_MATMUL,
    ({ x, words }) => [x!.shape[0], words!.shape[0]],
    ({ x, words, scales }, out, a, shapes) => {
      const [N] = shapes.x!.shape;
      const [R, W] = shapes.words!.shape;
      packedProduct(x as Float32Array, N, words as Int32Array, (scales as Float32Array | undefined) ?? null, R, W * PER_WORD[a.format], a, out);
    },
    { onHeap: packedMatMulOnHeap },
  );
  // The plain loop (what the module declines): each W row unpacked once, added into every output row it reaches.
  registerLoopKernel<Packing>(
    PACKED_MATMUL_T,
    ({ x, words }, a) => [x!.shape[0], words!.shape[1] * PER_WORD[a.format]],
    ({ x, words, scales }, out, a, shapes) => {
      const [N, R] = shapes.x!.shape;
      const K = shapes.words!.shape[1] * PER_WORD[a.format];
      const dy = x as Float32Array;
      const row = new Float32Array(K);
      out.fill(0);
      for (let r = 0; r < R; r++) {
        decodeRow(words as Int32Array, (scales as Float32Array | undefined) ?? null, r, K, a, row, 0, 1);
        for (let n = 0; n < N; n++) {
          const g = dy[n * R + r];
          for (let k = 0; k < K; k++) out[n * K + k] += g * row[k];
        }
      }
    },
    { onHeap: packedMatMulTOnHeap, wasmOnly: true },
  );
}
