// Export: the merged Hugging Face folder and the GGUF file, read back by independent readers (the reference's
// safetensors reader, tests/readers/gguf-reader.ts) and checked against base + s·B·A computed in float64.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../workers/engine/tf';
import { Engine } from '../workers/engine/engine';
import { DirModelFiles } from '../workers/node/dir-files';
import { GgufUnsupportedError } from '../workers/engine/errors';
import { writeModelGguf } from '../workers/engine/export/gguf-model';
import { ggufPreTokenizer, spmSpacePrefix } from '../workers/engine/export/gguf-vocab';
import { writeMergedFolder } from '../workers/engine/export/merged';
import { llamaFactoryRecipe, llamaFactoryTemplate } from '../workers/engine/export/llama-factory';
import { DEFAULT_LORA, DEFAULT_TRAIN } from '../workers/shared/defaults';
import type { GgufType, RunSettings } from '../workers/shared/types';
import { parse as parseYaml } from 'yaml';
import { Rng } from '../workers/engine/sampling';
import type { DType } from '../workers/engine/safetensors';
import { PendingOutput } from '../workers/node/export-sink';
import { CONFORMANCE, hasConformance, loadEngine, modelDir, setRandomAdapter } from './helpers';
import { loadRef, refGreedy, refLogits, withPeft, type RefModel } from './reference/llama-ref';
import { ggufValues, readGguf } from './readers/gguf-reader';
import { spmEncode } from './readers/spm-tokenizer';

