// A vocabulary-indexed matrix — the embedding or the LM head, [V, C] in the checkpoint — held as blocks of
// rows, so that no single GPU buffer exceeds the device's storage-binding limit. Gemma 3's 262,144 × 1,152
// floats are 1.2 GB; WebGPU's default binding limit is 128 MiB and many devices stop at 1–2 GB. With one block
// (every model that fits) each operation is the plain op it replaces.
//
// Blocks are [C, Vb] when `transposed` (the head's x·W form, and a tied embedding), else [Vb, C].
import * as tf from './tf';
import { matmul } from './ops/matmul';

export class VocabMatrix {
  readonly sizes: number[]; // vocabulary rows of each block
  readonly offsets: number[]; // first vocabulary row of each block

  constructor(
    readonly name: string, // the checkpoint key, e.g. model.embed_tokens.weight
    readonly blocks: tf.Tensor2D[],
    readonly transposed: boolean,
  ) {
    this.sizes = blocks.map((b) => b.shape[transposed ? 1 : 0]);
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

  get bytes(): number {
    return this.blocks.reduce((n, b) => n + b.size * 4, 0);
  }

  /** Rows for token ids [n] → [n, C] (the embedding lookup; for the head, W[:, id]ᵀ). `rowBlocks` as in back(). */
  rows(ids: tf.Tensor1D, rowBlocks?: tf.Tensor2D[]): tf.Tensor2D {
    const byRows = rowBlocks !== undefined || !this.transposed;
    const blocks = rowBlocks ?? this.blocks;
    const one = (b: tf.Tensor2D, at: tf.Tensor1D) => (byRows ? tf.gather(b, at) : tf.transpose(tf.gather(b, at, 1))) as tf.Tensor2D;
    if (blocks.length === 1) return one(blocks[0], ids);
    // Each block serves the ids inside it; the others read a clamped row and are masked to zero.
    const parts = blocks.map((b, k) => {
      const size = this.sizes[k];
      const local = tf.sub(ids, tf.scalar(this.offsets[k], 'int32')) as tf.Tensor1D;
      const inside = tf.logicalAnd(tf.greaterEqual(local, 0), tf.less(local, size));
      // (minimum/maximum, not clipByValue: WASM's ClipByValue does not clamp int32.)
      const clamped = tf.maximum(tf.minimum(local, tf.scalar(size - 1, 'int32')), tf.scalar(0, 'int32')) as tf.Tensor1D;
      const got = one(b, clamped);
      return tf.mul(got, tf.cast(inside, 'float32').reshape([-1, 1]));
    });
    return parts.reduce((a, b) => tf.add(a, b)) as tf.Tensor2D;
  }

  /** x [N, C] → x·Wᵀ [N, V] (the logits). */
  project(x: tf.Tensor2D): tf.Tensor2D {
    const parts = this.blocks.map((b) => matmul(x, b, false, !this.transposed) as tf.Tensor2D);
    return parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor2D);
  }

  /** p [N, V] → p·W [N, C] (the logits' gradient back to the hidden states). `rowBlocks`: the blocks as
   * [Vb, C], when the caller has them at hand (WASM's fast path transposes once for many chunks);
   * `transposeEach`: transpose one block at a time instead, freed before the next (WASM with a large vocabulary:
   * every transposed copy also gets a packed copy, and all at once do not fit its heap). */
  back(p: tf.Tensor2D, rowBlocks?: tf.Tensor2D[], transposeEach = false): tf.Tensor2D {
    const parts = this.blocks.map((b, k) => {
      const pk = this.blocks.length === 1 ? p : (tf.slice(p, [0, this.offsets[k]], [-1, this.sizes[k]]) as tf.Tensor2D);
      if (rowBlocks) return tf.matMul(pk, rowBlocks[k]);
      if (transposeEach && this.transposed) return tf.tidy(() => tf.matMul(pk, tf.transpose(b)));
      return this.transposed ? tf.matMul(pk, b, false, true) : tf.matMul(pk, b);
    });
    return parts.reduce((a, b) => tf.add(a, b)) as tf.Tensor2D;
  }

  /** The blocks as [Vb, C] (new tensors for a transposed matrix; the caller disposes them, or tidies). */
  rowBlocks(): tf.Tensor2D[] {
    return this.transposed ? this.blocks.map((b) => tf.transpose(b) as tf.Tensor2D) : this.blocks;
  }

  dispose(): void {
    for (const b of this.blocks) b.dispose();
  }
}
