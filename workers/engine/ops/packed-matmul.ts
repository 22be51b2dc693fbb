// PackedMatMul: x [N, K] · Wᵀ for a packed frozen W [R, K] (quant/format.ts) → [N, R], read straight from the
// packed words on cpu and WASM (there with SIMD where it can: ops/packed-matmul-simd.ts). For few rows (decoding's one token) this beats unpacking W and multiplying: the
// unpacked matrix would be written, then re-packed by XNNPACK, for a single use. Many rows (training) go through
// ops/dequantize.ts and the backend's matmul instead on cpu and WASM, where XNNPACK's product is the fast one; on
// WebGPU, PackedGemm (ops/packed-gemm-webgpu.ts) takes them, x·Wᵀ and backward's dy·W, unpacking inside its tiles.
// PackedMatrix.forward and .backward choose. The gradient (dy · W, for x) is given by PackedMatrix.forward; W,
// frozen, has none.
import * as tf from '../tf';
import { packedProduct, PER_WORD, type Packing } from '../quant/format';
import { registerLoopKernel } from './backend-io';
import { packedMatMulOnHeap } from './packed-matmul-simd';

export const PACKED_MATMUL = 'WebtunePackedMatMul';
export const PACKED_GEMM = 'WebtunePackedGemm';

export interface PackedGemmAttrs extends Packing {
  /** false: x [M, K] · Wᵀ → [M, R] (the forward product); true: x [M, R] · W → [M, K] (backward's dx). */
  transposeW: boolean;
}

const packedInputs = (x: tf.Tensor, words: tf.Tensor, scales: tf.Tensor | null): tf.NamedTensorMap => (scales ? { x, words, scales } : { x, words });

/** x float32 [N, K], words int32 [R, K / perWord] (+ scales [R, K / group]) → x·Wᵀ float32 [N, R]. */
export function packedMatMul(x: tf.Tensor2D, words: tf.Tensor, scales: tf.Tensor | null, packing: Packing): tf.Tensor2D {
  return tf.engine().runKernel(PACKED_MATMUL, packedInputs(x, words, scales), { ...packing } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
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
}
