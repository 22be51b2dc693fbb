// Deterministic generator of small random-weight models in exactly the Hugging Face folder format:
// config.json, tokenizer.json (byte-level BPE trained here on a fixed text), tokenizer_config.json,
// a ChatML chat template, optional generation_config.json, and (sharded) safetensors in F32/F16/BF16.
// Tests use the tiny variants; the app ships one as its untrained demo; benchmarks use real shapes.
import { writeSafetensors, type DType } from '../engine/safetensors';
import { Rng } from '../engine/sampling';

export interface TinySpec {
  name: string;
  architecture: 'LlamaForCausalLM' | 'Qwen2ForCausalLM';
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  headDim?: number; // written to config.json only when given
  vocab?: number; // default: exactly the tokenizer's size
  tied: boolean;
  dtype: DType;
  shards: number;
  ropeTheta: number;
  rmsNormEps: number;
  templateFile: boolean; // chat template in chat_template.jinja instead of tokenizer_config.json
  generationConfig: boolean;
  maxPositions?: number;
}

const base = { layers: 2, intermediate: 96, ropeTheta: 10000, rmsNormEps: 1e-5, shards: 1, templateFile: false, generationConfig: true };

/** One variant per feature the loader must handle. */
export const TINY_VARIANTS: TinySpec[] = [
  { ...base, name: 'llama-tied-gqa-f32', architecture: 'LlamaForCausalLM', hidden: 64, heads: 4, kvHeads: 2, tied: true, dtype: 'F32' },
  { ...base, name: 'llama-untied-mha-f16', architecture: 'LlamaForCausalLM', hidden: 48, heads: 4, kvHeads: 4, tied: false, dtype: 'F16', ropeTheta: 500000, rmsNormEps: 1e-6, templateFile: true, generationConfig: false },
  { ...base, name: 'qwen2-bias-bf16', architecture: 'Qwen2ForCausalLM', hidden: 64, heads: 4, kvHeads: 2, tied: true, dtype: 'BF16', ropeTheta: 1000000, rmsNormEps: 1e-6, vocab: 400 },
  { ...base, name: 'llama-headdim-sharded', architecture: 'LlamaForCausalLM', hidden: 64, heads: 4, kvHeads: 1, headDim: 24, tied: false, dtype: 'F32', shards: 3, layers: 3 },
  { ...base, name: 'qwen2-untied-sharded-f16', architecture: 'Qwen2ForCausalLM', hidden: 32, heads: 2, kvHeads: 1, tied: false, dtype: 'F16', shards: 2, templateFile: true },
];

/** The built-in demo model: small enough to load anywhere, big enough to memorise a few chats. */
export const DEMO_SPEC: TinySpec = { ...base, name: 'webtune-demo', architecture: 'LlamaForCausalLM', hidden: 96, heads: 4, kvHeads: 2, intermediate: 192, layers: 3, tied: true, dtype: 'F32' };

/** SmolLM2-135M-Instruct's exact shape with random weights, for benchmarks. */
export const SMOLLM2_135M_SHAPE: TinySpec = {
  ...base,
  name: 'smollm2-135m-shape',
  architecture: 'LlamaForCausalLM',
  hidden: 576,
  layers: 30,
  heads: 9,
  kvHeads: 3,
  intermediate: 1536,
  vocab: 49152,
  tied: true,
  dtype: 'BF16',
  ropeTheta: 100000,
  maxPositions: 8192,
};

// ---------------------------------------------------------------------------------------------- tokenizer

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

const CORPUS = `<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
What is the capital of France? Tell me about the weather today, and the time.<|im_end|>
<|im_start|>assistant
The capital of France is Paris. The weather is sunny and warm, about 21 degrees. It is 10:30 in the morning.<|im_end|>
Fine-tuning a language model in the browser keeps your data on your machine: no upload, no server, no account.
The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9, 42, 2024, 3.14159.
Hello, world! How are you? I am fine, thank you. Questions and answers, prompts and completions.
`;

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's reversible map from bytes to printable characters, which byte-level BPE vocabularies use. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + n++);
  return map;
}

/** Train `numMerges` byte-level BPE merges on the fixed corpus; ties break by the pair's text. */
function trainMerges(numMerges: number, byteChar: string[]): [string, string][] {
  const counts = new Map<string, number>();
  const text = CORPUS.split(/<\|im_start\|>|<\|im_end\|>/).join(' ');
  for (const m of text.matchAll(PRETOKENIZE)) {
    const word = [...new TextEncoder().encode(m[0])].map((b) => byteChar[b]).join('\u0000');
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  let words = [...counts.entries()].map(([w, c]) => ({ syms: w.split('\u0000'), count: c }));
  const merges: [string, string][] = [];
  while (merges.length < numMerges) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + '\u0000' + syms[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null;
    for (const [k, c] of pairs) {
      const bc = best === null ? -1 : pairs.get(best)!;
      if (c > bc || (c === bc && k < best!)) best = k;
    }
    if (best === null || pairs.get(best)! < 2) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    words = words.map(({ syms, count }) => {
      const out: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(syms[i]);
      }
      return { syms: out, count };
    });
  }
  return merges;
}

