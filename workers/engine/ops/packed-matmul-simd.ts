// PackedMatMul's WASM kernel (packed-matmul-simd.wat, 128-bit SIMD) for int8, int4 and bf16: it reads the packed
// words where tfjs-backend-wasm holds them, by importing that backend's memory, so nothing is copied. f16, and shapes
// whose K does not fill whole vectors, stay with the plain loop (ops/packed-matmul.ts).
import type { Packing } from '../quant/format';
import type { HeapKernel } from './backend-io';
import { PLAIN, SHARED } from './packed-matmul-simd.wasm';

type Product = (x: number, N: number, words: number, scales: number, R: number, K: number, group: number, out: number) => void;
type Products = Partial<Record<Packing['format'], Product>>;

/** Elements of one 16-byte vector of packed words, per format the module has. */
const VECTOR: Partial<Record<Packing['format'], number>> = { int8: 16, int4: 32, bf16: 8 };

const instances = new WeakMap<WebAssembly.Memory, Products | null>();

const moduleBytes = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** The module instantiated on `memory`, or null where this engine has no SIMD (or the import does not link). */
function productsOn(memory: WebAssembly.Memory): Products | null {
  if (instances.has(memory)) return instances.get(memory)!;
  let products: Products | null = null;
  const bytes = moduleBytes(isShared(memory) ? SHARED : PLAIN);
  if (WebAssembly.validate(bytes)) {
    try {
      const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
      products = { int8: exports.int8 as Product, int4: exports.int4 as Product, bf16: exports.bf16 as Product };
    } catch {
      products = null; // a memory this module cannot import: the plain loop serves
    }
  }
  instances.set(memory, products);
  return products;
}

/** Whether `packing` with rows of K elements runs in the SIMD module. */
export function simdFits(packing: Packing, K: number): boolean {
  const v = VECTOR[packing.format];
  return v !== undefined && K > 0 && K % v === 0 && packing.group % v === 0;
}

/** x [N, K] · Wᵀ for packed W [R, K] in the WASM heap; false when the module or the shape does not serve. */
export const packedMatMulOnHeap: HeapKernel<Packing> = (at, out, packing, shapes, memory) => {
  const [N, K] = shapes.x!.shape;
  const R = shapes.words!.shape[0];
  if (N === 0 || R === 0 || !simdFits(packing, K)) return false;
  const product = productsOn(memory)?.[packing.format];
  if (!product) return false;
  product(at.x!, N, at.words!, at.scales ?? 0, R, K, packing.group, out);
  return true;
};

/** Whether this JS engine can run the SIMD module at all. */
export function hasSimdModule(): boolean {
  return WebAssembly.validate(moduleBytes(PLAIN));
}
