// Packed formats for frozen weights. A matrix is kept in its checkpoint's row layout [R, K] (a linear module's
// [out, in], a vocabulary matrix's [V, C]) and packed along K into int32 words:
//   bf16, f16  2 per word, the file's own bit patterns (element 2j in the low half, as a Uint16Array lays them out)
//   int8       4 per word (byte b = element 4j + b, two's complement), a float32 scale per group of K
//   int4       8 per word (nibble b = element 8j + b, stored as q + 8), a float32 scale per group of K
// Scales are [R, K / group]: value = q · scale of its group (symmetric: no zero point). int8 takes one group per row
// (per output channel), int4 groups of 32 along K (QLoRA's and q4f16's granularity). Plain JS, no tensors: the ops
// (ops/dequantize.ts, ops/packed-matmul.ts) and the loader share these loops.
import { f16ToF32Bits } from '../safetensors';

export type PackFormat = 'bf16' | 'f16' | 'int8' | 'int4';

/** Elements per int32 word. */
export const PER_WORD: Record<PackFormat, number> = { bf16: 2, f16: 2, int8: 4, int4: 8 };

/** Largest |q| of a quantized format: the absmax of a group maps to it. */
const Q_MAX = { int8: 127, int4: 7 } as const;

/** int4's group along K (QLoRA and WebLLM's q4f16 use 32 or 64). */
export const INT4_GROUP = 32;

export interface Packing {
  format: PackFormat;
  /** Elements of K sharing one scale (quantized formats); K itself for int8's per-row scale. */
  group: number;
}

/** The packing of an [R, K] matrix in `format`, or null when K does not divide into its words and groups. */
export function packingFor(format: PackFormat, K: number): Packing | null {
  if (K % PER_WORD[format] !== 0) return null;
  if (format === 'int8') return { format, group: K };
  if (format === 'int4') return K % INT4_GROUP === 0 ? { format, group: INT4_GROUP } : null;
  return { format, group: K };
}

const isQuantized = (f: PackFormat) => f === 'int8' || f === 'int4';

/** Bytes a packed [R, K] matrix takes: its words and its scales. */
export function packedBytes(p: Packing, R: number, K: number): number {
  return R * (K / PER_WORD[p.format]) * 4 + (isQuantized(p.format) ? R * (K / p.group) * 4 : 0);
}

let f16Table: Uint32Array | null = null;
/** f16 bit pattern → f32 bit pattern, for all 65,536 halves (256 KiB, made on first use). */
export function f16Bits(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32Bits(h);
  }
  return f16Table;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 → bfloat16 bit pattern, rounded to nearest even (NaN stays NaN). */
