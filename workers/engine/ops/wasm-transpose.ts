// Transpose on the WASM backend for the one permutation training uses most: swapping the last two axes (matmul.ts
// materialises a transposed operand that way, for XNNPACK's fast untransposed product). tfjs-backend-wasm's own kernel
// walks the output one element at a time: a [512, 576] activation took 2.1 ms here (1.1 GB/s), about 600 ms of a
// 135M training step. Where both axes are multiples of 4 and the values 32-bit, each matrix is transposed by the SIMD
// module's 4 × 4 blocks in registers (simd-kernels.wat `transpose4`), split by rows across its threads; any other
// transpose is left to the original kernel. Values are identical: both move the same bits.
import * as tf from '../tf';
import { overrideWasmKernel, wasmHeap } from './backend-io';
import { simdKernelsOn } from './simd-module';
import { runSplit } from './simd-pool';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** Matrices transposed by the SIMD module so far (the tests' proof that it, not the original kernel, ran). */
export const transposeStats = { simdMatrices: 0 };

/** Whether `perm` swaps the last two axes and keeps the others in place. */
export function swapsLastTwo(perm: number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, -2).every((p, i) => p === i);
}

/** Re-register the WASM Transpose kernel once (ops/index.ts does, after tfjs-backend-wasm is imported). */
export function registerWasmTranspose(): void {
  overrideWasmKernel(tf.Transpose, (args, original) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { perm } = args.attrs as unknown as tf.TransposeAttrs;
    const [R, K] = x.shape.slice(-2);
    const heap = wasmHeap(args.backend);
    const kernels = heap && simdKernelsOn(heap.memory);
    if (!kernels || (x.dtype !== 'float32' && x.dtype !== 'int32') || !swapsLastTwo(perm) || R % 4 !== 0 || K % 4 !== 0 || R * K === 0) return original.kernelFunc(args);
    const out = (args.backend as unknown as WasmBackendLike).makeOutput(perm.map((p) => x.shape[p]), x.dtype);
    const [src, dst] = [heap.at(x), heap.at(out)];
    const batch = tf.util.sizeFromShape(x.shape.slice(0, -2));
    for (let b = 0; b < batch; b++) {
      const [from, to] = [src + 4 * b * R * K, dst + 4 * b * R * K];
      runSplit(heap.memory, kernels, 'transpose4', R, R * K, (r0, r1) => [from + 4 * r0 * K, r1 - r0, K, to + 4 * r0, R], 4);
    }
    transposeStats.simdMatrices += batch;
    return out;
  });
}
