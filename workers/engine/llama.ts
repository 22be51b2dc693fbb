// The decoder of every supported architecture (Llama, Qwen2, Qwen3, Gemma 3) on tfjs-core, written top-down
// like nanoGPT; what differs between them (q/k norms, Gemma's four norms and (1 + w) scaling, GELU, sliding
// windows, rope scaling, soft-capping) is read from ModelConfig, never from the architecture's name.
// Weights live in a Map keyed exactly by the Hugging Face checkpoint names. Linear weights (…_proj.weight,
// lm_head.weight, and a tied model's embed_tokens.weight) are kept transposed, [in, out], so every forward
// product is a plain x·W — the fast path on every backend (see ops/matmul.ts). Shapes: B batch, T new tokens,
// S cached + new tokens, C hidden, H query heads, KVH key/value heads, G = H / KVH, D head dim, V vocab.
// Callers run forward/logits inside tf.tidy; only the KV cache's tensors escape (kept and owned by KVCache).
import * as tf from './tf';
import { ropeInverseFrequencies, type LayerType, type ModelConfig, type RopeSpec } from './config';
import type { LoraAdapter } from './lora';
import { matmul } from './ops/matmul';
import { attention, softcap } from './ops/attention';
import { recording, withOwnTape } from './ops/own-tape';
import { gatedAct } from './ops/gated-act';
import { rmsNorm } from './ops/rms-norm';
import { hasRowLinear, rowLinear, ROW_LINEAR_MAX_RANK, ROW_LINEAR_MAX_ROWS, type RowAdapter, type RowWeight } from './ops/row-linear';
import { rotaryKernel, rotaryRuns } from './ops/rotary';
import { writeRows } from './ops/write-rows';
import type { PackedMatrix } from './quant/packed-matrix';
import type { PackFormat } from './quant/format';
import { VocabMatrix } from './vocab-matrix';

export type Weights = Map<string, tf.Tensor>;

/** Whether a checkpoint tensor is stored transposed ([in, out]) by this implementation. */
export function isTransposed(name: string, tied: boolean): boolean {
  return name.endsWith('_proj.weight') || name === 'lm_head.weight' || (tied && name === 'model.embed_tokens.weight');
}

/** Positions a KV cache allots at a time (KVCache's default block). */
export const KV_BLOCK = 256;

/** Per-layer keys and values of every token seen so far, in rows allotted a block at a time. Owns its tensors. */
export class KVCache {
  private readonly k: (tf.Tensor4D | null)[]; // [B, rows, KVH, D] per layer: positions [0, length) filled, the rest allotted
  private readonly v: (tf.Tensor4D | null)[];
  length = 0; // S: positions already in the cache

  /** `block`: positions allotted at a time. The cache grows by whole blocks, copying what it holds once a block. */
  constructor(
    numLayers: number,
    private readonly block = KV_BLOCK,
  ) {
    this.k = new Array<tf.Tensor4D | null>(numLayers).fill(null);
    this.v = new Array<tf.Tensor4D | null>(numLayers).fill(null);
  }

  /**
   * Write this step's k/v [B, T, KVH, D] for one layer at positions [length, length + T), in place (ops/write-rows.ts);
   * returns the layer's k and v [B, rows, KVH, D], of which the first length + T rows are filled.
   */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
    const need = this.length + k.shape[1];
    this.k[layer] = tf.keep(writeRows(this.allotted(this.k[layer], k, need), k, this.length));
    this.v[layer] = tf.keep(writeRows(this.allotted(this.v[layer], v, need), v, this.length));
    return [this.k[layer]!, this.v[layer]!];
  }

  /** `held` with at least `need` rows: itself, or grown to whole blocks (its rows copied, `held` disposed). */
  private allotted(held: tf.Tensor4D | null, like: tf.Tensor4D, need: number): tf.Tensor4D {
    const have = held?.shape[1] ?? 0;
    if (held && need <= have) return held;
    const [B, , KVH, D] = like.shape;
    const rows = Math.ceil(need / this.block) * this.block;
    const grown = tf.tidy(() => {
      const more = tf.zeros([B, rows - have, KVH, D]) as tf.Tensor4D;
      return held ? (tf.concat([held, more], 1) as tf.Tensor4D) : more;
    });
    held?.dispose();
    return grown;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t?.dispose();
    this.k.fill(null);
    this.v.fill(null);
    this.length = 0;
  }
}

