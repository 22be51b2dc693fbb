// Every custom kernel and gradient the engine puts into tfjs, registered from this one list and nowhere else
// (importing an op's file registers nothing). selectBackend calls registerOps() before any tensor exists.
import * as tf from '../tf';
import { batchMatMulGradient } from './matmul';
import { registerWasmSlice } from './wasm-slice';
import { registerDequantize } from './dequantize';
import { registerPackedMatMul } from './packed-matmul';

export const OPS: readonly { name: string; register(): void }[] = [
  { name: 'BatchMatMul gradient through matmul() (WASM fast paths in backward too)', register: () => tf.registerGradient(batchMatMulGradient) },
  { name: 'WASM Slice reading the heap in place', register: registerWasmSlice },
  { name: 'Dequantize packed frozen weights (bf16, f16, int8, int4) to float32, on cpu and WASM', register: registerDequantize },
  { name: 'x·Wᵀ straight from packed frozen weights, for few rows (decoding), on cpu and WASM', register: registerPackedMatMul },
];

let registered = false;

/** Register every op in OPS, once. */
export function registerOps(): void {
  if (registered) return;
  registered = true;
  for (const op of OPS) op.register();
}
