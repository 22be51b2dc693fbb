// A KV cache's new rows written where its tensor lies, in place: the cache (llama.ts) allots positions ahead and
// fills them a token at a time, so a decoded token copies its own keys and values, not the whole cache as a concat
// does (per token, O(positions) bytes per layer → O(1)). On cpu and WASM a copy between typed arrays of the memory
// JS sees; on WebGPU a buffer-to-buffer copy recorded in the backend's command stream, in order with its dispatches.
//
// This goes around tfjs's kernels on purpose: tfjs takes tensors as immutable. So `into` must be a tensor that no
// other tensor shares data with (not a reshape or clone of one, nor reshaped or cloned itself: on cpu and WASM
// (ops/wasm-identity.ts) a clone shares its memory), as the cache's own are.
import * as tf from '../tf';
import { wasmHeap } from './backend-io';

interface CpuBackendLike {
  data: { get(dataId: object): { values?: tf.TypedArray } | undefined };
}
interface WebGpuBackendLike {
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  commandEncoder: GPUCommandEncoder;
  commandQueueOwnedIds: WeakSet<object>; // kept from reuse until the queue is submitted
}

/**
 * into[:, at : at + T] = rows for into [B, R, n, D] and rows [B, T, n, D] (float32), in place where the backend lets JS
 * reach its memory (cpu, WASM, WebGPU): `into` is returned. Elsewhere a new tensor with the rows put in, and `into`
 * disposed.
 */
export function writeRows(into: tf.Tensor4D, rows: tf.Tensor4D, at: number): tf.Tensor4D {
  const [B, R, n, D] = into.shape;
  const [, T] = rows.shape;
  if (rows.shape[0] !== B || rows.shape[2] !== n || rows.shape[3] !== D || at < 0 || at + T > R) {
    throw new Error(`writeRows: rows ${JSON.stringify(rows.shape)} do not fit at ${at} in ${JSON.stringify(into.shape)}`);
  }
  const block = T * n * D; // one sequence's new rows, contiguous in both
  const span = (b: number) => [4 * b * block, 4 * (b * R + at) * n * D] as const; // bytes: from rows, to into
  const backend = tf.backend() as unknown;
  switch (tf.getBackend()) {
    case 'cpu': {
      const data = (backend as CpuBackendLike).data;
      const [src, dst] = [data.get(rows.dataId)?.values, data.get(into.dataId)?.values];
      if (!(src instanceof Float32Array && dst instanceof Float32Array)) break;
      for (let b = 0; b < B; b++) dst.set(src.subarray(b * block, (b + 1) * block), (b * R + at) * n * D);
      return into;
    }
    case 'wasm': {
      const heap = wasmHeap(backend);
      if (!heap) break;
      const bytes = new Uint8Array(heap.memory.buffer);
      const [src, dst] = [heap.at(rows), heap.at(into)];
      for (let b = 0; b < B; b++) {
        const [from, to] = span(b);
        bytes.copyWithin(dst + to, src + from, src + from + 4 * block);
      }
      return into;
    }
    case 'webgpu': {
      const gpu = backend as WebGpuBackendLike;
      gpu.uploadToGPU(rows.dataId);
      gpu.uploadToGPU(into.dataId);
      const [src, dst] = [gpu.tensorMap.get(rows.dataId)?.resource, gpu.tensorMap.get(into.dataId)?.resource];
      if (!(src instanceof GPUBuffer && dst instanceof GPUBuffer)) break;
      gpu.ensureCommandEncoderReady();
      gpu.endComputePassEncoder(); // a copy goes between compute passes
      for (let b = 0; b < B; b++) {
        const [from, to] = span(b);
        gpu.commandEncoder.copyBufferToBuffer(src, from, dst, to, 4 * block);
      }
      gpu.commandQueueOwnedIds.add(rows.dataId);
      gpu.commandQueueOwnedIds.add(into.dataId);
      return into;
    }
  }
  const out = tf.tidy(() => tf.concat([into.slice([0, 0, 0, 0], [B, at, n, D]), rows, into.slice([0, at + T, 0, 0], [B, R - at - T, n, D])], 1)) as tf.Tensor4D;
  into.dispose();
  return out;
}
