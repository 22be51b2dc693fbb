// Independent reference for Llama/Qwen2 causal LMs: float64, plain loops, its own safetensors and
// F16/BF16 decoding, nothing shared with the engine. Slow on purpose: clarity over speed.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

type Cfg = Record<string, any>;

export interface RefModel {
  cfg: Cfg;
  w: Map<string, { shape: number[]; data: Float64Array }>;
  /** LoRA per module path: y += scale · B (A x). */
  lora?: Map<string, { A: Float64Array; B: Float64Array; r: number; scale: number }>;
}

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
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

function rmsnorm(x: Float64Array, weight: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * weight[i]);
}

/** Rotate one head vector (length D) for position pos, rotate-half convention. */
function rope(v: Float64Array, pos: number, theta: number): Float64Array {
  const D = v.length;
  const half = D / 2;
  const out = new Float64Array(D);
  for (let j = 0; j < half; j++) {
    const a = pos / Math.pow(theta, (2 * j) / D);
    const c = Math.cos(a);
    const s = Math.sin(a);
    out[j] = v[j] * c - v[j + half] * s;
    out[j + half] = v[j + half] * c + v[j] * s;
  }
  return out;
}

/** Logits [T][V] for every position of ids. */
export function refLogits(m: RefModel, ids: number[]): Float64Array[] {
  const c = m.cfg;
  const H = c.num_attention_heads;
  const KVH = c.num_key_value_heads ?? H;
  const D = c.head_dim ?? c.hidden_size / H;
  const eps = c.rms_norm_eps;
  const theta = c.rope_theta ?? 10000;
  const T = ids.length;
  const C = c.hidden_size;
  const emb = m.w.get('model.embed_tokens.weight')!;
  let xs = ids.map((id) => emb.data.slice(id * C, (id + 1) * C));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const bias = (n: string) => (m.w.has(p + n) ? p + n : undefined);
    const xn = xs.map((x) => rmsnorm(x, m.w.get(p + 'input_layernorm.weight')!.data, eps));
    const q = xn.map((x) => matvec(m, p + 'self_attn.q_proj.weight', x, bias('self_attn.q_proj.bias')));
    const k = xn.map((x) => matvec(m, p + 'self_attn.k_proj.weight', x, bias('self_attn.k_proj.bias')));
    const v = xn.map((x) => matvec(m, p + 'self_attn.v_proj.weight', x, bias('self_attn.v_proj.bias')));
    const head = (vec: Float64Array, h: number) => vec.slice(h * D, (h + 1) * D);
    const attnOut = xs.map(() => new Float64Array(H * D));
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      const ks = k.map((kt, t) => rope(head(kt, kvh), t, theta));
      for (let t = 0; t < T; t++) {
        const qt = rope(head(q[t], h), t, theta);
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qt[d] * ks[s][d];
          scores.push(dot / Math.sqrt(D));
        }
        const mx = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          const vs = head(v[s], kvh);
          for (let d = 0; d < D; d++) attnOut[t][h * D + d] += (e[s] / z) * vs[d];
        }
      }
    }
    xs = xs.map((x, t) => {
      const o = matvec(m, p + 'self_attn.o_proj.weight', attnOut[t], bias('self_attn.o_proj.bias'));
      return x.map((val, i) => val + o[i]);
    });
    xs = xs.map((x) => {
      const n = rmsnorm(x, m.w.get(p + 'post_attention_layernorm.weight')!.data, eps);
      const g = matvec(m, p + 'mlp.gate_proj.weight', n);
      const u = matvec(m, p + 'mlp.up_proj.weight', n);
      const a = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
      const d = matvec(m, p + 'mlp.down_proj.weight', a);
      return x.map((val, i) => val + d[i]);
    });
  }
  const headName = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return xs.map((x) => matvec(m, headName, rmsnorm(x, m.w.get('model.norm.weight')!.data, eps)));
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
