// An independent GGUF reader for the tests, written from the format's specification (ggml's docs/gguf.md):
// little-endian; "GGUF", u32 version, u64 tensor count, u64 metadata count; each metadata key a string
// (u64 length + UTF-8), a u32 value type, the value; each tensor info a name, u32 n_dims, u64 dims (innermost
// first), u32 ggml type, u64 offset from the data section, which starts at the next multiple of
// general.alignment (default 32). Shares nothing with the writer.
import { half } from './half';
type Value = number | bigint | boolean | string | Value[];

export interface GgufFile {
  version: number;
  metadata: Map<string, Value>;
  tensors: Map<string, { dims: number[]; type: number; offset: number }>;
  dataStart: number;
  buf: Buffer;
}

export function readGguf(buf: Buffer): GgufFile {
  let p = 0;
  const u32 = () => ((p += 4), buf.readUInt32LE(p - 4));
  const u64 = () => ((p += 8), Number(buf.readBigUInt64LE(p - 8)));
  const str = () => {
    const n = u64();
    p += n;
    return buf.subarray(p - n, p).toString('utf8');
  };
  const value = (type: number): Value => {
    switch (type) {
      case 0: return buf.readUInt8(p++);
      case 1: return buf.readInt8(p++);
      case 2: return ((p += 2), buf.readUInt16LE(p - 2));
      case 3: return ((p += 2), buf.readInt16LE(p - 2));
      case 4: return u32();
      case 5: return ((p += 4), buf.readInt32LE(p - 4));
      case 6: return ((p += 4), buf.readFloatLE(p - 4));
      case 7: return buf.readUInt8(p++) !== 0;
      case 8: return str();
      case 9: {
        const of = u32();
        const n = u64();
        return Array.from({ length: n }, () => value(of));
      }
      case 10: return ((p += 8), buf.readBigUInt64LE(p - 8));
      case 11: return ((p += 8), buf.readBigInt64LE(p - 8));
      case 12: return ((p += 8), buf.readDoubleLE(p - 8));
      default: throw new Error(`GGUF reader: value type ${type}`);
    }
  };
  if (buf.subarray(0, 4).toString('latin1') !== 'GGUF') throw new Error('not GGUF');
  p = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const metadata = new Map<string, Value>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    metadata.set(key, value(u32()));
  }
  const tensors: GgufFile['tensors'] = new Map();
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const dims = Array.from({ length: u32() }, () => u64());
    tensors.set(name, { dims, type: u32(), offset: u64() });
  }
  const alignment = Number(metadata.get('general.alignment') ?? 32);
  const dataStart = Math.ceil(p / alignment) * alignment;
  return { version, metadata, tensors, dataStart, buf };
}

/** A tensor's values (row-major, outermost dimension first as a checkpoint writes it) and, for Q8_0, each block's scale. */
export function ggufValues(g: GgufFile, name: string): { values: Float64Array; shape: number[]; type: number; scales?: Float64Array } {
  const t = g.tensors.get(name);
  if (!t) throw new Error(`GGUF reader: no tensor ${name}`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const at = g.dataStart + t.offset;
  const values = new Float64Array(n);
  const shape = [...t.dims].reverse();
  if (t.type === 0) for (let i = 0; i < n; i++) values[i] = g.buf.readFloatLE(at + 4 * i);
  else if (t.type === 1) for (let i = 0; i < n; i++) values[i] = half(g.buf.readUInt16LE(at + 2 * i));
  else if (t.type === 8) {
    // block_q8_0: { f16 d; int8 qs[32] }, value = d · q
    const scales = new Float64Array(n / 32);
    for (let b = 0; b < n / 32; b++) {
      const d = half(g.buf.readUInt16LE(at + 34 * b));
      scales[b] = d;
      for (let i = 0; i < 32; i++) values[b * 32 + i] = d * g.buf.readInt8(at + 34 * b + 2 + i);
    }
    return { values, shape, type: t.type, scales };
  } else throw new Error(`GGUF reader: tensor type ${t.type}`);
  return { values, shape, type: t.type };
}
