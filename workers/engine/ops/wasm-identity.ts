// Identity (tf.clone) on the WASM backend without a copy: the output shares its input's memory, counted by the
// backend's reference count, as tfjs's cpu and WebGPU backends already do. tfjs-backend-wasm's own kernel copies
// every value, and tfjs calls it for each input a recorded op saves for its gradient: a 135M training step made 4,700
// such copies (about 270 ms here). Sharing is safe because tfjs's tensors are immutable; the one writer in place
// (ops/write-rows.ts, the KV cache) writes only tensors no clone was made of.
import * as tf from '../tf';
import { overrideWasmKernel } from './backend-io';

interface WasmBackendLike {
  incRef(dataId: object): void;
}

/** Re-register the WASM Identity kernel once (ops/index.ts does, after tfjs-backend-wasm is imported). */
export function registerWasmIdentity(): void {
  overrideWasmKernel(tf.Identity, (args, original) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}
