// Independent reference for Llama/Qwen2/Qwen3/Gemma 3 causal LMs: float64, plain loops, its own safetensors
// and F16/BF16 decoding, its own reading of config.json (rope scaling, layer types), nothing shared with the
// engine. Written from transformers' modeling files' semantics. Slow on purpose: clarity over speed.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { half } from '../readers/half';

type Cfg = Record<string, any>;

export interface RefModel {
  cfg: Cfg;
  w: Map<string, { shape: number[]; data: Float64Array }>;
  /** LoRA per module path: y += scale · B (A x). */
  lora?: Map<string, { A: Float64Array; B: Float64Array; r: number; scale: number }>;
}

function readSafetensors(path: string, into: RefModel['w']): void {
  readSafetensorsBuffer(readFileSync(path), into);
}

export function readSafetensorsBuffer(buf: Buffer, into: RefModel['w']): void {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  for (const [name, info] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    const count = info.shape.reduce((a: number, c: number) => a * c, 1);
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      if (info.dtype === 'F32') data[i] = buf.readFloatLE(base + b + 4 * i);
      else if (info.dtype === 'F16') data[i] = half(buf.readUInt16LE(base + b + 2 * i));
      else if (info.dtype === 'BF16') {
        const tmp = Buffer.alloc(4);
        tmp.writeUInt16LE(buf.readUInt16LE(base + b + 2 * i), 2);
        data[i] = tmp.readFloatLE(0);
      } else throw new Error(`reference: dtype ${info.dtype}`);
    }
    if (e - b !== count * (info.dtype === 'F32' ? 4 : 2)) throw new Error('reference: bad offsets');
    into.set(name, { shape: info.shape, data });
  }
}

export function loadRef(dir: string): RefModel {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const w: RefModel['w'] = new Map();
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const files = new Set<string>(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map));
    for (const f of files) readSafetensors(join(dir, f), w);
  } else readSafetensors(join(dir, 'model.safetensors'), w);
  return { cfg, w };
}

/** y = W x (+ b), W stored [out, in]. */
function matvec(m: RefModel, name: string, x: Float64Array, bias?: string): Float64Array {
  const W = m.w.get(name)!;
  const [out, inF] = W.shape;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) s += W.data[o * inF + i] * x[i];
    y[o] = s;
  }
  const b = bias ? m.w.get(bias) : undefined;
  if (b) for (let o = 0; o < out; o++) y[o] += b.data[o];
  const lora = m.lora?.get(name.replace(/\.weight$/, ''));
  if (lora) {
    const ax = new Float64Array(lora.r);
    for (let k = 0; k < lora.r; k++) for (let i = 0; i < inF; i++) ax[k] += lora.A[k * inF + i] * x[i];
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let k = 0; k < lora.r; k++) s += lora.B[o * lora.r + k] * ax[k];
      y[o] += lora.scale * s;
    }
  }
  return y;
}

/** Apply a PEFT folder (adapter_config.json + adapter_model.safetensors), read independently. */
export function withPeft(m: RefModel, dir: string): RefModel {
  const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  const tensors: RefModel['w'] = new Map();
  readSafetensorsBuffer(readFileSync(join(dir, 'adapter_model.safetensors')), tensors);
  const scale = cfg.use_rslora ? cfg.lora_alpha / Math.sqrt(cfg.r) : cfg.lora_alpha / cfg.r;
  const lora: NonNullable<RefModel['lora']> = new Map();
  for (const [name, t] of tensors) {
    const match = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
    if (!match) continue;
    const B = tensors.get(name.replace('lora_A', 'lora_B'))!;
    lora.set(match[1], { A: t.data, B: B.data, r: cfg.r, scale });
  }
  return { ...m, lora };
}

/** Σ weightᵢ · CE(logits at i, targetᵢ) for next-token targets of `ids`. */
export function refLossSum(m: RefModel, ids: number[], weights: number[]): number {
  const logits = refLogits(m, ids.slice(0, -1));
  let total = 0;
  logits.forEach((row, i) => {
    if (!weights[i]) return;
    const mx = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    total += weights[i] * (mx + Math.log(z) - row[ids[i + 1]]);
  });
  return total;
}