const tmp = mkdtempSync(join(tmpdir(), 'webtune-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The engine with a LoRA adapter on every linear module whose B is random (a fresh one changes nothing). */
async function adapted(name: string): Promise<{ engine: Engine; peftDir: string }> {
  const engine = await loadEngine(name);
  setRandomAdapter(engine);
  const peftDir = join(tmp, `${name}-peft`);
  mkdirSync(peftDir, { recursive: true });
  for (const [file, bytes] of Object.entries(await engine.exportAdapter())) writeFileSync(join(peftDir, file), bytes);
  return { engine, peftDir };
}

async function exportMerged(engine: Engine, dir: string, dtype: DType, shardBytes?: number): Promise<string[]> {
  const out = new PendingOutput(dir);
  const files = await writeMergedFolder(engine.current, engine.adapter, await out.folder(), { dtype, shardBytes });
  await out.commit();
  return files;
}

async function exportGguf(engine: Engine, file: string, type: GgufType) {
  const out = new PendingOutput(file);
  await writeModelGguf(engine.current, engine.adapter, await out.file(), { type });
  await out.commit();
  return readGguf(readFileSync(file));
}

/** W + scale·B·A in float64, from the base weights and the PEFT folder as the reference reads them. */
function mergedRef(base: RefModel, withLora: RefModel, name: string): Float64Array {
  const W = base.w.get(name)!;
  const lora = withLora.lora?.get(name.replace(/\.weight$/, ''));
  const out = Float64Array.from(W.data);
  if (!lora) return out;
  const [rows, cols] = W.shape;
  for (let o = 0; o < rows; o++) {
    for (let i = 0; i < cols; i++) {
      let s = 0;
      for (let k = 0; k < lora.r; k++) s += lora.B[o * lora.r + k] * lora.A[k * cols + i];
      out[o * cols + i] += lora.scale * s;
    }
  }
  return out;
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (scale || 1);
}

const PROMPT = [5, 17, 42, 9];
const flat = (rows: Float64Array[]) => Float64Array.from(rows.flatMap((r) => [...r]));

describe('export merged', () => {
  it.each(['llama-tied-gqa-f32', 'llama-untied-mha-f16', 'qwen2-bias-bf16', 'qwen3-headdim-bf16', 'gemma3-window-bf16'])('%s: every weight is base + s·B·A, and the folder generates what base + adapter does', async (name) => {
    const { engine, peftDir } = await adapted(name);
    const dir = join(tmp, `${name}-merged`);
    const tensors = tf.memory().numTensors;
    const files = await exportMerged(engine, dir, 'F32');
    await exportGguf(engine, join(tmp, `${name}-count.gguf`), 'q8_0').catch(() => null); // Gemma 3 is refused
    expect(tf.memory().numTensors).toBe(tensors); // every tensor an export makes is disposed
    expect(files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']));
    const base = loadRef(modelDir(name));
    const lora = withPeft(base, peftDir);
    const merged = loadRef(dir);
    expect([...merged.w.keys()].sort()).toEqual([...base.w.keys()].filter((k) => !(base.cfg.tie_word_embeddings !== false && k === 'lm_head.weight')).sort());
    let adaptedCount = 0;
    for (const [key, t] of merged.w) {
      expect(t.shape, key).toEqual(base.w.get(key)!.shape);
      expect(maxRelErr(t.data, mergedRef(base, lora, key)), key).toBeLessThan(1e-6);
      if (lora.lora?.has(key.replace(/\.weight$/, ''))) adaptedCount++;
    }
    expect(adaptedCount).toBe(7 * base.cfg.num_hidden_layers);
    expect(merged.cfg.torch_dtype).toBe('float32');
    // The merged model computes what base + adapter computes, and that is not what the base computes.
    const want = refLogits(lora, PROMPT);
    expect(maxRelErr(flat(refLogits(merged, PROMPT)), flat(want))).toBeLessThan(1e-5);
    expect(maxRelErr(flat(refLogits(base, PROMPT)), flat(want))).toBeGreaterThan(1e-2);
    // webtune loads its own export, and without an adapter generates what it did with one.
    const withAdapter = (await engine.generate({ ids: PROMPT }, { maxNewTokens: 5, temperature: 0 })).ids;
    engine.unload();
    const again = new Engine();
    await again.loadFiles(new DirModelFiles(dir), { backend: 'wasm' });
    expect((await again.generate({ ids: PROMPT }, { maxNewTokens: 5, temperature: 0 })).ids).toEqual(withAdapter);
    again.unload();
  });

  it('a vocabulary kept in row blocks (as on WebGPU) is written whole, row for row', async () => {
    for (const name of ['llama-tied-gqa-f32', 'llama-untied-mha-f16']) {
      const engine = new Engine();
      await engine.loadFiles(new DirModelFiles(modelDir(name)), { backend: 'wasm', vocabBlockBytes: 10 * 4 * 64 }); // 10 rows a block
      expect(engine.current.model.embed.blocks.length).toBeGreaterThan(20);
      const dir = join(tmp, `${name}-blocks`);
      await exportMerged(engine, dir, 'F32');
      engine.unload();
      const base = loadRef(modelDir(name));
      const merged = loadRef(dir);
      for (const key of ['model.embed_tokens.weight', 'lm_head.weight'].filter((k) => merged.w.has(k))) expect(maxRelErr(merged.w.get(key)!.data, base.w.get(key)!.data), key).toBe(0);
    }
  });

  it('bf16 in shards: an index names every tensor, the shards hold them all, config says bfloat16', async () => {
    const { engine, peftDir } = await adapted('qwen2-untied-sharded-f16');
    const dir = join(tmp, 'sharded');
    const files = await exportMerged(engine, dir, 'BF16', 40_000);
    engine.unload();
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards.every((f, i) => f === `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`)).toBe(true);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shards));
    const base = loadRef(modelDir('qwen2-untied-sharded-f16'));
    const merged = loadRef(dir);
    expect(Object.keys(index.weight_map).sort()).toEqual([...merged.w.keys()].sort());
    expect(merged.cfg.torch_dtype).toBe('bfloat16');
    const lora = withPeft(base, peftDir);
    for (const [key, t] of merged.w) expect(maxRelErr(t.data, mergedRef(base, lora, key)), key).toBeLessThan(2 ** -8);
  });
});

