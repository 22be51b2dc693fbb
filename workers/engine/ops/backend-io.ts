// Reading a kernel's inputs and writing its output on the two backends whose memory JS can see: cpu (typed arrays
// per tensor) and WASM (views into its heap). Kernels written in plain loops (ops/dequantize.ts,
// ops/packed-matmul.ts) use these, so each loop exists once for both.
import * as tf from '../tf';

interface CpuBackendLike {
  readSync(dataId: object): tf.TypedArray;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  disposeData(dataId: object): void;
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
}

/** The WASM backend's heap, as a kernel of WASM's own sees it. */
export interface WasmHeap {
  memory: WebAssembly.Memory;
  /** A tensor's byte address in the heap. */
  at(t: tf.TensorInfo): number;
  /**
   * `bytes` of work space in the heap (16-byte aligned) for `use`, given its address, and freed after it. Allocating
   * may grow the heap, so views of `memory.buffer` are taken inside `use`.
   */
  withScratch<T>(bytes: number, use: (at: number) => T): T;
}

/**
 * A kernel of WASM's own for the same op: it gets the byte addresses of the inputs and of the output in the
 * backend's heap, and that heap, and returns whether it ran (false leaves the op to the plain loop).
 */
export type HeapKernel<A> = (at: Record<string, number | undefined>, out: number, attrs: A, shapes: Inputs, heap: WasmHeap) => boolean;

/** The WASM backend's heap (null where its memory is not reachable). */
export function wasmHeap(backend: unknown): WasmHeap | null {
  const b = backend as WasmBackendLike;
  const memory = b.wasm.wasmMemory ?? b.wasm.asm?.memory;
  const at = (t: tf.TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  return memory
    ? {
        memory,
        at,
        withScratch(bytes, use) {
          // a tensor of the backend's own that no one else sees: malloc'd (16-byte aligned) and freed by tfjs
          const t = b.makeOutput([Math.ceil(bytes / 4) + 4], 'int32');
          try {
            return use(Math.ceil(at(t) / 16) * 16); // not `& ~15`: that is signed, and a heap past 2 GiB has larger addresses
          } finally {
            b.disposeData(t.dataId);
          }
        },
      }
    : null;
}

export type Inputs = Record<string, tf.TensorInfo | undefined>;
export type Views = Record<string, tf.TypedArray | undefined>;

type KernelConfig = NonNullable<ReturnType<typeof tf.getKernel>>;
type KernelArgs = Parameters<KernelConfig['kernelFunc']>[0];
const overridden = new Set<string>();

/**
 * Replace tfjs-backend-wasm's kernel for `kernelName`, once, by `kernelFunc`, which gets the original to fall back on.
 * The original's setup is kept: it binds the WASM function that other kernels of tfjs call too. Nothing where the WASM
 * backend is not in this build.
 */
export function overrideWasmKernel(kernelName: string, kernelFunc: (args: KernelArgs, original: KernelConfig) => ReturnType<KernelConfig['kernelFunc']>): void {
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original || overridden.has(kernelName)) return;
  overridden.add(kernelName);
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc: (args) => kernelFunc(args, original) });
}

/** Whether the WASM backend is in this build (its kernels registered). */
const hasWasm = () => tf.getKernel(tf.Slice, 'wasm') !== undefined;

/**
 * Register `kernelName` on cpu (unless `wasmOnly`) and, when present, WASM: `run` gets views of the inputs and of a
 * fresh float32 output of `shape(inputs, attrs)`, and the inputs' shapes (on WASM, the views are taken after the
 * output is made: making it may grow, and so move, the heap). On WASM, `onHeap` is tried first.
 */
export function registerLoopKernel<A>(
  kernelName: string,
  shape: (inputs: Inputs, attrs: A) => number[],
  run: (inputs: Views, out: Float32Array, attrs: A, shapes: Inputs) => void,
  { onHeap, wasmOnly = false }: { onHeap?: HeapKernel<A>; wasmOnly?: boolean } = {},
): void {
  const views = (inputs: Inputs, read: (t: tf.TensorInfo) => tf.TypedArray): Views => Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t && read(t)]));
  if (!wasmOnly && !tf.getKernel(kernelName, 'cpu')) {
    tf.registerKernel({
      kernelName,
      backendName: 'cpu',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const b = backend as unknown as CpuBackendLike;
        const a = attrs as unknown as A;
        const s = shape(inputs as Inputs, a);
        const out = new Float32Array(tf.util.sizeFromShape(s));
        run(views(inputs as Inputs, (t) => b.readSync(t.dataId)), out, a, inputs as Inputs);
        return b.makeTensorInfo(s, 'float32', out);
      },
    });
  }
  if (!hasWasm() || tf.getKernel(kernelName, 'wasm')) return;
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackendLike;
      const a = attrs as unknown as A;
      const out = b.makeOutput(shape(inputs as Inputs, a), 'float32');
      const heap = onHeap && wasmHeap(backend);
      if (heap) {
        const addresses = Object.fromEntries(Object.entries(inputs as Inputs).map(([k, t]) => [k, t && heap.at(t)]));
        if (onHeap!(addresses, heap.at(out), a, inputs as Inputs, heap)) return out;
      }
      run(views(inputs as Inputs, (t) => b.typedArrayFromHeap(t)), b.typedArrayFromHeap(out) as Float32Array, a, inputs as Inputs);
      return out;
    },
  });
}
