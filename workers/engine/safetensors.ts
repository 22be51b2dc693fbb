// Reader for the safetensors format: 8-byte little-endian header length N, N bytes of JSON header,
// then the raw tensor data. F32, F16 and BF16 decode to float32. Every claim in the header is checked
// against the bytes actually present before any allocation, so a lying header cannot exhaust memory.
import { ModelFormatError } from './errors';

export type DType = 'F32' | 'F16' | 'BF16';
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number; // byte offset into the data section
  end: number;
}

export interface SafetensorsHeader {
  tensors: TensorEntry[];
  dataStart: number; // byte offset of the data section in the file
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024; // the reference implementation's own cap

/** Parse and validate the header of a complete safetensors file held in `bytes`. */
export function parseSafetensorsHeader(bytes: Uint8Array, file: string): SafetensorsHeader {
  if (bytes.byteLength < 8) throw new ModelFormatError(file, `is ${bytes.byteLength} bytes, too short to be a safetensors file (truncated download?). Download it again.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > MAX_HEADER_BYTES || 8 + n > bytes.byteLength) {
    throw new ModelFormatError(file, `header claims ${n} bytes but the file has ${bytes.byteLength} bytes: truncated or not a safetensors file. Download it again.`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  } catch (e) {
    throw new ModelFormatError(file, `header is not valid JSON (${(e as Error).message}); the file is damaged. Download it again.`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new ModelFormatError(file, 'header is not a JSON object.');
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const tensors: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') throw new ModelFormatError(file, `tensor ${name}: header entry is not an object.`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
      throw new ModelFormatError(file, `tensor ${name} has dtype ${JSON.stringify(dtype)}; only F32, F16 and BF16 are supported (quantized checkpoints are not).`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelFormatError(file, `tensor ${name} has an invalid shape ${JSON.stringify(shape)}.`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new ModelFormatError(file, `tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}.`);
    }
    const [begin, end] = offsets as [number, number];
    let elements = 1;
    for (const d of shape as number[]) elements *= d;
    const want = elements * DTYPE_BYTES[dtype];
    if (end < begin || end - begin !== want) {
      throw new ModelFormatError(file, `tensor ${name}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} shape [${(shape as number[]).join(', ')}] needs ${want}; the header does not match the data.`);
    }
    if (end > dataLength) {
      throw new ModelFormatError(file, `tensor ${name} ends at byte ${dataStart + end} but the file has only ${bytes.byteLength} bytes: truncated download. Download it again.`);
    }
    tensors.push({ name, dtype, shape: shape as number[], begin, end });
  }
  return { tensors, dataStart };
}

/** Decode one tensor's bytes to a fresh Float32Array. */
export function decodeTensor(bytes: Uint8Array, header: SafetensorsHeader, t: TensorEntry): Float32Array {
  const start = bytes.byteOffset + header.dataStart + t.begin;
  const count = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
  if (t.dtype === 'F32') {
    if (start % 4 === 0) return new Float32Array(bytes.buffer, start, count).slice();
    return new Float32Array(bytes.buffer.slice(start, start + count * 4));
  }
  const u16 = start % 2 === 0 ? new Uint16Array(bytes.buffer, start, count) : new Uint16Array(bytes.buffer.slice(start, start + count * 2));
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  if (t.dtype === 'BF16') {
    for (let i = 0; i < count; i++) bits[i] = u16[i] << 16;
  } else {
    for (let i = 0; i < count; i++) bits[i] = f16ToF32Bits(u16[i]);
  }
  return out;
}

/** A BF16 or F16 tensor's raw 16-bit patterns, for weights kept in half precision: a view into the file's bytes
 * when aligned (as decodeTensor reads them), else a copy. Read it before the bytes are let go. */
export function decodeHalves(bytes: Uint8Array, header: SafetensorsHeader, t: TensorEntry): Uint16Array {
  if (t.dtype === 'F32') throw new Error(`tensor ${t.name} is F32, not a 16-bit type`);
  const start = bytes.byteOffset + header.dataStart + t.begin;
  const count = (t.end - t.begin) / 2;
  return start % 2 === 0 ? new Uint16Array(bytes.buffer, start, count) : new Uint16Array(bytes.buffer.slice(start, start + count * 2));
}

/** IEEE half → single bit pattern (handles subnormals, inf and NaN). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return sign | 0x7f800000 | (mant << 13);
  if (exp === 0) {
    if (mant === 0) return sign;
    let e = -1;
    do {
      e++;
      mant <<= 1;
    } while ((mant & 0x400) === 0);
    return sign | ((127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  return sign | ((exp + 127 - 15) << 23) | (mant << 13);
}

/** Encode float32 values as a dtype's raw bytes (round-to-nearest-even). Used to write models. */
export function encodeValues(values: Float32Array, dtype: DType): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = dtype === 'BF16' ? f32ToBf16(bits[i]) : f32BitsToF16(bits[i]);
  return new Uint8Array(out.buffer);
}

function f32ToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40; // NaN stays NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** IEEE single → half bit pattern, round-to-nearest-even. */
export function f32ToF16(v: number): number {
  scratch[0] = v;
  return f32BitsToF16(scratchBits[0]);
}

function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = (mant | 0x800000) >>> (1 - e);
    const rounded = (m + 0xfff + ((m >>> 13) & 1)) >>> 13;
    return sign | rounded;
  }
  const r = mant + 0xfff + ((mant >>> 13) & 1);
  if (r & 0x800000) {
    e++;
    if (e >= 0x1f) return sign | 0x7c00;
    return sign | (e << 10);
  }
  return sign | (e << 10) | (r >>> 13);
}

/** The 8-byte length and JSON header of a safetensors file whose tensors follow in `entries`' order; the
 * data section that must follow is `dataBytes` long. Lets a writer stream tensors it has not computed yet. */
export function safetensorsPrefix(entries: readonly { name: string; shape: number[] }[], dtype: DType, metadata: Record<string, string> = { format: 'pt' }): { prefix: Uint8Array; dataBytes: number } {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of entries) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8; // align the data section, as the reference writer does
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);
  return { prefix, dataBytes: offset };
}

/** Serialize named float32 tensors into one safetensors file. */
export function writeSafetensors(tensors: { name: string; shape: number[]; values: Float32Array }[], dtype: DType, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const { prefix, dataBytes } = safetensorsPrefix(tensors, dtype, metadata);
  const out = new Uint8Array(prefix.byteLength + dataBytes);
  out.set(prefix);
  let p = prefix.byteLength;
  for (const t of tensors) {
    const raw = encodeValues(t.values, dtype);
    out.set(raw, p);
    p += raw.byteLength;
  }
  return out;
}