/** Rotate each head's (x[a], x[b]) pairs by position·f_j: HF pairs j with j + D/2, llama.cpp pairs 2j with 2j + 1. */
function rope(q: Float64Array, D: number, pos: number, inv: number[], interleaved: boolean): Float64Array {
  const out = Float64Array.from(q);
  for (let h = 0; h < q.length / D; h++) {
    for (let j = 0; j < D / 2; j++) {
      const [a, b] = interleaved ? [h * D + 2 * j, h * D + 2 * j + 1] : [h * D + j, h * D + j + D / 2];
      const c = Math.cos(pos * inv[j]);
      const s = Math.sin(pos * inv[j]);
      out[a] = q[a] * c - q[b] * s;
      out[b] = q[a] * s + q[b] * c;
    }
  }
  return out;
}

function matvec(W: ArrayLike<number>, rows: number, x: Float64Array): Float64Array {
  const cols = x.length;
  return Float64Array.from({ length: rows }, (_, o) => {
    let s = 0;
    for (let i = 0; i < cols; i++) s += W[o * cols + i] * x[i];
    return s;
  });
}

/** Per-head attention scores q·k of query position 7 against key position 2. */
function scores(q: Float64Array, k: Float64Array, D: number, heads: number, kvHeads: number, inv: number[], interleaved: boolean): number[] {
  const rq = rope(q, D, 7, inv, interleaved);
  const rk = rope(k, D, 2, inv, interleaved);
  return Array.from({ length: heads }, (_, h) => {
    const kh = Math.floor(h / (heads / kvHeads));
    let s = 0;
    for (let d = 0; d < D; d++) s += rq[h * D + d] * rk[kh * D + d];
    return s;
  });
}