export function bf16FromF32(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A row-major [R, K] float32 matrix quantized: words [R · K / perWord] and scales [R · K / group]. */
export function quantize(values: Float32Array, R: number, K: number, p: Packing): { words: Int32Array; scales: Float32Array | null } {
  const per = PER_WORD[p.format];
  const words = new Int32Array((R * K) / per);
  if (p.format === 'bf16') {
    const h = new Uint16Array(words.buffer);
    for (let i = 0; i < values.length; i++) h[i] = bf16FromF32(values[i]);
    return { words, scales: null };
  }
  if (p.format === 'f16') throw new Error('f16 packing keeps a file’s own halves; it is not made from float32');
  const qmax = Q_MAX[p.format];
  const groups = K / p.group;
  const scales = new Float32Array(R * groups);
  const bits = p.format === 'int8' ? 8 : 4;
  const mask = (1 << bits) - 1;
  const offset = p.format === 'int4' ? 8 : 0; // int4 stores q + 8 (0..15); int8 stores q as a byte
  for (let r = 0; r < R; r++) {
    for (let g = 0; g < groups; g++) {
      const k0 = r * K + g * p.group;
      let amax = 0;
      for (let k = 0; k < p.group; k++) amax = Math.max(amax, Math.abs(values[k0 + k]));
      const scale = amax / qmax;
      scales[r * groups + g] = scale;
      const inv = scale > 0 ? 1 / scale : 0;
      for (let k = 0; k < p.group; k++) {
        const i = k0 + k;
        const q = Math.max(-qmax, Math.min(qmax, Math.round(values[i] * inv)));
        words[(i / per) | 0] |= ((q + offset) & mask) << (bits * (i % per));
      }
    }
  }
  return { words, scales };
}

/**
 * Row r of a packed [R, K] matrix into `out` (K floats at `out[at + k · stride]`): stride 1 writes the row, stride R
 * (at = r) writes column r of the transposed [K, R] matrix. `words` and `scales` are the whole matrix's.
 */
export function decodeRow(words: Int32Array, scales: Float32Array | null, r: number, K: number, p: Packing, out: Float32Array, at: number, stride: number): void {
  const per = PER_WORD[p.format];
  const W = K / per;
  const w0 = r * W;
  if (p.format === 'bf16' || p.format === 'f16') {
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    const table = p.format === 'f16' ? f16Bits() : null;
    for (let j = 0; j < W; j++) {
      const w = words[w0 + j];
      const lo = w & 0xffff;
      const hi = w >>> 16;
      const o = at + 2 * j * stride;
      bits[o] = table ? table[lo] : lo << 16;
      bits[o + stride] = table ? table[hi] : hi << 16;
    }
    return;
  }
  const groups = K / p.group;
  const wordsPerGroup = p.group / per;
  for (let g = 0; g < groups; g++) {
    const s = scales![r * groups + g];
    for (let jj = 0; jj < wordsPerGroup; jj++) {
      const j = g * wordsPerGroup + jj;
      const w = words[w0 + j];
      let o = at + j * per * stride;
      if (p.format === 'int8') {
        for (let b = 0; b < 32; b += 8, o += stride) out[o] = ((w << (24 - b)) >> 24) * s;
      } else {
        for (let b = 0; b < 32; b += 4, o += stride) out[o] = (((w >>> b) & 15) - 8) * s;
      }
    }
  }
}

/**
 * out[n, r] = Σₖ x[n, k] · W[r, k] for a packed W [R, K] and x [N, K] (x·Wᵀ), without unpacking W: each row is
 * read once and dotted with every x row, a group at a time, its scale applied once per group.
 */
export function packedProduct(x: Float32Array, N: number, words: Int32Array, scales: Float32Array | null, R: number, K: number, p: Packing, out: Float32Array): void {
  if (p.format === 'bf16' || p.format === 'f16') {
    // One pass: each word's two halves go through a 2-float scratch (JS has no cheaper bit reinterpretation;
    // measured 1.4× faster than unpacking a row first, then dotting it).
    const pair = new Float32Array(2);
    const pairBits = new Int32Array(pair.buffer);
    const W = K / 2;
    const table = p.format === 'f16' ? f16Bits() : null;
    for (let r = 0; r < R; r++) {
      const w0 = r * W;
      for (let n = 0; n < N; n++) {
        const x0 = n * K;
        let acc = 0;
        if (table) {
          for (let j = 0; j < W; j++) {
            const w = words[w0 + j];
            pairBits[0] = table[w & 0xffff];
            pairBits[1] = table[w >>> 16];
            acc += x[x0 + 2 * j] * pair[0] + x[x0 + 2 * j + 1] * pair[1];
          }
        } else {
          for (let j = 0; j < W; j++) {
            const w = words[w0 + j];
            pairBits[0] = w << 16;
            pairBits[1] = w & -65536;
            acc += x[x0 + 2 * j] * pair[0] + x[x0 + 2 * j + 1] * pair[1];
          }
        }
        out[n * R + r] = acc;
      }
    }
    return;
  }
  const per = PER_WORD[p.format];
  const W = K / per;
  const groups = K / p.group;
  const wordsPerGroup = p.group / per;
  for (let r = 0; r < R; r++) {
    const w0 = r * W;
    for (let n = 0; n < N; n++) {
      const x0 = n * K;
      let acc = 0;
      for (let g = 0; g < groups; g++) {
        let part = 0;
        const jEnd = (g + 1) * wordsPerGroup;
        if (p.format === 'int8') {
          for (let j = g * wordsPerGroup; j < jEnd; j++) {
            const w = words[w0 + j];
            const k = x0 + 4 * j;
            part += x[k] * ((w << 24) >> 24) + x[k + 1] * ((w << 16) >> 24) + x[k + 2] * ((w << 8) >> 24) + x[k + 3] * (w >> 24);
          }
        } else {
          for (let j = g * wordsPerGroup; j < jEnd; j++) {
            const w = words[w0 + j];
            const k = x0 + 8 * j;
            part +=
              x[k] * ((w & 15) - 8) + x[k + 1] * (((w >>> 4) & 15) - 8) + x[k + 2] * (((w >>> 8) & 15) - 8) + x[k + 3] * (((w >>> 12) & 15) - 8) +
              x[k + 4] * (((w >>> 16) & 15) - 8) + x[k + 5] * (((w >>> 20) & 15) - 8) + x[k + 6] * (((w >>> 24) & 15) - 8) + x[k + 7] * ((w >>> 28) - 8);
          }
        }
        acc += part * scales![r * groups + g];
      }
      out[n * R + r] = acc;
    }
  }
}
