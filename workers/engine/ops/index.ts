// Every custom kernel and gradient the engine puts into tfjs, registered from this one list and nowhere else
// (importing an op's file registers nothing). selectBackend calls registerOps() before any tensor exists, and
// registerOps('webgpu') once tfjs-backend-webgpu is loaded (it is imported only when WebGPU is tried).
import * as tf from '../tf';
import { batchMatMulGradient } from './matmul';
import { registerWasmSlice } from './wasm-slice';
import { registerWasmTranspose } from './wasm-transpose';
import { registerWasmMatMul } from './wasm-matmul';
import { registerWasmIdentity } from './wasm-identity';
import { registerDequantize } from './dequantize';
import { registerDequantizeWebgpu } from './dequantize-webgpu';
import { registerPackedMatMul } from './packed-matmul';
import { registerPackedMatMulWebgpu } from './packed-matmul-webgpu';
import { registerPackedGemmWebgpu } from './packed-gemm-webgpu';
import { registerRmsNormGradient, registerRmsNormLoops } from './rms-norm';
import { registerRmsNormWebgpu } from './rms-norm-webgpu';
import { registerRotaryGradient, registerRotaryLoop } from './rotary';
import { registerRotaryWebgpu } from './rotary-webgpu';
import { registerGatedActGradient, registerGatedActLoops } from './gated-act';
import { registerGatedActWebgpu } from './gated-act-webgpu';
import { registerAdamWWebgpu } from './adamw-webgpu';
import { registerAdamWLoop } from './adamw';
import { registerAttentionGradient, registerAttentionLoop } from './attention';
import { registerAttentionWebgpu } from './attention-webgpu';
import { registerRowLinearWebgpu } from './row-linear-webgpu';
import { registerLmCrossEntropyWebgpu } from './lm-cross-entropy-webgpu';

export const OPS: readonly { name: string; register(): void | Promise<void>; backend?: 'webgpu' }[] = [
  { name: 'BatchMatMul gradient through matmul() (WASM fast paths in backward too)', register: () => tf.registerGradient(batchMatMulGradient) },
  { name: 'WASM Slice reading the heap in place', register: registerWasmSlice },
  { name: 'WASM Identity (tf.clone) sharing its input\'s memory, no copy', register: registerWasmIdentity },
  { name: 'WASM BatchMatMul of thin and batched float32 products in the SIMD module, on every thread', register: registerWasmMatMul },
  { name: 'WASM Transpose of the last two axes by the SIMD module\'s 4 × 4 blocks, on every thread', register: registerWasmTranspose },
  { name: 'Dequantize packed frozen weights (bf16, f16, int8, int4) to float32, on cpu and WASM', register: registerDequantize },
  { name: 'Dequantize packed frozen weights on WebGPU (a WGSL program)', register: registerDequantizeWebgpu, backend: 'webgpu' },
  { name: 'x·Wᵀ straight from packed frozen weights, for few rows (decoding) on cpu and WASM, any rows for int8 on WASM; and dy·W for int8 on WASM', register: registerPackedMatMul },
  { name: 'x·Wᵀ straight from packed frozen weights on WebGPU (a WGSL program)', register: registerPackedMatMulWebgpu, backend: 'webgpu' },
  { name: 'x·Wᵀ and dy·W for many rows (training) straight from packed frozen weights on WebGPU, tiled (a WGSL program)', register: registerPackedGemmWebgpu, backend: 'webgpu' },
  { name: 'RMSNorm gradient as one kernel (where the fused RMSNorm runs)', register: registerRmsNormGradient },
  { name: 'RMSNorm and its gradient, one workgroup per row, on WebGPU (WGSL programs)', register: registerRmsNormWebgpu, backend: 'webgpu' },
  { name: 'RMSNorm and its gradient as plain loops on WASM, for a decoded token\'s few rows', register: registerRmsNormLoops },
  { name: 'Rotary embedding gradient: the same kernel rotating back', register: registerRotaryGradient },
  { name: 'Rotary embedding in one pass on WebGPU (a WGSL program)', register: registerRotaryWebgpu, backend: 'webgpu' },
  { name: 'Rotary embedding as a plain loop on WASM, for a decoded token', register: registerRotaryLoop },
  { name: 'Gated activation gradient (SwiGLU, GELU-gate), one kernel per input', register: registerGatedActGradient },
  { name: 'Gated activation act(gate) · up and its gradients on WebGPU (WGSL programs)', register: registerGatedActWebgpu, backend: 'webgpu' },
  { name: 'Gated activation and its gradients as plain loops on WASM, for a decoded token', register: registerGatedActLoops },
  { name: 'Causal attention gradient (the softmax\'s, in tfjs ops, with P recomputed) where the fused attention runs', register: registerAttentionGradient },
  { name: 'Causal attention (scores, mask, window, cap, softmax, values) in one pass on WebGPU (a WGSL program)', register: registerAttentionWebgpu, backend: 'webgpu' },
  { name: 'Causal attention on WASM for a decoded token\'s few query rows (the SIMD module\'s products; a plain loop where it cannot)', register: registerAttentionLoop },
  { name: 'Linear layers for a few rows (decoding) with the pre-norm, bias, residual or gate folded in, on WebGPU (a WGSL program)', register: registerRowLinearWebgpu, backend: 'webgpu' },
  { name: 'The LM head\'s softmax cross-entropy from its products: row statistics and the gradient for the products, on WebGPU (WGSL programs)', register: registerLmCrossEntropyWebgpu, backend: 'webgpu' },
  { name: 'AdamW: a parameter and its two moments updated by three kernels on WebGPU (WGSL programs)', register: registerAdamWWebgpu, backend: 'webgpu' },
  { name: 'AdamW: a parameter and its two moments updated by three plain loops on WASM', register: registerAdamWLoop },
];

const done = new Set<string>();

/** Register the ops of the backends always present, or (`backend`) those of one loaded later; each once. */
export async function registerOps(backend?: 'webgpu'): Promise<void> {
  for (const op of OPS) {
    if (op.backend !== backend || done.has(op.name)) continue;
    done.add(op.name);
    await op.register();
  }
}