describe('export gguf', () => {
  it.each([
    ['llama-tied-gqa-f32', 'llama'],
    ['llama3-rope-f32', 'llama'],
    ['qwen2-bias-bf16', 'qwen2'],
    ['qwen3-headdim-bf16', 'qwen3'],
  ])('%s: metadata, vocabulary, llama.cpp tensor names and merged values (f32)', async (name, arch) => {
    const { engine, peftDir } = await adapted(name);
    const g = await exportGguf(engine, join(tmp, `${name}.gguf`), 'f32');
    engine.unload();
    const cfg = JSON.parse(readFileSync(join(modelDir(name), 'config.json'), 'utf8'));
    const tok = JSON.parse(readFileSync(join(modelDir(name), 'tokenizer.json'), 'utf8'));
    const tokCfg = JSON.parse(readFileSync(join(modelDir(name), 'tokenizer_config.json'), 'utf8'));
    const md = g.metadata;
    const D = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
    expect(g.version).toBe(3);
    expect(md.get('general.architecture')).toBe(arch);
    expect(md.get(`${arch}.block_count`)).toBe(cfg.num_hidden_layers);
    expect(md.get(`${arch}.embedding_length`)).toBe(cfg.hidden_size);
    expect(md.get(`${arch}.feed_forward_length`)).toBe(cfg.intermediate_size);
    expect(md.get(`${arch}.attention.head_count`)).toBe(cfg.num_attention_heads);
    expect(md.get(`${arch}.attention.head_count_kv`)).toBe(cfg.num_key_value_heads);
    expect(md.get(`${arch}.attention.key_length`)).toBe(D);
    expect(md.get(`${arch}.context_length`)).toBe(cfg.max_position_embeddings);
    expect(md.get(`${arch}.rope.freq_base`)).toBeCloseTo(cfg.rope_theta, 0);
    expect(md.get(`${arch}.attention.layer_norm_rms_epsilon`)).toBeCloseTo(cfg.rms_norm_eps, 9);
    // One token per embedding row, each the tokenizer's own string for that id; special added tokens are control.
    const tokens = md.get('tokenizer.ggml.tokens') as string[];
    expect(tokens).toHaveLength(cfg.vocab_size);
    for (const [t, id] of Object.entries<number>(tok.model.vocab)) expect(tokens[id]).toBe(t);
    const types = md.get('tokenizer.ggml.token_type') as number[];
    for (const a of tok.added_tokens) if (a.id < cfg.vocab_size) expect([tokens[a.id], types[a.id]]).toEqual([a.content, a.special ? 3 : 4]);
    expect((md.get('tokenizer.ggml.merges') as string[]).length).toBe(tok.model.merges.length);
    expect(md.get('tokenizer.ggml.model')).toBe('gpt2');
    expect(md.get('tokenizer.ggml.pre')).toBe('gpt-2'); // the tiny tokenizers split as GPT-2 does: llama.cpp's "gpt-2"
    expect(md.get('tokenizer.ggml.eos_token_id')).toBe(tok.model.vocab[tokCfg.eos_token] ?? tok.added_tokens.find((a: { content: string }) => a.content === tokCfg.eos_token).id);
    const template = existsSync(join(modelDir(name), 'chat_template.jinja')) ? readFileSync(join(modelDir(name), 'chat_template.jinja'), 'utf8') : tokCfg.chat_template;
    expect(md.get('tokenizer.chat_template')).toBe(template);

    const base = loadRef(modelDir(name));
    const lora = withPeft(base, peftDir);
    const tied = cfg.tie_word_embeddings !== false;
    const names = new Map<string, string>([['model.embed_tokens.weight', 'token_embd.weight'], ['model.norm.weight', 'output_norm.weight']]);
    if (!tied) names.set('lm_head.weight', 'output.weight');
    const perLayer: Record<string, string> = { input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down', 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm' };
    for (const key of base.w.keys()) {
      const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(key);
      if (m) names.set(key, `blk.${m[1]}.${perLayer[m[2]]}.${m[3]}`);
    }
    const expectedNames = [...names.values(), ...(cfg.rope_scaling?.rope_type === 'llama3' ? ['rope_freqs.weight'] : [])];
    expect([...g.tensors.keys()].sort()).toEqual(expectedNames.sort());
    for (const [key, gname] of names) {
      const t = ggufValues(g, gname);
      expect(t.shape, gname).toEqual(base.w.get(key)!.shape);
      if (arch === 'llama' && /attn_[qk]\.weight$/.test(gname)) continue; // reordered rows: checked by what they compute, below
      expect(maxRelErr(t.values, mergedRef(base, lora, key)), gname).toBeLessThan(1e-6);
    }
    // q/k rows: with llama.cpp's rope on the file's rows and HF's on the checkpoint's, every attention score agrees.
    const inv = Array.from({ length: D / 2 }, (_, j) => 1 / cfg.rope_theta ** ((2 * j) / D));
    const rng = new Rng(5);
    const x = Float64Array.from({ length: cfg.hidden_size }, () => rng.next() - 0.5);
    for (let layer = 0; layer < cfg.num_hidden_layers; layer++) {
      const hf = (p: string) => matvec(mergedRef(base, lora, `model.layers.${layer}.self_attn.${p}.weight`), (p === 'q_proj' ? cfg.num_attention_heads : cfg.num_key_value_heads) * D, x);
      const gg = (p: string) => matvec(ggufValues(g, `blk.${layer}.${p}.weight`).values, (p === 'attn_q' ? cfg.num_attention_heads : cfg.num_key_value_heads) * D, x);
      const want = scores(hf('q_proj'), hf('k_proj'), D, cfg.num_attention_heads, cfg.num_key_value_heads, inv, false);
      const got = scores(gg('attn_q'), gg('attn_k'), D, cfg.num_attention_heads, cfg.num_key_value_heads, inv, arch === 'llama');
      got.forEach((s, h) => expect(s).toBeCloseTo(want[h], 6)); // float32 weights against float64
    }
    if (cfg.rope_scaling?.rope_type === 'llama3') {
      // llama.cpp divides each frequency by its factor: base / factor must be Llama 3's scaled frequency.
      const f = ggufValues(g, 'rope_freqs.weight').values;
      const s = cfg.rope_scaling;
      inv.forEach((b, j) => {
        const wave = (2 * Math.PI) / b;
        const lo = s.original_max_position_embeddings / s.low_freq_factor;
        const hi = s.original_max_position_embeddings / s.high_freq_factor;
        const smooth = (s.original_max_position_embeddings / wave - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        const scaled = wave < hi ? b : wave > lo ? b / s.factor : (1 - smooth) * (b / s.factor) + smooth * b;
        expect(b / f[j]).toBeCloseTo(scaled, 6);
      });
    }
  });

  it.each([['f16', 1], ['q8_0', 8]] as const)('%s: 2-D weights in the type (values within its rounding), norms and biases stay f32', async (type, ggmlType) => {
    const { engine, peftDir } = await adapted('qwen2-bias-bf16');
    const g = await exportGguf(engine, join(tmp, `q-${type}.gguf`), type);
    engine.unload();
    expect(g.metadata.get('general.file_type')).toBe(type === 'f16' ? 1 : 7);
    const base = loadRef(modelDir('qwen2-bias-bf16'));
    const lora = withPeft(base, peftDir);
    const t = ggufValues(g, 'blk.1.ffn_down.weight');
    expect(t.type).toBe(ggmlType);
    const want = mergedRef(base, lora, 'model.layers.1.mlp.down_proj.weight');
    for (let b = 0; b < want.length / 32; b++) {
      const block = want.subarray(b * 32, b * 32 + 32);
      const amax = Math.max(...block.map(Math.abs));
      // f16: half an ulp (2^-11 relative); q8_0: half a step of amax/127, plus the f16 rounding of the step.
      const bound = type === 'f16' ? amax * 2 ** -11 : (amax / 127) * (0.5 + 127 * 2 ** -11);
      for (let i = 0; i < 32; i++) expect(Math.abs(t.values[b * 32 + i] - block[i])).toBeLessThanOrEqual(bound + 1e-12);
    }
    expect(ggufValues(g, 'blk.0.attn_q.bias').type).toBe(0);
    expect(ggufValues(g, 'output_norm.weight').type).toBe(0);
  });

  it('gemma3-spm-bf16: gemma3 metadata and names, norms as 1 + w, a SentencePiece vocabulary that tokenizes as tokenizer.json does', async () => {
    const name = 'gemma3-spm-bf16';
    const { engine, peftDir } = await adapted(name);
    const g = await exportGguf(engine, join(tmp, `${name}.gguf`), 'f32');
    // Merges, spaces, a double space, newlines (bytes here) and characters the vocabulary lacks (bytes, up to 4 per
    // character). " server," and "are" split differently when merges are taken left to right instead of by score.
    const texts = ['The capital of France is Paris, no server, we are here.', 'Fine-tuning  keeps your data on your machine:\nno upload', 'héllo wörld ½ 🫩', ' leading and trailing '];
    const want = texts.map((t) => engine.current.tokenizer.encode(t, false));
    engine.unload();
    const cfg = JSON.parse(readFileSync(join(modelDir(name), 'config.json'), 'utf8'));
    const tok = JSON.parse(readFileSync(join(modelDir(name), 'tokenizer.json'), 'utf8'));
    const md = g.metadata;
    expect(md.get('general.architecture')).toBe('gemma3');
    expect(md.get('gemma3.block_count')).toBe(6);
    expect(md.get('gemma3.attention.sliding_window')).toBe(cfg.sliding_window);
    expect(md.get('gemma3.attention.key_length')).toBe(cfg.head_dim);
    expect(md.get('gemma3.attention.head_count_kv')).toBe(cfg.num_key_value_heads);
    expect(md.get('gemma3.rope.freq_base')).toBeCloseTo(cfg.rope_theta, 0); // the full layers'; llama.cpp fixes the sliding ones' at 10000
    expect(md.has('gemma3.final_logit_softcapping')).toBe(false);

    expect(md.get('tokenizer.ggml.model')).toBe('llama');
    expect(md.has('tokenizer.ggml.merges') || md.has('tokenizer.ggml.pre')).toBe(false);
    expect(md.get('tokenizer.ggml.add_space_prefix')).toBe(false); // Gemma replaces spaces, prepends none
    const tokens = md.get('tokenizer.ggml.tokens') as string[];
    const types = md.get('tokenizer.ggml.token_type') as number[];
    const scores = md.get('tokenizer.ggml.scores') as number[];
    expect([tokens.length, types.length, scores.length]).toEqual([cfg.vocab_size, cfg.vocab_size, cfg.vocab_size]);
    for (const [t, id] of Object.entries<number>(tok.model.vocab)) expect(tokens[id]).toBe(t);
    expect(types.slice(0, 6)).toEqual([3, 3, 3, 2, 3, 3]); // <pad> <eos> <bos> control, <unk> unknown, turn markers control
    expect(types[tok.model.vocab['<0x41>']]).toBe(6);
    expect(types[tok.model.vocab['▁the']]).toBe(1);
    const got = texts.map((t) => spmEncode(t, tokens, scores, false));
    expect(got).toEqual(want);
    expect(want[0].length).toBeLessThan(texts[0].length / 2); // merges were used
    expect(want[2].filter((i) => types[i] === 6).length).toBeGreaterThanOrEqual(9); // é ö ½ 🫩 as bytes

    const base = loadRef(modelDir(name));
    const lora = withPeft(base, peftDir);
    const perLayer: Record<string, string> = {
      input_layernorm: 'attn_norm', post_attention_layernorm: 'post_attention_norm', pre_feedforward_layernorm: 'ffn_norm', post_feedforward_layernorm: 'post_ffw_norm',
      'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm',
      'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
    };
    const names = new Map<string, string>([['model.embed_tokens.weight', 'token_embd.weight'], ['model.norm.weight', 'output_norm.weight']]);
    for (const key of base.w.keys()) {
      const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(key);
      if (m) names.set(key, `blk.${m[1]}.${perLayer[m[2]]}.weight`);
    }
    expect([...g.tensors.keys()].sort()).toEqual([...names.values()].sort());
    for (const [key, gname] of names) {
      const t = ggufValues(g, gname);
      expect(t.shape, gname).toEqual(base.w.get(key)!.shape);
      const ref = mergedRef(base, lora, key).map((v) => (key.endsWith('norm.weight') ? v + 1 : v)); // Gemma's (1 + w) as llama.cpp's w
      expect(maxRelErr(t.values, ref), gname).toBeLessThan(1e-6);
    }
  });

  it.each([
    ['gemma3-window-bf16', /every 6th layer full attention.*full layers are 0$/],
    ['gemma3-v5-softcap-f32', /attention scores are soft-capped/],
  ])('%s: a Gemma 3 that llama.cpp would run differently is refused, before a byte is written', async (name, reason) => {
    const engine = await loadEngine(name);
    const file = join(tmp, `${name}-refused.gguf`);
    const out = new PendingOutput(file);
    const err = await writeModelGguf(engine.current, null, await out.file()).catch((e: Error) => e);
    await out.abandon();
    engine.unload();
    expect(err).toBeInstanceOf(GgufUnsupportedError);
    expect((err as Error).message.split(': ').slice(1).join(': ').split('. Export')[0]).toMatch(reason);
    expect(readdirSync(tmp).filter((f) => f.includes(`${name}-refused`))).toEqual([]);
  });

  it("tokenizers llama.cpp cannot reproduce are refused; SentencePiece's space forms map to add_space_prefix", () => {
    expect(() => ggufPreTokenizer({ type: 'Metaspace', replacement: '▁' })).toThrow(/pre_tokenizer/);
    const replace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
    expect(spmSpacePrefix(replace, { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false })).toBe(false); // Gemma
    expect(spmSpacePrefix({ type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replace] }, null)).toBe(true); // Llama 2, legacy
    expect(spmSpacePrefix(null, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false })).toBe(true); // Llama 2, current
    expect(spmSpacePrefix(null, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: false })).toBe(false);
    expect(() => spmSpacePrefix({ type: 'NFKC' }, null)).toThrow(GgufUnsupportedError);
    expect(() => spmSpacePrefix(null, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true })).toThrow(/SentencePiece/);
  });

  it.skipIf(!hasConformance)("SmolLM2's real tokenizer is llama.cpp's smollm pre-tokenizer", () => {
    const tok = JSON.parse(readFileSync(join(CONFORMANCE, 'smollm2-tokenizer', 'tokenizer.json'), 'utf8'));
    expect(ggufPreTokenizer(tok.pre_tokenizer)).toBe('smollm');
  });
});