/** A layer's input and the RMSNorm it takes before its projections: normed once, when the first product without
 * the norm folded in asks for it. */
class Normed {
  private normedValue: tf.Tensor3D | null = null;
  constructor(
    readonly x: tf.Tensor3D,
    readonly weight: string,
    private readonly norm: () => tf.Tensor3D,
  ) {}

  get value(): tf.Tensor3D {
    return (this.normedValue ??= this.norm());
  }
}

/** Training-time dropout on the LoRA path. Masks are a pure function of `seed` and the module, so a
 * block recomputed during backward (activation checkpointing) draws exactly the masks of its forward. */
export interface LoraDropout {
  rate: number;
  seed: number;
}

/** How one forward pass runs. Nothing of it is kept on the model: two requests never see each other's mode. */
export interface ForwardOptions {
  cache?: KVCache; // decoding: positions continue from the cache, which the new keys/values extend
  adapter?: LoraAdapter | null; // applied on its target modules (frozen base weights are never changed)
  loraScale?: number; // the adapter's strength: 0 = base model, 1 = as trained (default)
  dropout?: LoraDropout | null; // training only
  checkpointing?: boolean; // training: keep only each block's input and recompute the block in backward
}

/** The adapter as one pass applies it: its modules and the scale alpha/r × strength, or none at all. */
interface Pass {
  lora: ReadonlyMap<string, { A: tf.Tensor; B: tf.Tensor }> | null;
  scale: number;
  dropout: LoraDropout | null;
}

function passOf(o: ForwardOptions): Pass {
  const scale = o.adapter ? o.adapter.scale * (o.loraScale ?? 1) : 0;
  return { lora: o.adapter && scale !== 0 ? o.adapter.modules : null, scale, dropout: o.dropout ?? null };
}

