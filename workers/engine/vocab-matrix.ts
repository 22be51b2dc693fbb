// A vocabulary-indexed matrix — the embedding or the LM head, [V, C] in the checkpoint — held as blocks of
// rows, so that no single GPU buffer exceeds the device's storage-binding limit. Gemma 3's 262,144 × 1,152
// floats are 1.2 GB; WebGPU's default binding limit is 128 MiB and many devices stop at 1–2 GB. With one block
// (every model that fits) each operation is the plain op it replaces.
//
// Blocks are [C, Vb] when `transposed` (the head's x·W form, and a tied embedding), else [Vb, C]. Blocks kept
// packed (16 bits, int8, int4: quant/packed-matrix.ts) are always rows [Vb, C], as the checkpoint stores them.
import * as tf from './tf';
import { matmul } from './ops/matmul';
import { PackedMatrix } from './quant/packed-matrix';
import type { Packing } from './quant/format';

export class VocabMatrix {
  readonly sizes: number[]; // vocabulary rows of each block
  readonly offsets: number[]; // first vocabulary row of each block

  constructor(
    readonly name: string, // the checkpoint key, e.g. model.embed_tokens.weight
    readonly blocks: tf.Tensor2D[], // float32 blocks; empty when packed
    readonly transposed: boolean,
    readonly packed: PackedMatrix[] = [], // packed row blocks [Vb, C], instead of `blocks`
  ) {
    this.sizes = packed.length > 0 ? packed.map((b) => b.rows) : blocks.map((b) => b.shape[transposed ? 1 : 0]);
    let v = 0;
    this.offsets = this.sizes.map((n) => ((v += n), v - n));
  }

  /** Rows per block so that one block takes at most `maxBytes` (float32) of C columns. */
  static blockRows(vocab: number, hidden: number, maxBytes: number | null): number {
    if (maxBytes === null) return vocab;
    return Math.max(1, Math.min(vocab, Math.floor(maxBytes / (4 * hidden))));
  }

  /** Build from the checkpoint's row-major [V, C] values, block by block (the full matrix never goes to the device). */
  static fromRows(name: string, values: Float32Array, V: number, C: number, transposed: boolean, blockRows: number): VocabMatrix {
    const blocks: tf.Tensor2D[] = [];
    for (let v = 0; v < V; v += blockRows) {
      const n = Math.min(blockRows, V - v);
      const rows = tf.tensor2d(values.subarray(v * C, (v + n) * C), [n, C]);
      if (!transposed) blocks.push(rows);
      else {
        blocks.push(tf.tidy(() => tf.transpose(rows)));
        rows.dispose();
      }
    }
    return new VocabMatrix(name, blocks, transposed);
  }

  /** Packed from the checkpoint's row-major [V, C] values (`halves`: its own 16-bit patterns, kept exactly). */
  static packedFromRows(name: string, values: Float32Array | Uint16Array, V: number, C: number, packing: Packing, blockRows: number): VocabMatrix {
    const blocks: PackedMatrix[] = [];
    for (let v = 0; v < V; v += blockRows) {
      const n = Math.min(blockRows, V - v);
      blocks.push(PackedMatrix.pack(values.subarray(v * C, (v + n) * C), n, C, packing));
    }
    return new VocabMatrix(name, [], false, blocks);
  }

  get blockCount(): number {
    return this.sizes.length;
  }

  get bytes(): number {
    return this.packed.length > 0 ? this.packed.reduce((n, b) => n + b.bytes, 0) : this.blocks.reduce((n, b) => n + b.size * 4, 0);
  }

  /** Block k as float32 rows [Vb, C] (a new tensor when transposed or packed: the caller tidies it). */
  rowsOf(k: number): tf.Tensor2D {
    if (this.packed.length > 0) return this.packed[k].dense();
    return this.transposed ? (tf.transpose(this.blocks[k]) as tf.Tensor2D) : this.blocks[k];
  }

  /** Rows for token ids [n] → [n, C] (the embedding lookup; for the head, W[:, id]ᵀ). `rowBlocks` as in back(). */
  rows(ids: tf.Tensor1D, rowBlocks?: tf.Tensor2D[]): tf.Tensor2D {
    const byRows = rowBlocks !== undefined || !this.transposed;
    const blocks = rowBlocks ?? this.blocks;
    const one = (k: number, at: tf.Tensor1D) => {
      if (!rowBlocks && this.packed.length > 0) return this.packed[k].gatherRows(at);
      return (byRows ? tf.gather(blocks[k], at) : tf.transpose(tf.gather(blocks[k], at, 1))) as tf.Tensor2D;
    };
    if (this.blockCount === 1) return one(0, ids);
    // Each block serves the ids inside it; the others read a clamped row and are masked to zero.
    const parts = this.sizes.map((_, k) => {
      const size = this.sizes[k];
      const local = tf.sub(ids, tf.scalar(this.offsets[k], 'int32')) as tf.Tensor1D;
      const inside = tf.logicalAnd(tf.greaterEqual(local, 0), tf.less(local, size));
      // (minimum/maximum, not clipByValue: WASM's ClipByValue does not clamp int32.)
      const clamped = tf.maximum(tf.minimum(local, tf.scalar(size - 1, 'int32')), tf.scalar(0, 'int32')) as tf.Tensor1D;
      const got = one(k, clamped);
      return tf.mul(got, tf.cast(inside, 'float32').reshape([-1, 1]));
    });
    return parts.reduce((a, b) => tf.add(a, b)) as tf.Tensor2D;
  }

  /** x [N, C] → x·Wᵀ [N, V] (the logits). */
  project(x: tf.Tensor2D): tf.Tensor2D {
    const parts = this.packed.length > 0 ? this.packed.map((b) => b.forward(x)) : this.blocks.map((b) => matmul(x, b, false, !this.transposed) as tf.Tensor2D);
    return parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor2D);
  }

  /** p [N, V] → p·W [N, C] (the logits' gradient back to the hidden states). `rowBlocks`: the blocks as
   * [Vb, C], when the caller has them at hand (WASM's fast path transposes once for many chunks);
   * `transposeEach`: transpose one block at a time instead, freed before the next (WASM with a large vocabulary:
   * every transposed copy also gets a packed copy, and all at once do not fit its heap). */
  back(p: tf.Tensor2D, rowBlocks?: tf.Tensor2D[], transposeEach = false): tf.Tensor2D {
    const parts = this.sizes.map((_, k) => {
      const pk = this.blockCount === 1 ? p : (tf.slice(p, [0, this.offsets[k]], [-1, this.sizes[k]]) as tf.Tensor2D);
      if (rowBlocks) return tf.matMul(pk, rowBlocks[k]);
      if (this.packed.length > 0) return this.packed[k].backward(pk);
      const b = this.blocks[k];
      if (transposeEach && this.transposed) return tf.tidy(() => tf.matMul(pk, tf.transpose(b)));
      return this.transposed ? tf.matMul(pk, b, false, true) : tf.matMul(pk, b);
    });
    return parts.reduce((a, b) => tf.add(a, b)) as tf.Tensor2D;
  }

  /** The blocks as [Vb, C] (new tensors for a transposed or packed matrix; the caller disposes them, or tidies). */
  rowBlocks(): tf.Tensor2D[] {
    return this.sizes.map((_, k) => this.rowsOf(k));
  }

  dispose(): void {
    for (const b of this.blocks) b.dispose();
    for (const b of this.packed) b.dispose();
  }
}
