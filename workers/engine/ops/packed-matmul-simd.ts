// PackedMatMul's WASM kernel (simd-kernels.wat, 128-bit SIMD) for int8, int4 and bf16: it reads the packed
// words where tfjs-backend-wasm holds them, by importing that backend's memory, so nothing is copied. f16, and shapes
// whose K does not fill whole vectors, stay with the plain loop (ops/packed-matmul.ts).
//
// For int8 and int4, each x row is first rounded to int16 against its own absmax (x ≈ xq · xs, a step of
// absmax / 32767), so the module multiplies integers exactly: each product then differs from float32's by at most
// Σₖ |W[r, k]| · absmax(x[n]) / 65534 (INT16_X_STEP), far below the weights' own rounding (int8's step is a group's
// absmax / 127). bf16 multiplies x in float32.
import { PER_WORD, type Packing } from '../quant/format';
import type { HeapKernel } from './backend-io';
import { hasSimdModule, simdKernelsOn, type SimdKernels } from './simd-module';
import { runSplit } from './simd-pool';

/** The packed formats the module multiplies and unpacks. */
export type PackedFormat = 'int8' | 'int4' | 'bf16';

/** Elements of one 16-byte vector of packed words, per format the module has. */
const VECTOR: Partial<Record<Packing['format'], number>> = { int8: 16, int4: 32, bf16: 8 };

/** int4's largest group in the module: a group's integer sum must fit an i32 lane (8 · 8 · 32767 per vector). */
const INT4_MAX_GROUP = 4096;

/** x's rounding for int8 and int4: |x − xq · xs| ≤ absmax(x row) · INT16_X_STEP. */
const INT16_X_STEP = 1 / 65534;

/**
 * The most x's rounding moves each result of x [N, K] · Wᵀ (W [R, K] as float32) in this module: Σₖ |W[r, k]| ·
 * absmax(x[n]) · INT16_X_STEP for int8 and int4, 0 for bf16. For the tests, which compare against float32.
 */
export function xRoundingBound(format: Packing['format'], x: Float32Array, N: number, w: Float32Array, R: number, K: number): Float64Array {
  const out = new Float64Array(N * R);
  if (format !== 'int8' && format !== 'int4') return out;
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(x[n * K + k]));
    for (let r = 0; r < R; r++) {
      let l1 = 0;
      for (let k = 0; k < K; k++) l1 += Math.abs(w[r * K + k]);
      out[n * R + r] = l1 * amax * INT16_X_STEP;
    }
  }
  return out;
}

/** Whether `packing` with rows of K elements runs in the SIMD module. */
export function simdFits(packing: Packing, K: number): boolean {
  const v = VECTOR[packing.format];
  return v !== undefined && K > 0 && K % v === 0 && packing.group % v === 0 && !(packing.format === 'int4' && packing.group > INT4_MAX_GROUP);
}

/**
 * Whether the module's product beats unpacking W and XNNPACK's float32 product at any number of x rows (training's
 * too), for `packing` with rows of K elements on WASM. int8's integer product runs at 45–52 GFLOP/s a thread here
 * (scratch measurement, 16–2048 rows), above XNNPACK's 33 even before the unpacking and XNNPACK's own packing of W
 * that its product needs each time; int4's at about 30, no better than that path, and bf16's at 8–17, worse.
 */
export function simdProductForManyRows(packing: Packing, K: number): boolean {
  return packing.format === 'int8' && simdFits(packing, K) && hasSimdModule();
}

/**
 * x [N, K] rounded to int16 per row (q = round(x · 32767 / absmax)) with its scales xs = absmax / 32767, into `q` and
 * `xs`. For int4 each 32 elements go even ones first, then odd: the order the module widens a vector's nibbles in.
 * False when a row holds NaN or ±Infinity (the plain loop then gives what float32 would).
 */
export function roundRows(x: Float32Array, N: number, K: number, nibbleOrder: boolean, q: Int16Array, xs: Float32Array): boolean {
  for (let n = 0; n < N; n++) {
    const row = n * K;
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(x[row + k]));
    if (!Number.isFinite(amax)) return false;
    const inv = amax > 0 ? 32767 / amax : 0;
    xs[n] = amax / 32767;
    if (!nibbleOrder) {
      for (let k = 0; k < K; k++) q[row + k] = Math.round(x[row + k] * inv);
      continue;
    }
    for (let b = row; b < row + K; b += 32) {
      for (let i = 0; i < 16; i++) {
        q[b + i] = Math.round(x[b + 2 * i] * inv);
        q[b + 16 + i] = Math.round(x[b + 2 * i + 1] * inv);
      }
    }
  }
  return true;
}