const run = promisify(execFile);
async function cli(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', ...args]);
    return { code: 0, stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { code: x.code, stderr: x.stderr };
  }
}

describe('cli export', () => {
  let peftDir = '';
  beforeAll(async () => {
    const { engine, peftDir: dir } = await adapted('llama-untied-mha-f16');
    engine.unload();
    peftDir = dir;
  });

  it('merged with --adapter loads and answers as base + adapter; an existing --out is refused; a failed gguf leaves nothing', async () => {
    const out = join(tmp, 'cli-merged');
    const r = await cli('export', 'merged', '--model', modelDir('llama-untied-mha-f16'), '--adapter', peftDir, '--out', out, '--dtype', 'f16');
    expect(r.code, r.stderr).toBe(0);
    const base = loadRef(modelDir('llama-untied-mha-f16'));
    expect(refGreedy(loadRef(out), PROMPT, 4, [2])).toEqual(refGreedy(withPeft(base, peftDir), PROMPT, 4, [2]));
    const again = await cli('export', 'merged', '--model', modelDir('llama-untied-mha-f16'), '--out', out);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists.*--overwrite/);
    const bad = await cli('export', 'gguf', '--model', modelDir('gemma3-window-bf16'), '--out', join(tmp, 'cli-gemma.gguf'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/GgufUnsupportedError.*every 6th layer.*convert_hf_to_gguf/);
    expect(readdirSync(tmp).filter((f) => f.includes('cli-gemma'))).toEqual([]);
    const noKind = await cli('export', '--model', 'x');
    expect(noKind.stderr).toMatch(/export merged.*export gguf/);
  });
});

