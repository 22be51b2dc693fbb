// Slice on the WASM backend, reading its input in place. tfjs-backend-wasm's own Slice kernel first reads
// the whole input out of the heap (a full copy) and then copies the slice: cutting a [12, 768, 256]
// attention tensor into its 12 matrices copied 113 MB instead of 9.4 (measured here: 33 ms instead of
// 3). A slice that is one contiguous run of memory is copied straight from the heap; any other slice is
// left to the original kernel. Values are identical: both copy the same elements.
import * as tf from '../tf';
import { overrideWasmKernel } from './backend-io';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Re-register the WASM Slice kernel once (ops/index.ts does, after tfjs-backend-wasm is imported). */
export function registerWasmSlice(): void {
  overrideWasmKernel(tf.Slice, (args, original) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const xt = { shape: x.shape, rank: x.shape.length } as tf.Tensor;
    const [begin_, size_] = tf.slice_util.parseSliceParams(xt, begin, size);
    if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, begin_, size_)) return original.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(size_, x.dtype);
    const offset = tf.slice_util.computeFlatOffset(begin_, tf.util.computeStrides(x.shape));
    const n = tf.util.sizeFromShape(size_);
    // Views are taken after makeOutput, which may grow (and so move) the heap.
    backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x).subarray(offset, offset + n));
    return out;
  });
}