/**
 * Whether the module's backward product dy [N, R] · W [R, K] (int8t) serves `packing` with W [R, K]: int8, K in whole
 * tiles of 16, R even. It runs at about 33 GFLOP/s a thread here (scratch measurement, the 135M layers' shapes and a
 * [49152, 576] head), XNNPACK's own rate, but reads the int8 words as they are: no float32 W unpacked, and no packing
 * of it by XNNPACK, which for a vocabulary block (re-made every chunk of rows) cost more than the product itself
 * (a [52428, 640] block: 490 ms to pack, 102 ms to multiply 64 rows).
 */
export function simdBackwardFits(packing: Packing, R: number, K: number): boolean {
  return simdProductForManyRows(packing, K) && R % 2 === 0;
}

/** dy [N, R] · W [R, K] → out [N, K] for int8 W in the WASM heap (simdBackwardFits), split by columns across the pool. */
export const packedMatMulTOnHeap: HeapKernel<Packing> = (at, out, packing, shapes, heap) => {
  const [N, R] = shapes.x!.shape;
  const K = shapes.words!.shape[1] * PER_WORD[packing.format];
  if (N === 0 || K === 0 || !simdBackwardFits(packing, R, K)) return false;
  const kernels = simdKernelsOn(heap.memory);
  if (!kernels) return false;
  runSplit(heap.memory, kernels, 'int8t', K / 16, N * R * K, (t0, t1) => [at.x!, N, at.words!, at.scales!, R, K, packing.group, out, 16 * t0, 16 * t1]);
  return true;
};

/**
 * x [N, K] at `x` rounded to int16 into `xq`, its scales into `xs` (roundRows' values); false for a row not finite. int8's
 * rows are rounded in the module (SIMD, split by rows across the pool: training's many rows took 4–10 ms each in
 * JS), int4's nibble order in JS.
 */
function roundX(kernels: SimdKernels, memory: WebAssembly.Memory, format: PackedFormat, x: number, N: number, K: number, xq: number, xs: number): boolean {
  if (format === 'int8') {
    runSplit(memory, kernels, 'round16', N, N * K, (r0, r1) => [x + 4 * r0 * K, r1 - r0, K, xq + 2 * r0 * K, xs + 4 * r0]);
    return new Float32Array(memory.buffer, xs, N).every((s) => !Number.isNaN(s));
  }
  const buffer = memory.buffer;
  return roundRows(new Float32Array(buffer, x, N * K), N, K, true, new Int16Array(buffer, xq, N * K), new Float32Array(buffer, xs, N));
}

/**
 * The module's product out [N, R] = x [N, K] · Wᵀ, split by W's rows across the pool's threads (ops/simd-pool.ts)
 * where there is one and the product is large enough to gain.
 */
function product(kernels: SimdKernels, memory: WebAssembly.Memory, format: PackedFormat, x: number, N: number, words: number, scales: number, R: number, K: number, group: number, out: number, xs: number): void {
  const [rowBytes, scaleRow] = rowStrides(format, K, group);
  runSplit(memory, kernels, format, R, N * R * K, (r0, r1) => [x, N, words + r0 * rowBytes, scales + r0 * scaleRow, r1 - r0, K, group, out + 4 * r0, xs, R]);
}

/** Bytes from one W row to the next, in its words and in its scales (none for bf16). */
export function rowStrides(format: PackedFormat, K: number, group: number): [number, number] {
  return [(4 * K) / PER_WORD[format], format === 'bf16' ? 0 : (4 * K) / group];
}

/** x [N, K] · Wᵀ for packed W [R, K] in the WASM heap; false when the module or the shape does not serve. */
export const packedMatMulOnHeap: HeapKernel<Packing> = (at, out, packing, shapes, heap) => {
  const [N, K] = shapes.x!.shape;
  const R = shapes.words!.shape[0];
  if (N === 0 || R === 0 || !simdFits(packing, K)) return false;
  const kernels = simdKernelsOn(heap.memory);
  if (!kernels) return false;
  const format = packing.format as PackedFormat; // simdFits admits only the module's formats (VECTOR's)
  if (format === 'bf16') {
    product(kernels, heap.memory, format, at.x!, N, at.words!, 0, R, K, packing.group, out, 0);
    return true;
  }
  // xs [N] float32, then xq [N, K] int16
  return heap.withScratch(4 * N + 2 * N * K + 16, (scratch) => {
    const xq = scratch + ((4 * N + 15) & ~15);
    if (!roundX(kernels, heap.memory, format, at.x!, N, K, xq, scratch)) return false;
    product(kernels, heap.memory, format, xq, N, at.words!, at.scales!, R, K, packing.group, out, scratch);
    return true;
  });
};