describe('the adapter carries its run', () => {
  it("a trained or checkpointed adapter exports webtune_run.json beside PEFT's files; an imported one does not", async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    await engine.train({ examples: [{ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }], runId: 'r', train: { maxSteps: 1, valSplit: 0, learningRate: 0.003 }, lora: { rank: 4 } });
    const files = await engine.exportAdapter();
    expect(Object.keys(files).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'webtune_run.json']);
    const run = JSON.parse(new TextDecoder().decode(files['webtune_run.json']));
    expect(run).toMatchObject({ baseModel: engine.current.id, architecture: 'LlamaForCausalLM', train: { learningRate: 0.003, method: 'sft' }, lora: { rank: 4 } });
    await engine.useCheckpoint('r', 'epoch-1');
    expect(JSON.parse(new TextDecoder().decode((await engine.exportAdapter())['webtune_run.json'])).train.learningRate).toBe(0.003);
    await engine.importAdapter({ 'adapter_config.json': files['adapter_config.json'], 'adapter_model.safetensors': files['adapter_model.safetensors'] });
    expect(Object.keys(await engine.exportAdapter()).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    engine.unload();
  });
});

describe('llama-factory recipe', () => {
  it.skipIf(!hasConformance)("real chat templates map to LLaMA-Factory's templates for the same format", () => {
    const dir = join(CONFORMANCE, 'chat-templates');
    const source = (f: string) => readFileSync(join(dir, f), 'utf8');
    const files = readdirSync(dir);
    const pick = (re: RegExp) => files.find((f) => re.test(f))!;
    expect(llamaFactoryTemplate('Qwen3ForCausalLM', 'model', source(pick(/qwen3/i)))).toBe('qwen3');
    expect(llamaFactoryTemplate('Qwen2ForCausalLM', 'model', source(pick(/qwen2/i)))).toBe('qwen');
    expect(llamaFactoryTemplate('Gemma3ForCausalLM', 'model', source(pick(/gemma/i)))).toBe('gemma3');
    expect(llamaFactoryTemplate('LlamaForCausalLM', 'model', source(pick(/llama/i)))).toBe('llama3');
    expect(llamaFactoryTemplate('LlamaForCausalLM', 'model', readFileSync(join(CONFORMANCE, 'smollm2-tokenizer', 'chat_template.jinja'), 'utf8'))).toBe('smollm2');
    expect(llamaFactoryTemplate('LlamaForCausalLM', 'none', null)).toBe('empty');
    expect(() => llamaFactoryTemplate('LlamaForCausalLM', 'model', '{{ messages }}')).toThrow(/--template/);
  });

  it('plain-text data is a pre-training recipe; a mix of chats and text is refused with the counts', () => {
    const run: RunSettings = { baseModel: 'm', architecture: 'LlamaForCausalLM', template: 'none', chatTemplate: null, train: { ...DEFAULT_TRAIN, maxSteps: 30, evalEvery: 5 }, lora: { ...DEFAULT_LORA, targets: ['q_proj', 'v_proj'] } };
    const files = llamaFactoryRecipe(run, [{ text: 'a' }, { text: 'b' }], 'pt');
    const yaml = parseYaml(new TextDecoder().decode(files.get('pt.yaml')!));
    expect(yaml).toMatchObject({ stage: 'pt', lora_target: 'q_proj,v_proj', max_steps: 30, eval_strategy: 'steps', eval_steps: 5, template: 'empty' });
    // Early stopping (on by default with a validation split) as transformers' callback: the best model kept, saved at each evaluation.
    expect(yaml).toMatchObject({ early_stopping_steps: 3, load_best_model_at_end: true, metric_for_best_model: 'eval_loss', save_strategy: 'steps', save_steps: 5 });
    expect(yaml).not.toHaveProperty('train_on_prompt');
    expect(JSON.parse(new TextDecoder().decode(files.get('dataset_info.json')!))).toEqual({ pt: { file_name: 'pt.jsonl', columns: { prompt: 'text' } } });
    expect(() => llamaFactoryRecipe(run, [{ text: 'a' }, { messages: [{ role: 'user', content: 'q' }] }], 'x')).toThrow(/1 chat example\(s\) and 1 plain-text/);
  });

  it("a DPO run is LLaMA-Factory's dpo stage on a ranking dataset in its sharegpt shape", () => {
    const run: RunSettings = { baseModel: 'm', architecture: 'LlamaForCausalLM', template: 'chatml', chatTemplate: null, train: { ...DEFAULT_TRAIN, method: 'dpo', beta: 0.2, labelSmoothing: 0.1 }, lora: DEFAULT_LORA };
    const pair = { prompt: [{ role: 'system' as const, content: 's' }, { role: 'user' as const, content: 'q' }], chosen: [{ role: 'assistant' as const, content: 'good' }], rejected: [{ role: 'assistant' as const, content: 'bad' }] };
    const files = llamaFactoryRecipe(run, [pair], 'prefs');
    const yaml = parseYaml(new TextDecoder().decode(files.get('prefs.yaml')!));
    expect(yaml).toMatchObject({ stage: 'dpo', pref_beta: 0.2, pref_loss: 'sigmoid', dpo_label_smoothing: 0.1, pref_ftx: 0, template: 'chatml' });
    expect(yaml).not.toHaveProperty('train_on_prompt');
    const info = JSON.parse(new TextDecoder().decode(files.get('dataset_info.json')!));
    expect(info.prefs).toMatchObject({ ranking: true, formatting: 'sharegpt', columns: { messages: 'messages', chosen: 'chosen', rejected: 'rejected' } });
    expect(JSON.parse(new TextDecoder().decode(files.get('prefs.jsonl')!))).toEqual({ messages: pair.prompt, chosen: { role: 'assistant', content: 'good' }, rejected: { role: 'assistant', content: 'bad' } });
    expect(() => llamaFactoryRecipe({ ...run, train: DEFAULT_TRAIN }, [pair], 'x')).toThrow(/trained with sft but the data is preference pairs/);
  });
});