function hashSeed(seed: number, text: string): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class LlamaModel {
  private readonly rope: Record<LayerType, RotaryTables>;
  /** Bytes of the rotary tables, which grow (doubling) with the longest position seen. */
  get ropeBytes(): number {
    const { full, sliding } = this.rope;
    return full.bytes + (sliding === full ? 0 : sliding.bytes);
  }
  /** The embedding and the LM head (the same matrix when tied), possibly split into row blocks for the GPU. */
  readonly embed: VocabMatrix;
  private readonly lmHead: VocabMatrix;

  /** `vocab`: vocabulary matrices the loader already split into blocks, by checkpoint key; any others are
   * taken out of `weights`. */
  /** `packed`: linear weights kept packed (16 bits, int8, int4; quant/packed-matrix.ts), by checkpoint key, in
   * the checkpoint's [out, in] layout; each is unpacked to float32 only inside its product. */
  constructor(
    readonly config: ModelConfig,
    readonly weights: Weights,
    vocab: ReadonlyMap<string, VocabMatrix> = new Map(),
    private readonly packed: ReadonlyMap<string, PackedMatrix> = new Map(),
  ) {
    const take = (name: string, transposed: boolean) => {
      const split = vocab.get(name);
      if (split) return split;
      const t = weights.get(name) as tf.Tensor2D | undefined;
      if (!t) throw new Error(`weight ${name} is not loaded`);
      weights.delete(name);
      return new VocabMatrix(name, [t], transposed);
    };
    this.embed = take('model.embed_tokens.weight', config.tieWordEmbeddings);
    this.lmHead = config.tieWordEmbeddings ? this.embed : take('lm_head.weight', true);
    const full = new RotaryTables(config.headDim, config.rope.full);
    const sameRope = JSON.stringify(config.rope.sliding) === JSON.stringify(config.rope.full);
    this.rope = { full, sliding: sameRope ? full : new RotaryTables(config.headDim, config.rope.sliding) };
  }

  /** ids [B, T] → final normalized hidden states [B, T, C]. With a cache, positions continue from it. */
  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    const { cache } = options;
    const pass = passOf(options);
    const [B, T] = ids.shape;
    const offset = cache?.length ?? 0;
    const rows = this.embed.rows(ids.reshape([B * T]) as tf.Tensor1D); // [B·T, C]
    let x = rows.reshape([B, T, this.config.hiddenSize]) as tf.Tensor3D; // [B, T, C]
    if (this.config.embedScale !== 1) x = tf.mul(x, this.config.embedScale); // Gemma: × √C
    for (let i = 0; i < this.config.numLayers; i++) {
      const input = x;
      const layer = () => (options.checkpointing && !cache ? this.checkpointedBlock(input, i, pass) : this.block(input, i, pass, offset, cache));
      // Without a gradient being recorded (decoding, evaluation) nothing needs a layer's intermediates once it is done:
      // each is freed as its layer ends, so a long prompt holds one layer's attention scores at a time, not all of them.
      x = recording() ? layer() : tf.tidy(layer);
    }
    if (cache) cache.length = offset + T;
    return this.rmsNorm(x, 'model.norm.weight');
  }

  /** The LM head, x ↦ x·Wᵀ: lm_head.weight, or the tied embedding matrix. */
  head(): VocabMatrix {
    return this.lmHead;
  }

  /** A weight's values as the checkpoint stores them ([out, in] for a linear module), by its checkpoint key,
   * for export: the in-memory layout (transposed, in blocks) never leaves this class. `merge` may add to a weight
   * on the device first. A vocabulary matrix is read one block at a time, never as one device buffer. */
  async checkpointValues(name: string, merge?: (w: tf.Tensor) => tf.Tensor): Promise<Float32Array> {
    const vocab = name === this.embed.name ? this.embed : name === this.lmHead.name ? this.lmHead : null;
    if (vocab && !merge) {
      const C = this.config.hiddenSize;
      const out = new Float32Array(this.config.vocabSize * C);
      for (let k = 0; k < vocab.blockCount; k++) {
        const rows = tf.tidy(() => tf.clone(vocab.rowsOf(k))); // [Vb, C]
        out.set((await rows.data()) as Float32Array, vocab.offsets[k] * C);
        rows.dispose();
      }
      return out;
    }
    const packed = this.packed.get(name);
    if (!this.weights.has(name) && !packed) throw new Error(`weight ${name} is not loaded${vocab ? ' as one tensor' : ''}`);
    const t = tf.tidy(() => {
      const hf = packed ? packed.dense() : isTransposed(name, this.config.tieWordEmbeddings) ? tf.transpose(this.w(name)) : tf.clone(this.w(name));
      return merge ? merge(hf) : hf;
    });
    const values = (await t.data()) as Float32Array;
    t.dispose();
    return values;
  }

  /** The packed formats in use (none: every weight is float32). */
  get packedFormats(): PackFormat[] {
    const formats = new Set([...this.packed.values(), ...this.embed.packed, ...this.lmHead.packed].map((p) => p.format));
    return [...formats];
  }

  /** Bytes of every weight as held, the vocabulary matrices and packed ones included. */
  get weightBytes(): number {
    let bytes = this.embed.bytes + (this.lmHead === this.embed ? 0 : this.lmHead.bytes);
    for (const t of this.weights.values()) bytes += t.size * 4;
    for (const p of this.packed.values()) bytes += p.bytes;
    return bytes;
  }

  /** hidden [..., C] → logits [..., V]. */
  logits(hidden: tf.Tensor): tf.Tensor {
    const flat = hidden.reshape([-1, this.config.hiddenSize]) as tf.Tensor2D;
    const out = softcap(this.lmHead.project(flat), this.config.finalSoftcap); // [N, V]
    return out.reshape([...hidden.shape.slice(0, -1), this.config.vocabSize]);
  }

  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
    this.weights.clear();
    for (const p of this.packed.values()) p.dispose();
    this.embed.dispose();
    if (this.lmHead !== this.embed) this.lmHead.dispose();
    this.rope.full.dispose();
    this.rope.sliding.dispose();
  }

  // One decoder layer: pre-norm attention and pre-norm MLP, each added back to the residual stream.
  private block(x: tf.Tensor3D, i: number, pass: Pass, offset: number, cache?: KVCache): tf.Tensor3D {
    return this.halves(x, i, pass, offset, cache)[1];
  }

  // The layer's midpoint h = x + attention(x) [B, T, C] and its output h + mlp(h) [B, T, C].
  private halves(x: tf.Tensor3D, i: number, pass: Pass, offset: number, cache?: KVCache): [tf.Tensor3D, tf.Tensor3D] {
    const h = this.branch(this.attentionMix(x, i, pass, offset, cache), this.attnOut(i), this.postAttnNorm(i), pass, x);
    return [h, this.branch(this.gatedMlp(h, i, pass), this.mlpOut(i), this.postMlpNorm(i), pass, h)];
  }

  // A half's branch from the input of its output projection: linear(u), then (Gemma) its post-norm; with
  // `residual`, added to it (inside the product where the row kernel runs).
  private branch(u: tf.Tensor3D, module: string, postNorm: string | null, pass: Pass, residual?: tf.Tensor3D): tf.Tensor3D {
    if (!postNorm) return this.linear(u, module, pass, residual);
    const y = this.rmsNorm(this.linear(u, module, pass), postNorm);
    return residual ? (tf.add(residual, y) as tf.Tensor3D) : y;
  }

  private attnOut = (i: number) => `model.layers.${i}.self_attn.o_proj`;
  private mlpOut = (i: number) => `model.layers.${i}.mlp.down_proj`;
  // Llama's post_attention_layernorm is the MLP's pre-norm; Gemma's normalizes the attention branch itself.
  private preMlpNorm = (i: number) => `model.layers.${i}.${this.config.gemmaNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`;
  private postAttnNorm = (i: number) => (this.config.gemmaNorms ? `model.layers.${i}.post_attention_layernorm.weight` : null);
  private postMlpNorm = (i: number) => (this.config.gemmaNorms ? `model.layers.${i}.post_feedforward_layernorm.weight` : null);

  // The block as one op that saves only its input x and its midpoint h = x + attention: activation memory
  // O(layers · B·T·C) instead of O(layers · everything inside a block). Backward recomputes each half up
  // to the input of its output projection (o_proj, down_proj) and no further: those outputs are not
  // needed, only the products dy·Wᵀ. It returns gradients for x and for this layer's LoRA weights
  // (passed in as the op's other inputs).
  private checkpointedBlock(x: tf.Tensor3D, i: number, pass: Pass): tf.Tensor3D {
    const prefix = `model.layers.${i}.`;
    const lora = [...(pass.lora ?? [])].filter(([path]) => path.startsWith(prefix));
    const loraVars = lora.flatMap(([, p]) => [p.A, p.B]);
    const varsOf = (group: string) => lora.filter(([path]) => path.startsWith(prefix + group)).flatMap(([, p]) => [p.A, p.B]);
    const attnVars = varsOf('self_attn.');
    const mlpVars = varsOf('mlp.');
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const input = args[0] as tf.Tensor3D;
      const [h, out] = tf.tidy(() => this.halves(input, i, pass, 0));
      (args[args.length - 1] as tf.GradSaveFunc)([input, h]);
      return {
        value: out,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          withOwnTape(() =>
            tf.tidy(() => {
              const [xs, hs] = saved as tf.Tensor3D[];
              const [dh, ...mlpGrads] = this.halfBackward(hs, dy as tf.Tensor3D, (t) => this.gatedMlp(t, i, pass), this.mlpOut(i), this.postMlpNorm(i), mlpVars, pass);
              const [dx, ...attnGrads] = this.halfBackward(xs, dh, (t) => this.attentionMix(t, i, pass, 0), this.attnOut(i), this.postAttnNorm(i), attnVars, pass);
              const byVar = new Map<tf.Tensor, tf.Tensor>([...attnVars.map((v, k) => [v, attnGrads[k]] as const), ...mlpVars.map((v, k) => [v, mlpGrads[k]] as const)]);
              return [dx, ...loraVars.map((v) => byVar.get(v)!)];
            }),
          ),
      };
    });
    return op(x, ...loraVars) as tf.Tensor3D;
  }

  // Vector-Jacobian product of z ↦ z + branch(inner(z)) with upstream g, for z and `vars` (the half's LoRA
  // weights). With u = inner(z) and linear(u) = u·W + adapter(u), the gradients are those of
  // Σ(u · g·Wᵀ) + Σ(adapter(u) · g), plus g itself for z (the residual): u·W is never computed. A branch that
  // ends in a norm (Gemma) needs linear(u) itself, so there the product is recomputed and differentiated.
  private halfBackward(z: tf.Tensor3D, g: tf.Tensor3D, inner: (z: tf.Tensor3D) => tf.Tensor3D, module: string, postNorm: string | null, vars: tf.Tensor[], pass: Pass): [tf.Tensor3D, ...tf.Tensor[]] {
    if (postNorm) {
      const grads = tf.grads((zIn: tf.Tensor) => tf.sum(tf.mul(this.branch(inner(zIn as tf.Tensor3D), module, postNorm, pass), g)))([z, ...vars]);
      return [tf.add(g, grads[0]) as tf.Tensor3D, ...grads.slice(1)];
    }
    const [B, T, C] = g.shape;
    const gu = tf.tidy(() => this.frozenBack(g.reshape([B * T, C]) as tf.Tensor2D, module + '.weight').reshape([B, T, -1])); // [B, T, in]
    const grads = tf.grads((zIn: tf.Tensor) => {
      const u = inner(zIn as tf.Tensor3D); // [B, T, in]
      const frozen = tf.sum(tf.mul(u, gu));
      const extra = this.adapterTerm(u.reshape([B * T, -1]) as tf.Tensor2D, module, pass); // [B·T, C] or null
      return extra ? tf.add(frozen, tf.sum(tf.mul(extra, g.reshape([B * T, C])))) : frozen;
    })([z, ...vars]);
    return [tf.add(g, grads[0]) as tf.Tensor3D, ...grads.slice(1)];
  }

  // x * rsqrt(mean(x²) + eps) * weight over the last axis; Gemma scales by (1 + weight). One kernel on WebGPU.
  private rmsNorm<T extends tf.Tensor>(x: T, weight: string): T {
    return rmsNorm(x, this.w(weight), this.config.rmsNormEps, this.config.gemmaNorms ? 1 : 0);
  }

  // Grouped-query causal self-attention with rotary position embeddings, up to (not including) o_proj:
  // the heads' outputs, merged [B, T, H·D]. Qwen3 and Gemma normalize each head of q and k first; a sliding
  // layer sees only the last `slidingWindow` positions and has its own rotation. The heads stay in the
  // projections' layout [B, T, n, D] (a reshape, no copy), which is also the KV cache's.
  private attentionMix(x: tf.Tensor3D, i: number, pass: Pass, offset: number, cache?: KVCache): tf.Tensor3D {
    const { numHeads: H, numKvHeads: KVH, headDim: D } = this.config;
    const [B, T] = x.shape;
    const p = `model.layers.${i}.self_attn.`;
    const type = this.config.layerTypes[i];
    const rope = this.rope[type];
    const xn = this.normed(x, `model.layers.${i}.input_layernorm.weight`);
    const heads = (t: tf.Tensor, n: number) => t.reshape([B, T, n, D]) as tf.Tensor4D; // [B, T, n, D]
    const qkNorm = (t: tf.Tensor4D, name: string) => (this.config.qkNorm ? this.rmsNorm(t, p + name) : t);
    const q = rope.apply(qkNorm(heads(this.linear(xn, p + 'q_proj', pass), H), 'q_norm.weight'), offset); // [B, T, H, D]
    let k = rope.apply(qkNorm(heads(this.linear(xn, p + 'k_proj', pass), KVH), 'k_norm.weight'), offset); // [B, T, KVH, D]
    let v = heads(this.linear(xn, p + 'v_proj', pass), KVH); // [B, T, KVH, D]
    if (cache) [k, v] = cache.append(i, k, v); // [B, rows, KVH, D], the first S = offset + T filled
    const window = type === 'sliding' && this.config.slidingWindow !== null ? this.config.slidingWindow : 0;
    const attrs = { scale: this.config.attnScale, softcap: this.config.attnSoftcap ?? 0, window, keys: offset + T };
    return attention(q, k, v, attrs); // one kernel on WebGPU, and on WASM for a few rows
  }

  // The gated MLP on the normed h, up to (not including) down_proj: act(gate(hn)) · up(hn), [B, T, I];
  // act is SiLU (SwiGLU) or, for Gemma, GELU with the tanh approximation.
  private gatedMlp(h: tf.Tensor3D, i: number, pass: Pass): tf.Tensor3D {
    const p = `model.layers.${i}.`;
    const hn = this.normed(h, this.preMlpNorm(i));
    const [B, T, C] = h.shape;
    const [gName, uName] = [p + 'mlp.gate_proj', p + 'mlp.up_proj'];
    const [lora, lora2] = [this.rowAdapter(gName, pass), this.rowAdapter(uName, pass)];
    // One kernel for the pair, unless its weights are packed and adapted: that binds more buffers than a GPU
    // guarantees (8), so the gate then takes the row kernel on its own, and up another with the gate as an input.
    if (this.rowKernel(B * T, gName, pass) && this.rowKernel(B * T, uName, pass)) {
      const [x2, norm, act] = [h.reshape([B * T, C]) as tf.Tensor2D, this.normOf(hn.weight), this.config.activation];
      const split = this.packed.has(gName + '.weight') && (lora || lora2);
      const y = split
        ? rowLinear(x2, this.rowWeight(uName), { norm, lora: lora2, gate: { value: rowLinear(x2, this.rowWeight(gName), { norm, lora }), act } })
        : rowLinear(x2, this.rowWeight(gName), { norm, lora, gated: { w2: this.rowWeight(uName), act, lora: lora2 } });
      return y.reshape([B, T, -1]) as tf.Tensor3D;
    }
    const gate = this.linear(hn, gName, pass); // [B, T, I]
    const up = this.linear(hn, uName, pass); // [B, T, I]
    return gatedAct(gate, up, this.config.activation); // one kernel on WebGPU
  }

  // x · W (+ b) (+ scale · (dropout(x) · Aᵀ) · Bᵀ) (+ residual). W is kept as [in, out]; A [r, in] and B [out, r]
  // as PEFT. A normed input is normed here, once for all its products, unless the row kernel folds the norm in.
  private linear(input: tf.Tensor3D | Normed, module: string, pass: Pass, residual?: tf.Tensor3D): tf.Tensor3D {
    const raw = input instanceof Normed ? input.x : input;
    const [B, T, inF] = raw.shape;
    const b = this.weights.get(module + '.bias');
    if (this.rowKernel(B * T, module, pass)) {
      const norm = input instanceof Normed ? this.normOf(input.weight) : undefined;
      const r = residual?.reshape([B * T, -1]);
      return rowLinear(raw.reshape([B * T, inF]) as tf.Tensor2D, this.rowWeight(module), { norm, bias: b, residual: r, lora: this.rowAdapter(module, pass) }).reshape([B, T, -1]) as tf.Tensor3D;
    }
    const x = input instanceof Normed ? input.value : input;
    const x2 = x.reshape([B * T, inF]) as tf.Tensor2D;
    let y = this.frozenProduct(x2, module + '.weight'); // [B·T, out]
    if (b) y = tf.add(y, b);
    const extra = this.adapterTerm(x2 as tf.Tensor2D, module, pass);
    if (extra) y = tf.add(y, extra);
    const out = y.reshape([B, T, y.shape[1] as number]) as tf.Tensor3D;
    return residual ? (tf.add(residual, out) as tf.Tensor3D) : out;
  }

  // A linear module's frozen weight as the row kernel reads it: packed [out, in], or float32 [in, out].
  private rowWeight(module: string): RowWeight {
    return this.packed.get(module + '.weight') ?? (this.w(module + '.weight') as tf.Tensor2D);
  }

  // The adapter on `module` in this pass, as the row kernel takes it.
  private rowAdapter(module: string, pass: Pass): RowAdapter | undefined {
    const adapter = pass.lora?.get(module);
    return adapter ? { A: adapter.A, B: adapter.B, scale: pass.scale } : undefined;
  }

  // Whether a product of `rows` rows through `module` runs as one row kernel (WebGPU, decoding): its weight held
  // in float32 or packed, and its adapter, if any, of rank ≤ 128 and without dropout (dropout keeps the unfused path).
  private rowKernel(rows: number, module: string, pass: Pass): boolean {
    if (rows > ROW_LINEAR_MAX_ROWS || !hasRowLinear()) return false;
    if (!this.weights.has(module + '.weight') && !this.packed.has(module + '.weight')) return false;
    const adapter = pass.lora?.get(module);
    return !adapter || (adapter.A.shape[0] <= ROW_LINEAR_MAX_RANK && !(pass.dropout && pass.dropout.rate > 0));
  }

  // x and the RMSNorm by `weight` it goes through before its products; the norm is computed on first use.
  private normed(x: tf.Tensor3D, weight: string): Normed {
    return new Normed(x, weight, () => this.rmsNorm(x, weight));
  }

  private normOf(weight: string) {
    return { w: this.w(weight), eps: this.config.rmsNormEps, offset: this.config.gemmaNorms ? 1 : 0 };
  }

  // x · W for a frozen weight [in, out]. A packed one is unpacked inside the product and freed at once, in the
  // forward pass and again in the backward one (dx = dy · Wᵀ), so at most one unpacked matrix exists at a time
  // (kept on the tape, every layer's would be alive together). No gradient for W: it is frozen.
  private frozenProduct(x2: tf.Tensor2D, name: string): tf.Tensor2D {
    const packed = this.packed.get(name);
    return packed ? packed.forward(x2) : (matmul(x2, this.w(name)) as tf.Tensor2D);
  }

  // dy · Wᵀ [N, in] for a frozen weight [in, out] and dy [N, out].
  private frozenBack(dy: tf.Tensor2D, name: string): tf.Tensor2D {
    const packed = this.packed.get(name);
    return packed ? packed.backward(dy) : (matmul(dy, this.w(name), false, true) as tf.Tensor2D);
  }

  // The adapter's term of a linear module, scale · (dropout(x) · Aᵀ) · Bᵀ [N, out]; null without one.
  private adapterTerm(x2: tf.Tensor2D, module: string, pass: Pass): tf.Tensor | null {
    const lora = pass.lora?.get(module);
    if (!lora) return null;
    const { dropout } = pass;
    const xd = dropout && dropout.rate > 0 ? tf.dropout(x2, dropout.rate, undefined, hashSeed(dropout.seed, module)) : x2;
    const low = matmul(matmul(xd, lora.A, false, true), lora.B, false, true); // [N, r] → [N, out]
    return tf.mul(low, pass.scale);
  }

  // A float32 weight by checkpoint key (norms, biases, unpacked linear weights).
  private w(name: string): tf.Tensor {
    const t = this.weights.get(name);
    if (!t) throw new Error(`weight ${name} is not loaded`);
    return t;
  }
}

