// Frozen weights kept in 16 bits: a bf16 or f16 matrix [rows, cols] is stored as an int32 tensor
// [rows, cols / 2] holding the raw half-precision bit patterns two to a word (element 2j in the low 16 bits, as
// little-endian memory lays out a Uint16Array), and unpacked to float32 just before it is multiplied. The unpacked
// matrix lives only in the caller's tidy scope, so a model's resident weights take half the bytes. The values are
// exactly the checkpoint's: bf16 → f32 is a 16-bit shift, f16 → f32 an exact table lookup. No gradient: frozen
// weights are never differentiated (only the adapter is).
import * as tf from '../tf';
import { f16ToF32Bits } from '../safetensors';

export type HalfFormat = 'bf16' | 'f16';
export const UNPACK_HALF = 'WebtuneUnpackHalf';

let f16Table: Uint32Array | null = null;
/** f16 bit pattern → f32 bit pattern, for all 65,536 halves (256 KiB, made on first use). */
function f16Bits(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32Bits(h);
  }
  return f16Table;
}

/** Unpack `words` (the raw bits, 2 halves per word) into `out` (float32 bits). */
function unpackInto(words: Int32Array, out: Uint32Array, format: HalfFormat): void {
  const halves = new Uint16Array(words.buffer, words.byteOffset, words.length * 2);
  if (format === 'bf16') {
    for (let i = 0; i < halves.length; i++) out[i] = halves[i] << 16;
  } else {
    const table = f16Bits();
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  }
}

/** A [rows, cols] matrix of half bit patterns (cols even) as the int32 words the op unpacks: the same memory,
 * read two halves at a time (copied only when it does not start on a 4-byte boundary). */
export function packHalves(halves: Uint16Array): Int32Array {
  if (halves.length % 2 !== 0) throw new Error('packHalves needs an even number of halves');
  if (halves.byteOffset % 4 === 0) return new Int32Array(halves.buffer, halves.byteOffset, halves.length / 2);
  return new Int32Array(halves.buffer.slice(halves.byteOffset, halves.byteOffset + halves.byteLength));
}

/** words int32 [..., n/2] → float32 [..., n]. */
export function unpackHalf(words: tf.Tensor, format: HalfFormat): tf.Tensor {
  return tf.engine().runKernel(UNPACK_HALF, { x: words }, { format } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

const outShape = (x: tf.TensorInfo) => [...x.shape.slice(0, -1), 2 * (x.shape[x.shape.length - 1] as number)];

interface CpuBackendLike {
  readSync(dataId: object): Int32Array;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** One backend's kernel, registered once: `run` gets the packed input, the format and the backend. */
function kernel(backendName: string, run: (x: tf.TensorInfo, format: HalfFormat, backend: unknown) => tf.TensorInfo): void {
  if (tf.getKernel(UNPACK_HALF, backendName)) return;
  tf.registerKernel({ kernelName: UNPACK_HALF, backendName, kernelFunc: ({ inputs, attrs, backend }) => run(inputs.x as tf.TensorInfo, (attrs as unknown as { format: HalfFormat }).format, backend) });
}

/** The kernels: plain loops over the cpu backend's arrays and over the WASM heap in place. */
export function registerUnpackHalf(): void {
  kernel('cpu', (x, format, backend) => {
    const b = backend as CpuBackendLike;
    const out = new Float32Array(2 * tf.util.sizeFromShape(x.shape));
    unpackInto(b.readSync(x.dataId), new Uint32Array(out.buffer), format);
    return b.makeTensorInfo(outShape(x), 'float32', out);
  });
  if (!tf.getKernel(tf.Slice, 'wasm')) return; // the WASM backend is not in this build
  kernel('wasm', (x, format, backend) => {
    const b = backend as WasmBackendLike;
    const out = b.makeOutput(outShape(x), 'float32');
    // Views after makeOutput, which may grow (and so move) the heap.
    const src = b.typedArrayFromHeap(x) as Int32Array;
    const dst = b.typedArrayFromHeap(out) as Float32Array;
    unpackInto(src, new Uint32Array(dst.buffer, dst.byteOffset, dst.length), format);
    return out;
  });
}

/** Whether the active backend can unpack half weights (WebGPU cannot yet: its weights stay float32). */
export function canUnpackHalf(): boolean {
  return tf.getKernel(UNPACK_HALF, tf.getBackend()) !== undefined;
}
