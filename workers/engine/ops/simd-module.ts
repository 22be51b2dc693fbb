// The module of WASM kernels of webtune's own (simd-kernels.wat, 128-bit SIMD), instantiated on tfjs-backend-wasm's
// heap by importing that memory, so kernels read and write tensors where tfjs holds them, with no copy: the packed
// product (ops/packed-matmul-simd.ts) and a decoded token's attention (ops/attention.ts).
import { PLAIN, SHARED } from './simd-kernels.wasm';

/** out[n · ldo + r] = x[n] · W[r] for n < N, r < R (simd-kernels.wat); xScales: x's int16 scales (int8, int4). */
export type Product = (x: number, N: number, words: number, scales: number, R: number, K: number, group: number, out: number, xScales: number, ldo: number) => void;

/** W [R, K] packed → float32 rows at `out` (Dequantize): q · scale, or a bf16's own bits. */
export type Unpack = (words: number, scales: number, R: number, K: number, group: number, out: number) => void;

export interface SimdKernels {
  int8: Product;
  int4: Product;
  bf16: Product;
  unpack_int8: Unpack;
  unpack_int4: Unpack;
  unpack_bf16: Unpack;
  /** out[n, k] = Σ_r a[n, r] · W[r, k] for k0 ≤ k < k1, int8 W [R, K] (the backward product); R even, k0, k1, G multiples of 16. */
  int8t(a: number, N: number, words: number, scales: number, R: number, K: number, group: number, out: number, k0: number, k1: number): void;
  /** out[e, n, k] = Σ_r a[e, n, r] · b[e, r, k] for e0 ≤ e < e1, n < N, k0 ≤ k < k1: float32 a [E, N, R], b [E, R, K], out
   * [E, N, K]; k0 a multiple of 4 (BatchMatMul: ops/wasm-matmul.ts). */
  f32mm(a: number, N: number, b: number, R: number, K: number, out: number, k0: number, k1: number, e0: number, e1: number): void;
  /** x float32 [N, K] → q int16 [N, K] against each row's absmax, xs[n] = absmax / 32767 (NaN: a row not finite). */
  round16(x: number, N: number, K: number, q: number, xs: number): void;
  /** float32 src [R, K] → out[k · ldo + r]; R and K multiples of 4. */
  transpose4(src: number, R: number, K: number, out: number, ldo: number): void;
  /** out[s] = scale · q·k[s] for s < count; k rows `stride` bytes apart; D a multiple of 4. */
  scores(q: number, k: number, stride: number, D: number, count: number, out: number, scale: number): void;
  /** out[d] = Σ_s p[s] · v[s, d] for s < count; v rows `stride` bytes apart; D a multiple of 4. */
  values(p: number, v: number, stride: number, D: number, count: number, out: number): void;
}

const instances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

const moduleBytes = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

export function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

const compiled = new Map<string, WebAssembly.Module | null>();

/**
 * The module compiled, importing a shared memory or a plain one (null where this engine has no SIMD). Compiled once:
 * the SIMD pool's helper threads (ops/simd-pool.ts) get this one, so its optimized code is shared, not redone.
 */
export function compiledKernels(shared: boolean): WebAssembly.Module | null {
  const base64 = shared ? SHARED : PLAIN;
  if (!compiled.has(base64)) {
    const bytes = moduleBytes(base64);
    compiled.set(base64, WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null);
  }
  return compiled.get(base64)!;
}

/** The module instantiated on `memory`, or null where this engine has no SIMD (or the import does not link). */
export function simdKernelsOn(memory: WebAssembly.Memory): SimdKernels | null {
  if (instances.has(memory)) return instances.get(memory)!;
  let kernels: SimdKernels | null = null;
  const module = compiledKernels(isShared(memory));
  if (module) {
    try {
      kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SimdKernels;
    } catch {
      kernels = null; // a memory this module cannot import: the plain loops serve
    }
  }
  instances.set(memory, kernels);
  return kernels;
}

let validated: boolean | null = null;

/** Whether this JS engine can run the module at all (validated once: the products ask at every call). */
export function hasSimdModule(): boolean {
  validated ??= WebAssembly.validate(moduleBytes(PLAIN));
  return validated;
}