function rmsnorm(x: Float64Array, weight: Float64Array, eps: number, plusOne = false): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * (plusOne ? 1 + weight[i] : weight[i]));
}

/** What the reference reads from config.json, its own way. */
interface RefArch {
  gemma: boolean;
  qkNorm: boolean;
  layerSliding: boolean[];
  window: number;
  invFreq: { full: number[]; sliding: number[] };
  scale: number;
  attnCap: number | null;
  finalCap: number | null;
}

/** Inverse frequencies of one rope dict (rope_type default | linear | llama3), from transformers' formulas. */
function invFreqs(D: number, theta: number, scaling: Cfg | null | undefined): number[] {
  const base = Array.from({ length: D / 2 }, (_, j) => 1 / theta ** ((2 * j) / D));
  const type = scaling ? scaling.rope_type ?? scaling.type ?? 'default' : 'default';
  if (type === 'default') return base;
  if (type === 'linear') return base.map((f) => f / scaling!.factor);
  if (type !== 'llama3') throw new Error(`reference: rope type ${type}`);
  const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: orig } = scaling!;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < orig / hi) return f;
    if (wavelen > orig / lo) return f / factor;
    const smooth = (orig / wavelen - lo) / (hi - lo);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

function arch(c: Cfg): RefArch {
  const gemma = c.architectures[0] === 'Gemma3ForCausalLM';
  const H = c.num_attention_heads;
  const D = c.head_dim ?? c.hidden_size / H;
  const L = c.num_hidden_layers;
  let layerSliding: boolean[] = new Array(L).fill(false);
  if (Array.isArray(c.layer_types)) layerSliding = c.layer_types.map((t: string) => t === 'sliding_attention');
  else if (gemma) {
    const pattern = c.sliding_window_pattern ?? c._sliding_window_pattern ?? 6;
    layerSliding = layerSliding.map((_, i) => (i + 1) % pattern !== 0);
  }
  let full: number[];
  let sliding: number[];
  const rp = c.rope_parameters;
  if (rp && (rp.full_attention || rp.sliding_attention)) {
    full = invFreqs(D, rp.full_attention.rope_theta, rp.full_attention);
    sliding = invFreqs(D, rp.sliding_attention.rope_theta, rp.sliding_attention);
  } else if (rp) {
    full = sliding = invFreqs(D, rp.rope_theta, rp);
  } else {
    full = invFreqs(D, c.rope_theta ?? 10000, c.rope_scaling);
    sliding = gemma ? invFreqs(D, c.rope_local_base_freq ?? 10000, null) : full;
  }
  return {
    gemma,
    qkNorm: gemma || c.architectures[0] === 'Qwen3ForCausalLM',
    layerSliding,
    window: c.sliding_window ?? Infinity,
    invFreq: { full, sliding },
    scale: 1 / Math.sqrt(gemma ? c.query_pre_attn_scalar ?? D : D),
    attnCap: gemma ? c.attn_logit_softcapping ?? null : null,
    finalCap: gemma ? c.final_logit_softcapping ?? null : null,
  };
}

/** Rotate one head vector (length D) for position pos, rotate-half convention. */
function rope(v: Float64Array, pos: number, invFreq: number[]): Float64Array {
  const D = v.length;
  const half = D / 2;
  const out = new Float64Array(D);
  for (let j = 0; j < half; j++) {
    const a = pos * invFreq[j];
    const c = Math.cos(a);
    const s = Math.sin(a);
    out[j] = v[j] * c - v[j + half] * s;
    out[j + half] = v[j + half] * c + v[j] * s;
  }
  return out;
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));
const cap = (x: number, c: number | null) => (c === null ? x : c * Math.tanh(x / c));

