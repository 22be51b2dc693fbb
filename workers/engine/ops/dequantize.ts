// Dequantize: a packed frozen matrix (quant/format.ts) → float32, as [R, K] or transposed [K, R], on cpu and WASM.
// The float32 matrix lives only in the caller's tidy scope; the model keeps the packed words. 16-bit formats give
// the file's values exactly (bf16 → f32 is a shift, f16 → f32 an exact table lookup); int8/int4 give q · scale.
// No gradient: frozen weights are never differentiated (only the adapter is).
import * as tf from '../tf';
import { decodeRow, PER_WORD, type Packing } from '../quant/format';
import { registerLoopKernel } from './backend-io';

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
  );
}

/** Whether the active backend can hold packed weights (each backend here has the kernel; one without keeps float32). */
export function canDequantize(): boolean {
  return tf.getKernel(DEQUANTIZE, tf.getBackend()) !== undefined;
}
