// Slice on the WASM backend, reading its input in place. tfjs-backend-wasm's own Slice kernel first reads the whole
// input out of the heap (a full copy) and then copies the slice: cutting a [12, 768, 256] attention tensor into its 12
// matrices copied 113 MB instead of 9.4 (measured here: 33 ms instead of 3), and cutting a chunk's [341, 49152] LM-head
// gradient into its vocabulary blocks' columns copied the whole 67 MB once per block (190 ms a block). Here every
// slice is copied straight from the heap, one contiguous run at a time: a run is the innermost axis that the slice
// cuts together with every axis inside it (which it takes whole). Values are identical: both copy the same elements.
import * as tf from '../tf';
import { overrideWasmKernel } from './backend-io';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Runs shorter than this are copied element by element (a subarray per run costs more than its copy). */
const SHORT_RUN = 16;

/** Slices copied here so far (the tests' proof that this kernel, not the original, ran). */
export const sliceStats = { inPlace: 0 };

/**
 * The runs of a slice of `shape` at `begin` of `size` (the parsed, full-rank parameters): how long each is, how many
 * there are, and the source offset of run i (in elements).
 */
export function sliceRuns(shape: number[], begin: number[], size: number[]): { run: number; count: number; offsetOf: (i: number) => number } {
  const strides = tf.util.computeStrides(shape);
  const stride = (d: number) => (d === shape.length - 1 ? 1 : strides[d]);
  // The innermost axis the slice cuts: every axis after it is taken whole, so a run spans it and them.
  let cut = shape.length - 1;
  while (cut > 0 && begin[cut] === 0 && size[cut] === shape[cut]) cut--;
  const run = size.slice(cut).reduce((a, b) => a * b, 1);
  const outer = size.slice(0, cut); // the axes runs are counted over
  const count = outer.reduce((a, b) => a * b, 1);
  const base = begin.reduce((o, b, d) => o + b * stride(d), 0);
  return {
    run,
    count,
    offsetOf: (i) => {
      let offset = base;
      for (let d = outer.length - 1; d >= 0; d--) {
        offset += (i % outer[d]) * stride(d);
        i = Math.floor(i / outer[d]);
      }
      return offset;
    },
  };
}

/** Re-register the WASM Slice kernel once (ops/index.ts does, after tfjs-backend-wasm is imported). */
export function registerWasmSlice(): void {
  overrideWasmKernel(tf.Slice, (args, original) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const xt = { shape: x.shape, rank: x.shape.length } as tf.Tensor;
    const [begin_, size_] = tf.slice_util.parseSliceParams(xt, begin, size);
    if (x.dtype === 'string') return original.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(size_, x.dtype);
    if (tf.util.sizeFromShape(size_) === 0) return out;
    const { run, count, offsetOf } = sliceRuns(x.shape, begin_, size_);
    // Views are taken after makeOutput, which may grow (and so move) the heap.
    const [src, dst] = [backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out)];
    for (let i = 0, to = 0; i < count; i++, to += run) {
      const from = offsetOf(i);
      if (run >= SHORT_RUN) dst.set(src.subarray(from, from + run), to);
      else for (let j = 0; j < run; j++) dst[to + j] = src[from + j];
    }
    sliceStats.inPlace++;
    return out;
  });
}