/** Logits [T][V] for every position of ids. */
export function refLogits(m: RefModel, ids: number[]): Float64Array[] {
  const c = m.cfg;
  const a = arch(c);
  const H = c.num_attention_heads;
  const KVH = c.num_key_value_heads ?? H;
  const D = c.head_dim ?? c.hidden_size / H;
  const eps = c.rms_norm_eps;
  const T = ids.length;
  const C = c.hidden_size;
  const tied = c.tie_word_embeddings ?? a.gemma;
  const norm = (x: Float64Array, name: string) => rmsnorm(x, m.w.get(name)!.data, eps, a.gemma);
  const emb = m.w.get('model.embed_tokens.weight')!;
  let xs = ids.map((id) => emb.data.slice(id * C, (id + 1) * C).map((v) => (a.gemma ? v * Math.sqrt(C) : v)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const invFreq = a.layerSliding[l] ? a.invFreq.sliding : a.invFreq.full;
    const window = a.layerSliding[l] ? a.window : Infinity;
    const bias = (n: string) => (m.w.has(p + n) ? p + n : undefined);
    const xn = xs.map((x) => norm(x, p + 'input_layernorm.weight'));
    const q = xn.map((x) => matvec(m, p + 'self_attn.q_proj.weight', x, bias('self_attn.q_proj.bias')));
    const k = xn.map((x) => matvec(m, p + 'self_attn.k_proj.weight', x, bias('self_attn.k_proj.bias')));
    const v = xn.map((x) => matvec(m, p + 'self_attn.v_proj.weight', x, bias('self_attn.v_proj.bias')));
    const head = (vec: Float64Array, h: number) => vec.slice(h * D, (h + 1) * D);
    const qk = (vec: Float64Array, h: number, which: 'q' | 'k') => (a.qkNorm ? norm(head(vec, h), `${p}self_attn.${which}_norm.weight`) : head(vec, h));
    const attnOut = xs.map(() => new Float64Array(H * D));
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      const ks = k.map((kt, t) => rope(qk(kt, kvh, 'k'), t, invFreq));
      for (let t = 0; t < T; t++) {
        const qt = rope(qk(q[t], h, 'q'), t, invFreq);
        const seen: number[] = [];
        for (let s = 0; s <= t; s++) if (t - s < window) seen.push(s);
        const scores = seen.map((s) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qt[d] * ks[s][d];
          return cap(dot * a.scale, a.attnCap);
        });
        const mx = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - mx));
        const z = e.reduce((x, y) => x + y, 0);
        seen.forEach((s, j) => {
          const vs = head(v[s], kvh);
          for (let d = 0; d < D; d++) attnOut[t][h * D + d] += (e[j] / z) * vs[d];
        });
      }
    }
    xs = xs.map((x, t) => {
      let o = matvec(m, p + 'self_attn.o_proj.weight', attnOut[t], bias('self_attn.o_proj.bias'));
      if (a.gemma) o = norm(o, p + 'post_attention_layernorm.weight');
      return x.map((val, i) => val + o[i]);
    });
    xs = xs.map((x) => {
      const n = norm(x, p + (a.gemma ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight'));
      const g = matvec(m, p + 'mlp.gate_proj.weight', n);
      const u = matvec(m, p + 'mlp.up_proj.weight', n);
      const act = g.map((gv, i) => (a.gemma ? gelu(gv) : silu(gv)) * u[i]);
      let d = matvec(m, p + 'mlp.down_proj.weight', act);
      if (a.gemma) d = norm(d, p + 'post_feedforward_layernorm.weight');
      return x.map((val, i) => val + d[i]);
    });
  }
  const headName = tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return xs.map((x) => matvec(m, headName, norm(x, 'model.norm.weight')).map((v) => cap(v, a.finalCap)));
}

/** Greedy continuation by recomputing the whole sequence each step (no cache). */
export function refGreedy(m: RefModel, prompt: number[], n: number, eos: number[] = []): number[] {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = refLogits(m, ids);
    const last = logits[logits.length - 1];
    let best = 0;
    for (let j = 1; j < last.length; j++) if (last[j] > last[best]) best = j;
    out.push(best);
    if (eos.includes(best)) break;
    ids.push(best);
  }
  return out;
}