export const CHATML_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export function makeTokenizer(numMerges = 120): { tokenizer: object; vocabSize: number } {
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  SPECIALS.forEach((t, i) => (vocab[t] = i));
  for (const ch of byteChar) vocab[ch] = Object.keys(vocab).length;
  const merges = trainMerges(numMerges, byteChar);
  for (const [a, b] of merges) if (vocab[a + b] === undefined) vocab[a + b] = Object.keys(vocab).length;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  return { tokenizer, vocabSize: Object.keys(vocab).length };
}

// ------------------------------------------------------------------------------------------------ weights

function normal(rng: Rng, n: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng.next(), 1e-12);
    const v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

const encoder = new TextEncoder();
const json = (v: unknown) => encoder.encode(JSON.stringify(v, null, 2) + '\n');

/** All files of the model folder, by name. Same spec and seed → same bytes. */
export function makeModelFiles(spec: TinySpec, seed = 1234): Map<string, Uint8Array> {
  const rng = new Rng(seed);
  const { tokenizer, vocabSize: tokVocab } = makeTokenizer();
  const vocab = spec.vocab ?? tokVocab;
  if (vocab < tokVocab) throw new Error(`${spec.name}: vocab ${vocab} is smaller than the tokenizer's ${tokVocab}`);
  const C = spec.hidden;
  const D = spec.headDim ?? C / spec.heads;
  const q = spec.heads * D;
  const kv = spec.kvHeads * D;
  const qwen = spec.architecture === 'Qwen2ForCausalLM';

  const tensors: { name: string; shape: number[]; values: Float32Array }[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) => tensors.push({ name, shape, values: normal(rng, shape.reduce((a, b) => a * b, 1), std, mean) });
  const linear = (name: string, out: number, inF: number) => add(name, [out, inF], 1 / Math.sqrt(inF));
  add('model.embed_tokens.weight', [vocab, C], 1);
  for (let i = 0; i < spec.layers; i++) {
    const p = `model.layers.${i}.`;
    add(p + 'input_layernorm.weight', [C], 0.1, 1);
    linear(p + 'self_attn.q_proj.weight', q, C);
    linear(p + 'self_attn.k_proj.weight', kv, C);
    linear(p + 'self_attn.v_proj.weight', kv, C);
    if (qwen) {
      add(p + 'self_attn.q_proj.bias', [q], 0.1);
      add(p + 'self_attn.k_proj.bias', [kv], 0.1);
      add(p + 'self_attn.v_proj.bias', [kv], 0.1);
    }
    linear(p + 'self_attn.o_proj.weight', C, q);
    add(p + 'post_attention_layernorm.weight', [C], 0.1, 1);
    linear(p + 'mlp.gate_proj.weight', spec.intermediate, C);
    linear(p + 'mlp.up_proj.weight', spec.intermediate, C);
    linear(p + 'mlp.down_proj.weight', C, spec.intermediate);
  }
  add('model.norm.weight', [C], 0.1, 1);
  if (!spec.tied) linear('lm_head.weight', vocab, C);

  const files = new Map<string, Uint8Array>();
  const config: Record<string, unknown> = {
    architectures: [spec.architecture],
    model_type: qwen ? 'qwen2' : 'llama',
    vocab_size: vocab,
    hidden_size: C,
    intermediate_size: spec.intermediate,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: spec.maxPositions ?? 512,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: spec.tied,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[spec.dtype],
    bos_token_id: 1,
    eos_token_id: 2,
  };
  if (spec.headDim !== undefined) config.head_dim = spec.headDim;
  if (qwen) Object.assign(config, { use_sliding_window: false, sliding_window: 4096, max_window_layers: spec.layers });
  else Object.assign(config, { attention_bias: false, mlp_bias: false });
  files.set('config.json', json(config));
  files.set('tokenizer.json', json(tokenizer));
  const tokConfig: Record<string, unknown> = {
    add_prefix_space: false,
    bos_token: '<|im_start|>',
    eos_token: '<|im_end|>',
    pad_token: '<|im_end|>',
    unk_token: '<|endoftext|>',
    clean_up_tokenization_spaces: false,
    model_max_length: spec.maxPositions ?? 512,
    tokenizer_class: 'GPT2Tokenizer',
  };
  if (spec.templateFile) files.set('chat_template.jinja', encoder.encode(CHATML_TEMPLATE));
  else tokConfig.chat_template = CHATML_TEMPLATE;
  files.set('tokenizer_config.json', json(tokConfig));
  if (spec.generationConfig) files.set('generation_config.json', json({ bos_token_id: 1, eos_token_id: [2, 0], max_new_tokens: 64 }));

  if (spec.shards <= 1) {
    files.set('model.safetensors', writeSafetensors(tensors, spec.dtype));
  } else {
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let s = 0; s < spec.shards; s++) {
      const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(spec.shards).padStart(5, '0')}.safetensors`;
      const part = tensors.filter((_, i) => i % spec.shards === s);
      for (const t of part) {
        weightMap[t.name] = name;
        totalSize += t.values.length * (spec.dtype === 'F32' ? 4 : 2);
      }
      files.set(name, writeSafetensors(part, spec.dtype));
    }
    files.set('model.safetensors.index.json', json({ metadata: { total_size: totalSize }, weight_map: weightMap }));
  }
  return files;
}
