// A frozen matrix W [R, K] in the checkpoint's layout (a linear module's [out, in], a vocabulary matrix's [V, C]),
// held packed (quant/format.ts): 16 bits, int8 or int4 words plus scales. Its float32 values exist only inside
// one product, in the caller's tidy scope, so resident memory is the packed bytes.
import * as tf from '../tf';
import { matmul } from '../ops/matmul';
import { dequantize } from '../ops/dequantize';
import { packedGemm, packedMatMul, packedMatMulT, PACKED_GEMM, PACKED_MATMUL } from '../ops/packed-matmul';
import { simdBackwardFits, simdProductForManyRows } from '../ops/packed-matmul-simd';
import { hasKernel } from '../ops/webgpu-program';
import { recording } from '../ops/own-tape';
import { packedBytes, PER_WORD, quantize, type PackFormat, type Packing } from './format';

/** At most this many rows of x go through the one-thread-per-output packed product (decoding); more rows take the
 * tiled packed product where the backend has one (WebGPU), else unpack W and multiply (cpu, WASM). */
export const PACKED_PRODUCT_MAX_ROWS = 8;

export class PackedMatrix {
  private constructor(
    readonly packing: Packing,
    readonly words: tf.Tensor2D, // int32 [R, K / perWord]
    readonly scales: tf.Tensor2D | null, // float32 [R, K / group]; null for 16-bit formats
    readonly rows: number,
    readonly cols: number,
  ) {}

  /** A row-major [R, K] matrix packed: a file's own 16-bit patterns kept as they are (exact), float32 values
   * quantized (or rounded to bf16). */
  static pack(values: Float32Array | Uint16Array, R: number, K: number, packing: Packing): PackedMatrix {
    if (values instanceof Uint16Array) return PackedMatrix.fromHalves(values, R, K, packing.format as 'bf16' | 'f16');
    return PackedMatrix.fromValues(values, R, K, packing);
  }

  /** Quantize (or round to bf16) a row-major [R, K] float32 matrix. */
  static fromValues(values: Float32Array, R: number, K: number, packing: Packing): PackedMatrix {
    const { words, scales } = quantize(values, R, K, packing);
    return PackedMatrix.make(packing, words, scales, R, K);
  }

  /** A 16-bit matrix from the file's own bit patterns [R, K]: exact. */
  static fromHalves(halves: Uint16Array, R: number, K: number, format: 'bf16' | 'f16'): PackedMatrix {
    // Two halves to a word: the same memory, copied only when it does not start on a 4-byte boundary.
    const words = halves.byteOffset % 4 === 0 ? new Int32Array(halves.buffer, halves.byteOffset, halves.length / 2) : new Int32Array(halves.slice().buffer);
    return PackedMatrix.make({ format, group: K }, words, null, R, K);
  }

  private static make(packing: Packing, words: Int32Array, scales: Float32Array | null, R: number, K: number): PackedMatrix {
    const W = K / PER_WORD[packing.format];
    const s = scales && tf.tensor2d(scales, [R, K / packing.group], 'float32');
    return new PackedMatrix(packing, tf.tensor2d(words, [R, W], 'int32'), s, R, K);
  }

  get format(): PackFormat {
    return this.packing.format;
  }

  get bytes(): number {
    return packedBytes(this.packing, this.rows, this.cols);
  }

  /** W as float32: [R, K], or [K, R] when `transpose` (a new tensor: the caller tidies it). */
  dense(transpose = false): tf.Tensor2D {
    return dequantize(this.words, this.scales, this.packing, transpose);
  }

  /** Rows of W for ids [n] → [n, K] (the embedding lookup), unpacking only those rows. */
  gatherRows(ids: tf.Tensor1D): tf.Tensor2D {
    return dequantize(this.words, this.scales, this.packing, false, ids);
  }

  /** x [N, K] → x·Wᵀ [N, R], differentiable in x (dx = dy·W). */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    if (!recording()) return this.product(x); // no gradient asked (decoding, evaluation): the product alone
    const product = tf.customGrad(((xIn: tf.Tensor2D) => ({
      value: this.product(xIn),
      gradFunc: (dy: tf.Tensor2D) => this.backward(dy),
    })) as unknown as Parameters<typeof tf.customGrad>[0]);
    return product(x) as tf.Tensor2D;
  }

  /** x·Wᵀ by the fastest kernel here: for few rows (decoding) the one-thread-per-output packed product, for many the
   * tiled one where the backend has it (WebGPU), on WASM int8's integer product in the SIMD module (faster than
   * unpacking at any row count), else W unpacked and multiplied (cpu, WASM's other formats). */
  private product(x: tf.Tensor2D): tf.Tensor2D {
    const packedRows = x.shape[0] <= PACKED_PRODUCT_MAX_ROWS || (tf.getBackend() === 'wasm' && simdProductForManyRows(this.packing, this.cols));
    if (packedRows && hasKernel(PACKED_MATMUL)) return packedMatMul(x, this.words, this.scales, this.packing);
    if (hasKernel(PACKED_GEMM)) return packedGemm(x, this.words, this.scales, this.packing, false);
    return tf.tidy(() => matmul(x, this.dense(true)));
  }

  /** dy [N, R] → dy·W [N, K]: the product through Wᵀ, for the backward pass (unpacked in the kernel's tiles on
   * WebGPU; int8 read as it is by the SIMD module on WASM; elsewhere W unpacked and freed at once). */
  backward(dy: tf.Tensor2D): tf.Tensor2D {
    if (hasKernel(PACKED_GEMM)) return packedGemm(dy, this.words, this.scales, this.packing, true);
    if (tf.getBackend() === 'wasm' && simdBackwardFits(this.packing, this.rows, this.cols)) return packedMatMulT(dy, this.words, this.scales, this.packing);
    return tf.tidy(() => matmul(dy, this.dense(false)));
  }

  dispose(): void {
    this.words.dispose();
    this.scales?.dispose();
  }
}