/** cos/sin tables for rotary embeddings (the rotate-half form of transformers' Llama), grown on demand. */
class RotaryTables {
  private cos: tf.Tensor2D | null = null; // [L, D]
  private sin: tf.Tensor2D | null = null;
  private rot: tf.Tensor2D | null = null; // [D, D]: x·rot = rotate_half(x) = [−x₂, x₁]
  private size = 0;

  private readonly invFreq: Float64Array; // [D/2]

  constructor(
    private readonly dim: number,
    spec: RopeSpec,
  ) {
    this.invFreq = ropeInverseFrequencies(spec, dim);
  }

  /** Bytes held: the tables double as longer positions are reached (plus the fixed D×D rotation). */
  get bytes(): number {
    return 2 * this.size * this.dim * 4 + (this.rot ? this.dim * this.dim * 4 : 0);
  }

  /** x [B, T, n, D] at positions offset..offset+T-1 → rotated x. */
  apply(x: tf.Tensor4D, offset: number): tf.Tensor4D {
    const T = x.shape[1];
    const D = this.dim;
    this.ensure(offset + T);
    if (rotaryRuns(x)) return rotaryKernel(x, this.cos!, this.sin!, offset); // one pass on WebGPU (and WASM, for few values)
    const cos = tf.slice(this.cos!, [offset, 0], [T, D]).reshape([T, 1, D]); // broadcast over B and heads
    const sin = tf.slice(this.sin!, [offset, 0], [T, D]).reshape([T, 1, D]);
    // rotate_half as one product with a signed permutation: a fast path on every backend, where slicing
    // the halves apart and joining them again took three copies each way.
    const rotated = matmul(x.reshape([-1, D]), this.rot!).reshape(x.shape); // [B, n, T, D]
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  }

