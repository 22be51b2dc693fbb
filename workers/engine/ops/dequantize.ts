// Dequantize: a packed frozen matrix (quant/format.ts) → float32, as [R, K] or transposed [K, R], on cpu and WASM.
// The float32 matrix lives only in the caller's tidy scope; the model keeps the packed words. 16-bit formats give
// the file's values exactly (bf16 → f32 is a shift, f16 → f32 an exact table lookup); int8/int4 give q · scale.
// On WASM the SIMD module unpacks a whole matrix, on every thread (unpackOnHeap).
// No gradient: frozen weights are never differentiated (only the adapter is).
import * as tf from '../tf';
import { decodeRow, PER_WORD, type Packing } from '../quant/format';
import { registerLoopKernel, type HeapKernel } from './backend-io';
import { rowStrides, simdFits, type PackedFormat } from './packed-matmul-simd';
import { simdKernelsOn } from './simd-module';
import { runSplit } from './simd-pool';

export const DEQUANTIZE = 'WebtuneDequantize';

interface Attrs extends Packing {
  transpose: boolean;
}

/** words int32 [R, K / perWord] (+ scales [R, K / group]) → float32 [R, K], or [K, R] when `transpose`; with
 * `rows` (int32 [n], each < R), only those rows, [n, K]: the embedding lookup (tf.gather cannot serve it: on WebGPU
 * it moves int32 through float32, which keeps only 24 bits of a packed word). */
export function dequantize(words: tf.Tensor, scales: tf.Tensor | null, packing: Packing, transpose = false, rows?: tf.Tensor1D): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { words };
  if (scales) inputs.scales = scales;
  if (rows) inputs.rows = rows;
  return tf.engine().runKernel(DEQUANTIZE, inputs, { ...packing, transpose } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

export function registerDequantize(): void {
  registerLoopKernel<Attrs>(
    DEQUANTIZE,
    ({ words, rows }, a) => {
      const [R, W] = words!.shape;
      const K = W * PER_WORD[a.format];
      if (rows) return [rows.shape[0], K];
      return a.transpose ? [K, R] : [R, K];
    },
    ({ words, scales, rows }, out, a, shapes) => {
      const w = words as Int32Array;
      const s = (scales as Float32Array | undefined) ?? null;
      const [R, W] = shapes.words!.shape;
      const K = W * PER_WORD[a.format];
      if (rows) for (let i = 0; i < rows.length; i++) decodeRow(w, s, rows[i], K, a, out, i * K, 1);
      else {
        for (let r = 0; r < R; r++) {
          if (a.transpose) decodeRow(w, s, r, K, a, out, r, R);
          else decodeRow(w, s, r, K, a, out, r * K, 1);
        }
      }
    },
    { onHeap: unpackOnHeap },
  );
}

/**
 * On WASM, a whole matrix in the SIMD module (simd-kernels.wat), split by rows across the pool's threads: unpacked
 * into its rows, or, transposed, unpacked into scratch rows and then transposed 4 × 4 at a time. The embedding
 * lookup's few rows, f16, and shapes the module does not take (as for its products; transposed, R a multiple of 4
 * too) keep the loop. Each value is the loop's exactly.
 */
const unpackOnHeap: HeapKernel<Attrs> = (at, out, a, shapes, heap) => {
  const [R, W] = shapes.words!.shape;
  const K = W * PER_WORD[a.format];
  if (shapes.rows || !simdFits(a, K) || (a.transpose && R % 4 !== 0)) return false;
  const kernels = simdKernelsOn(heap.memory);
  if (!kernels) return false;
  const format = a.format as PackedFormat; // simdFits admits only the module's formats
  const [rowBytes, scaleRow] = rowStrides(format, K, a.group);
  const unpack = (into: number) =>
    runSplit(heap.memory, kernels, `unpack_${format}`, R, R * K, (r0, r1) => [at.words! + r0 * rowBytes, (at.scales ?? 0) + r0 * scaleRow, r1 - r0, K, a.group, into + 4 * r0 * K]);
  if (!a.transpose) {
    unpack(out);
    return true;
  }
  return heap.withScratch(4 * R * K, (rowsAt) => {
    unpack(rowsAt);
    runSplit(heap.memory, kernels, 'transpose4', R, R * K, (r0, r1) => [rowsAt + 4 * r0 * K, r1 - r0, K, out + 4 * r0, R], 4);
    return true;
  });
};

/** Whether the active backend can hold packed weights (each backend here has the kernel; one without keeps float32). */
export function canDequantize(): boolean {
  return tf.getKernel(DEQUANTIZE, tf.getBackend()) !== undefined;
}
