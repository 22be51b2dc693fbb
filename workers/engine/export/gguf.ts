// GGUF version 3, the file format of llama.cpp and Ollama: "GGUF", version, tensor and key-value counts, the
// key-value metadata, one info per tensor (name, dimensions innermost first, type, offset), then the tensor
// data, each tensor aligned to `general.alignment` (32) bytes. Little-endian throughout. The header is made
// from the tensors' shapes alone, so the data can be streamed after it as each tensor is computed.
import { encodeValues, f32ToF16 } from '../safetensors';
import type { ByteSink } from './sink';

export const ALIGNMENT = 32;

/** The tensor types this writer makes, with their ggml type ids. */
export const GGML_TYPES = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPES;
/** Q8_0: blocks of 32 values along the innermost dimension, each an f16 scale and 32 signed bytes. */
export const Q8_0_BLOCK = 32;
const Q8_0_BYTES = 2 + Q8_0_BLOCK;

// Metadata value types of the format.
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

/** Key-value metadata, encoded as keys are added (in order; each key once). */
export class GgufMetadata {
  private readonly parts: Uint8Array[] = [];
  private readonly keys = new Set<string>();

  get count(): number {
    return this.keys.size;
  }

  private add(key: string, type: number, body: Uint8Array): this {
    if (this.keys.has(key)) throw new Error(`GGUF metadata key ${key} written twice`);
    this.keys.add(key);
    this.parts.push(str(key), u32(type), body);
    return this;
  }

  u32(key: string, v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`GGUF ${key}: ${v} is not a u32`);
    return this.add(key, T.U32, u32(v));
  }
  f32(key: string, v: number): this {
    return this.add(key, T.F32, new Uint8Array(new Float32Array([v]).buffer));
  }
  bool(key: string, v: boolean): this {
    return this.add(key, T.BOOL, new Uint8Array([v ? 1 : 0]));
  }
  string(key: string, v: string): this {
    return this.add(key, T.STRING, str(v));
  }
  strings(key: string, vs: readonly string[]): this {
    return this.add(key, T.ARRAY, concat([u32(T.STRING), u64(vs.length), ...vs.map(str)]));
  }
  i32s(key: string, vs: readonly number[]): this {
    return this.add(key, T.ARRAY, concat([u32(T.I32), u64(vs.length), new Uint8Array(Int32Array.from(vs).buffer)]));
  }
  f32s(key: string, vs: readonly number[]): this {
    return this.add(key, T.ARRAY, concat([u32(T.F32), u64(vs.length), new Uint8Array(Float32Array.from(vs).buffer)]));
  }

  bytes(): Uint8Array {
    return concat(this.parts);
  }
}

/** A tensor of the file: its GGUF name, its shape as the checkpoint writes it (outermost first), its type. */
export interface GgufTensor {
  name: string;
  shape: number[];
  type: GgmlType;
}

export function tensorBytes(t: GgufTensor): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.type === 'F32') return 4 * n;
  if (t.type === 'F16') return 2 * n;
  const inner = t.shape[t.shape.length - 1];
  if (inner % Q8_0_BLOCK !== 0) throw new Error(`${t.name}: Q8_0 needs the innermost dimension (${inner}) to be a multiple of ${Q8_0_BLOCK}`);
  return (n / Q8_0_BLOCK) * Q8_0_BYTES;
}

const pad = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;

/** Header, metadata and tensor infos, padded to where the data section begins. */
export function ggufHeader(metadata: GgufMetadata, tensors: readonly GgufTensor[]): Uint8Array {
  const infos: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dims = [...t.shape].reverse(); // ggml's ne: the innermost (contiguous) dimension first
    infos.push(str(t.name), u32(dims.length), ...dims.map(u64), u32(GGML_TYPES[t.type]), u64(offset));
    offset += tensorBytes(t);
    offset += pad(offset);
  }
  const head = concat([new TextEncoder().encode('GGUF'), u32(3), u64(tensors.length), u64(metadata.count), metadata.bytes(), ...infos]);
  return concat([head, new Uint8Array(pad(head.byteLength))]);
}

/** A tensor's values in its GGUF type, padded to the alignment that the next tensor starts at. */
export function encodeTensor(t: GgufTensor, values: Float32Array): Uint8Array {
  const raw = t.type === 'F32' ? encodeValues(values, 'F32') : t.type === 'F16' ? encodeValues(values, 'F16') : quantizeQ8_0(values);
  if (raw.byteLength !== tensorBytes(t)) throw new Error(`${t.name}: ${values.length} values do not fill shape [${t.shape.join(', ')}]`);
  const p = pad(raw.byteLength);
  return p === 0 ? raw : concat([raw, new Uint8Array(p)]);
}

/** Q8_0: per block of 32, d = max|x| / 127 (stored as f16) and q = round(x / d). */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BYTES);
  const view = new DataView(out.buffer);
  const q = new Int8Array(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(values[b * Q8_0_BLOCK + i]));
    const d = amax / 127;
    const inv = d > 0 ? 1 / d : 0;
    const at = b * Q8_0_BYTES;
    view.setUint16(at, f32ToF16(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) q[at + 2 + i] = Math.round(values[b * Q8_0_BLOCK + i] * inv);
  }
  return out;
}

/** Write a whole GGUF file: the header, then each tensor's data as `values` yields it, in the same order. */
export async function writeGguf(sink: ByteSink, metadata: GgufMetadata, tensors: readonly GgufTensor[], values: AsyncIterable<Float32Array>, onTensor?: (done: number, total: number) => void): Promise<void> {
  await sink.write(ggufHeader(metadata, tensors));
  let i = 0;
  for await (const v of values) {
    if (i >= tensors.length) throw new Error('more tensor values than tensors');
    await sink.write(encodeTensor(tensors[i], v));
    i++;
    onTensor?.(i, tensors.length);
  }
  if (i !== tensors.length) throw new Error(`${tensors.length - i} tensor(s) had no values`);
  await sink.close();
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}
function u64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}
function str(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  return concat([u64(bytes.byteLength), bytes]);
}
function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