  private ensure(n: number): void {
    const D = this.dim;
    const half = D / 2;
    if (!this.rot) {
      const r = new Float32Array(D * D);
      for (let j = 0; j < half; j++) {
        r[(j + half) * D + j] = -1; // out[j] = −x[j + half]
        r[j * D + j + half] = 1; // out[j + half] = x[j]
      }
      this.rot = tf.keep(tf.tensor2d(r, [D, D]));
    }
    if (n <= this.size) return;
    const size = Math.max(n, 2 * this.size, 256);
    const c = new Float32Array(size * D);
    const s = new Float32Array(size * D);
    for (let j = 0; j < half; j++) {
      const invFreq = this.invFreq[j];
      for (let pos = 0; pos < size; pos++) {
        const a = pos * invFreq;
        c[pos * D + j] = c[pos * D + j + half] = Math.cos(a);
        s[pos * D + j] = s[pos * D + j + half] = Math.sin(a);
      }
    }
    this.cos?.dispose();
    this.sin?.dispose();
    this.cos = tf.keep(tf.tensor2d(c, [size, D]));
    this.sin = tf.keep(tf.tensor2d(s, [size, D]));
    this.size = size;
  }

  dispose(): void {
    for (const t of [this.cos, this.sin, this.rot]) t?.dispose();
    this.cos = this.sin = this.rot = null;
    this.size = 0;
  }
}
