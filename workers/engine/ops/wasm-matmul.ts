// BatchMatMul on the WASM backend for the products XNNPACK serves badly: the small and thin ones of a training step
// (LoRA's rank-r factors, attention's per-head matrices). tfjs-backend-wasm hands a product to XNNPACK, which packs
// the second operand anew whenever it is a new tensor (every activation and gradient is) and threads the product on
// pthreadpool, apart from the SIMD module's own pool; its batched products run a plain loop of tfjs's own
// (ops/matmul.ts). Measured on a 135M training step: attention's [384, 64]·[64, 128] ran at 30 GFLOP/s on one thread
// and slower on two; a LoRA gradient's [8, 512]·[512, 1536] at 5 GFLOP/s. Here such products run in the SIMD module
// (simd-kernels.wat `f32mm`), a batch in one call, split across the pool's threads by entries or by rows. The sums are
// taken in another order than XNNPACK's, so values differ in the last bits.
import * as tf from '../tf';
import { overrideWasmKernel, wasmHeap, type WasmHeap } from './backend-io';
import { simdKernelsOn, type SimdKernels } from './simd-module';
import { runSplit, simdThreads } from './simd-pool';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** Products run by the SIMD module so far (the tests' proof that it, not XNNPACK, ran). */
export const matmulStats = { simd: 0 };

/** The side up to which XNNPACK's packing costs about as much as its product (LoRA's ranks are 4 to 64). */
const THIN = 64;

/**
 * Whether the module runs an [M, K]·[K, N] product, or a batch of them (`batched`: operands of rank 3 or more, with
 * the same batch): a product XNNPACK is slow at, where packing the second operand costs about as much as
 * the product: a batch (XNNPACK has none: tfjs runs its own loop), a short inner side (K at most THIN: a LoRA factor's
 * rank), or few rows (M at most THIN) of a product that sums over a batch's rows (a weight's gradient, op(A)ᵀ·G,
 * inside summedRows).
 *
 * Neither N, nor the batch's size, nor the number of rows a forward product has decides it, so that a row's value
 * depends on none of them: a product's columns cut into blocks (the LM head's vocabulary) take the same path as the
 * whole, and a sequence alone the same as in a batch (DPO's reference pass against its policy at B = 0, and a prompt
 * decoded alone or batched). A thin N is left to XNNPACK, faster there on one thread: [512, 576]·[576, 8] 0.15 ms
 * against 0.25.
 */
function simdMatMulServes(batched: boolean, M: number, K: number, N: number): boolean {
  return M * K * N > 0 && (batched || K <= THIN || (summingRows && M <= THIN));
}

let summingRows = false;

/** `product()`, whose products sum over a batch's rows (a weight's gradient): those with few rows run in the module. */
export function summedRows<T>(product: () => T): T {
  const outer = summingRows;
  summingRows = true;
  try {
    return product();
  } finally {
    summingRows = outer;
  }
}

/** The SIMD module on the WASM backend's heap, as the kernel calls it (null: another backend, or no module there). */
function moduleOn(backend: unknown): { heap: WasmHeap; kernels: SimdKernels } | null {
  const heap = wasmHeap(backend);
  const kernels = heap ? simdKernelsOn(heap.memory) : null;
  return heap && kernels ? { heap, kernels } : null;
}

/** Whether BatchMatMul on WASM runs such a product in the module (else XNNPACK or tfjs's batched loop). */
export function simdMatMulRuns(batched: boolean, M: number, K: number, N: number): boolean {
  return tf.getBackend() === 'wasm' && simdMatMulServes(batched, M, K, N) && moduleOn(tf.backend()) !== null;
}

/** Re-register the WASM BatchMatMul kernel once (ops/index.ts does, after tfjs-backend-wasm is imported). */
export function registerWasmMatMul(): void {
  overrideWasmKernel(tf.BatchMatMul, (args, original) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const simd = moduleOn(args.backend);
    const batch = a.shape.slice(0, -2);
    const [M, K] = a.shape.slice(-2);
    const N = b.shape[b.shape.length - 1];
    const E = tf.util.sizeFromShape(batch);
    const sameBatch = a.shape.length === b.shape.length && batch.every((d, i) => d === b.shape[i]);
    if (!simd || transposeA || transposeB || a.dtype !== 'float32' || b.dtype !== 'float32' || !sameBatch || !simdMatMulServes(batch.length > 0, M, K, N)) return original.kernelFunc(args);
    const { heap, kernels } = simd;
    const out = (args.backend as unknown as WasmBackendLike).makeOutput([...batch, M, N], 'float32');
    const [ap, bp, op] = [heap.at(a), heap.at(b), heap.at(out)];
    const work = E * M * K * N;
    // Split by entries, else by rows: each thread writes whole rows of out (split by columns, two threads' writes met
    // in a cache line of every row: [384, 64]·[64, 128] took 0.32 ms on two threads against 0.18 on one).
    if (E >= simdThreads()) runSplit(heap.memory, kernels, 'f32mm', E, work, (e0, e1) => [ap, M, bp, K, N, op, 0, N, e0, e1]);
    else
      for (let e = 0; e < E; e++) {
        const [ae, be, oe] = [ap + 4 * e * M * K, bp + 4 * e * K * N, op + 4 * e * M * N];
        runSplit(heap.memory, kernels, 'f32mm', M, M * K * N, (r0, r1) => [ae + 4 * r0 * K, r1 - r0, be, K, N, oe + 4 * r0 * N, 0, N, 0, 1], 4);
      }
    matmulStats.simd++;
    return out;
  });
}
