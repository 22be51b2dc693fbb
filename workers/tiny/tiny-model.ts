// Deterministic generator of small random-weight models in exactly the Hugging Face folder format:
// config.json, tokenizer.json (byte-level BPE trained here on a fixed text), tokenizer_config.json,
// a ChatML chat template, optional generation_config.json, and (sharded) safetensors in F32/F16/BF16.
// Tests use the tiny variants; the app ships one as its untrained demo; benchmarks use real shapes.
import { expectedTensors, parseConfig, type Architecture } from '../engine/config';
import { writeSafetensors, type DType } from '../engine/safetensors';
import { Rng } from '../engine/sampling';

export interface TinySpec {
  name: string;
  architecture: Architecture;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  headDim?: number; // written to config.json only when given
  vocab?: number; // default: exactly the tokenizer's size
  embedStd?: number; // the embedding's standard deviation (default 1; the demo's is 1/√hidden, see DEMO_SPEC)
  tied: boolean;
  dtype: DType;
  shards: number;
  ropeTheta: number;
  rmsNormEps: number;
  templateFile: boolean; // chat template in chat_template.jinja instead of tokenizer_config.json
  generationConfig: boolean;
  maxPositions?: number;
  chat?: ChatFamily; // special tokens and chat format; default ChatML
  sentencepiece?: 'gemma' | 'llama2'; // a SentencePiece-style BPE vocabulary (▁ for spaces, byte fallback) in the form transformers writes Gemma's or Llama 2's, instead of byte-level
  noTemplate?: boolean; // a base model: no chat template at all
  extra?: Record<string, unknown>; // further config.json fields (rope scaling, sliding windows, …)
}

/** The chat formats of the tiny tokenizers: their special tokens (ids 0…) and a template in that format. */
export type ChatFamily = 'chatml' | 'gemma' | 'llama3';

const base = { layers: 2, intermediate: 96, ropeTheta: 10000, rmsNormEps: 1e-5, shards: 1, templateFile: false, generationConfig: true };

/** One variant per feature the loader must handle. */
export const TINY_VARIANTS: TinySpec[] = [
  { ...base, name: 'llama-tied-gqa-f32', architecture: 'LlamaForCausalLM', hidden: 64, heads: 4, kvHeads: 2, tied: true, dtype: 'F32' },
  { ...base, name: 'llama-untied-mha-f16', architecture: 'LlamaForCausalLM', hidden: 48, heads: 4, kvHeads: 4, tied: false, dtype: 'F16', ropeTheta: 500000, rmsNormEps: 1e-6, templateFile: true, generationConfig: false },
  { ...base, name: 'qwen2-bias-bf16', architecture: 'Qwen2ForCausalLM', hidden: 64, heads: 4, kvHeads: 2, tied: true, dtype: 'BF16', ropeTheta: 1000000, rmsNormEps: 1e-6, vocab: 400 },
  { ...base, name: 'llama-headdim-sharded', architecture: 'LlamaForCausalLM', hidden: 64, heads: 4, kvHeads: 1, headDim: 24, tied: false, dtype: 'F32', shards: 3, layers: 3 },
  { ...base, name: 'qwen2-untied-sharded-f16', architecture: 'Qwen2ForCausalLM', hidden: 32, heads: 2, kvHeads: 1, tied: false, dtype: 'F16', shards: 2, templateFile: true },
  // Qwen3: per-head q/k norms, an explicit head_dim larger than hidden/heads (as Qwen3-0.6B: 1024 → 16 × 128).
  { ...base, name: 'qwen3-headdim-bf16', architecture: 'Qwen3ForCausalLM', hidden: 48, heads: 4, kvHeads: 2, headDim: 16, tied: true, dtype: 'BF16', ropeTheta: 1000000, rmsNormEps: 1e-6 },
  // Gemma 3: a window of 4 (shorter than the test prompts), layer_types full/sliding/sliding (not the default
  // every-6th pattern), GELU, four norms with (1 + w), √C embeddings, query_pre_attn_scalar ≠ head_dim.
  {
    ...base,
    name: 'gemma3-window-bf16',
    architecture: 'Gemma3ForCausalLM',
    hidden: 64,
    heads: 4,
    kvHeads: 1,
    headDim: 32,
    intermediate: 128,
    layers: 3,
    tied: true,
    dtype: 'BF16',
    ropeTheta: 1000000,
    rmsNormEps: 1e-6,
    chat: 'gemma',
    extra: { layer_types: ['full_attention', 'sliding_attention', 'sliding_attention'], sliding_window: 4, rope_local_base_freq: 10000, query_pre_attn_scalar: 24 },
  },
  // Gemma 3 in transformers v5's form: rope_parameters per layer type, linear scaling on full layers, the
  // pattern from sliding_window_pattern (every 2nd layer full), soft-capping of scores and logits.
  {
    ...base,
    name: 'gemma3-v5-softcap-f32',
    architecture: 'Gemma3ForCausalLM',
    hidden: 32,
    heads: 2,
    kvHeads: 2,
    headDim: 16,
    intermediate: 64,
    layers: 4,
    tied: true,
    dtype: 'F32',
    ropeTheta: 0, // not written: rope_parameters carries it
    rmsNormEps: 1e-6,
    chat: 'gemma',
    extra: {
      sliding_window_pattern: 2,
      sliding_window: 3,
      rope_parameters: { full_attention: { rope_type: 'linear', factor: 4, rope_theta: 1000000 }, sliding_attention: { rope_type: 'default', rope_theta: 10000 } },
      attn_logit_softcapping: 5,
      final_logit_softcapping: 3,
    },
  },
  // Gemma 3 as llama.cpp's gemma3 runs it (every 6th layer full, local rope base 10000, query_pre_attn_scalar =
  // head_dim), with a SentencePiece-style vocabulary as the real Gemma tokenizer.json has (▁, byte fallback).
  {
    ...base,
    name: 'gemma3-spm-bf16',
    architecture: 'Gemma3ForCausalLM',
    hidden: 32,
    heads: 2,
    kvHeads: 1,
    headDim: 16,
    intermediate: 64,
    layers: 6,
    tied: true,
    dtype: 'BF16',
    ropeTheta: 1000000,
    rmsNormEps: 1e-6,
    chat: 'gemma',
    sentencepiece: 'gemma',
    extra: { sliding_window: 4, rope_local_base_freq: 10000 },
  },
  // Llama 2 / TinyLlama: a SentencePiece-style vocabulary that prepends ▁ to the text (llama.cpp's add_space_prefix).
  { ...base, name: 'llama-spm-f32', architecture: 'LlamaForCausalLM', hidden: 32, heads: 2, kvHeads: 1, tied: false, dtype: 'F32', sentencepiece: 'llama2' },
  // A base model: no chat template (completion only).
  { ...base, name: 'llama-base-notemplate', architecture: 'LlamaForCausalLM', hidden: 32, heads: 2, kvHeads: 1, tied: true, dtype: 'F32', noTemplate: true },
  // Llama 3.x: rope_scaling "llama3" with a short original context, so all three frequency bands occur.
  {
    ...base,
    name: 'llama3-rope-f32',
    architecture: 'LlamaForCausalLM',
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    tied: true,
    dtype: 'F32',
    ropeTheta: 500000,
    chat: 'llama3',
    extra: { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } },
  },
];

/** The built-in demo model: small enough to load anywhere, big enough to memorise a few chats. Its tied embedding
 * has std 1/√hidden, so the untrained logits have std about 1 and its loss starts near ln(vocab) — what guessing
 * scores — as a pretrained model's would be judged against (with std 1 it started at 58 per token). */
export const DEMO_SPEC: TinySpec = { ...base, name: 'webtune-demo', architecture: 'LlamaForCausalLM', hidden: 96, heads: 4, kvHeads: 2, intermediate: 192, layers: 3, tied: true, dtype: 'F32', embedStd: 1 / Math.sqrt(96) };

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

/** Gemma 3 270M's exact shape (google/gemma-3-270m-it's config.json) with random weights, for benchmarks. */
export const GEMMA3_270M_SHAPE: TinySpec = {
  ...base,
  name: 'gemma3-270m-shape',
  architecture: 'Gemma3ForCausalLM',
  hidden: 640,
  layers: 18,
  heads: 4,
  kvHeads: 1,
  headDim: 256,
  intermediate: 2048,
  vocab: 262144,
  tied: true,
  dtype: 'BF16',
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  maxPositions: 32768,
  chat: 'gemma',
  extra: { sliding_window: 512, sliding_window_pattern: 6, rope_local_base_freq: 10000, query_pre_attn_scalar: 256 },
};

/** Qwen3-0.6B's exact shape with random weights, for benchmarks. */
export const QWEN3_06B_SHAPE: TinySpec = {
  ...base,
  name: 'qwen3-0.6b-shape',
  architecture: 'Qwen3ForCausalLM',
  hidden: 1024,
  layers: 28,
  heads: 16,
  kvHeads: 8,
  headDim: 128,
  intermediate: 3072,
  vocab: 151936,
  tied: true,
  dtype: 'BF16',
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  maxPositions: 40960,
};

/** Qwen2.5-1.5B's exact shape with random weights (q/k/v biases, tied), in 4 shards, for benchmarks. */
export const QWEN25_15B_SHAPE: TinySpec = {
  ...base,
  name: 'qwen2.5-1.5b-shape',
  architecture: 'Qwen2ForCausalLM',
  hidden: 1536,
  layers: 28,
  heads: 12,
  kvHeads: 2,
  intermediate: 8960,
  vocab: 151936,
  tied: true,
  dtype: 'BF16',
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  maxPositions: 32768,
  shards: 4,
};

/** The real shapes `npm run bench -- --models …` can run, by name. */
export const BENCH_SHAPES: Record<string, TinySpec> = { 'smollm2-135m': SMOLLM2_135M_SHAPE, 'gemma3-270m': GEMMA3_270M_SHAPE, 'qwen3-0.6b': QWEN3_06B_SHAPE, 'qwen2.5-1.5b': QWEN25_15B_SHAPE };

// ---------------------------------------------------------------------------------------------- tokenizer

const SPECIALS: Record<ChatFamily, string[]> = {
  chatml: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
  gemma: ['<pad>', '<eos>', '<bos>', '<unk>', '<start_of_turn>', '<end_of_turn>'],
  llama3: ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
};

/** tokenizer_config.json's special tokens and the eos ids of generation_config.json, per family. */
const FAMILY: Record<ChatFamily, { bos: string; eos: string; pad: string; unk: string; eosIds: number[] }> = {
  chatml: { bos: '<|im_start|>', eos: '<|im_end|>', pad: '<|im_end|>', unk: '<|endoftext|>', eosIds: [2, 0] },
  gemma: { bos: '<bos>', eos: '<end_of_turn>', pad: '<pad>', unk: '<unk>', eosIds: [1, 5] },
  llama3: { bos: '<|begin_of_text|>', eos: '<|eot_id|>', pad: '<|end_of_text|>', unk: '<|end_of_text|>', eosIds: [1, 4] },
};

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
  const text = CORPUS.split(/<\|im_start\|>|<\|im_end\|>/).join(' '); // the corpus is written in ChatML
  const words = [...text.matchAll(PRETOKENIZE)].map((m) => [...new TextEncoder().encode(m[0])].map((b) => byteChar[b]));
  return trainMergesOn(words, numMerges);
}

/** BPE training: merge the most frequent adjacent pair of symbols, `numMerges` times (ties by the pair's text). */
function trainMergesOn(symbolWords: string[][], numMerges: number): [string, string][] {
  const counts = new Map<string, number>();
  for (const w of symbolWords) {
    const word = w.join('\u0000');
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

/** Gemma's turn format (system folded into the first user turn, "model" for the assistant); written here, not copied. */
export const GEMMA_STYLE_TEMPLATE =
  "{{ bos_token }}{% set first = '' %}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}{% set messages = messages[1:] %}{% endif %}" +
  "{% for message in messages %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' + (first if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

/** Llama 3's header format; written here, not copied. */
export const LLAMA3_STYLE_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const TEMPLATES: Record<ChatFamily, string> = { chatml: CHATML_TEMPLATE, gemma: GEMMA_STYLE_TEMPLATE, llama3: LLAMA3_STYLE_TEMPLATE };

/** The corpus's words as SentencePiece splits them: each starts at a ▁ (a space) and none crosses one. */
const SPM_WORDS = /▁*[^▁\n]+|▁+/gu;

/**
 * A SentencePiece-style BPE tokenizer.json, in the form transformers' converter writes Gemma's (spaces become ▁)
 * or Llama 2's (also one ▁ prepended, which the decoder strips): merges within ▁-words trained here, every byte as
 * a <0xXX> token for what the vocabulary lacks (byte_fallback). The corpus is ASCII, so any other character falls
 * back to bytes.
 */
export function makeSpmTokenizer(numMerges = 120, family: ChatFamily = 'gemma', form: 'gemma' | 'llama2' = 'gemma'): { tokenizer: object; vocabSize: number } {
  const vocab: Record<string, number> = {};
  const add = (t: string) => (vocab[t] ??= Object.keys(vocab).length);
  const specials = SPECIALS[family];
  specials.forEach(add);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const text = CORPUS.split(/<\|im_start\|>|<\|im_end\|>/).join(' ').replaceAll(' ', '▁');
  for (const ch of text) if (ch !== '\n') add(ch); // a newline stays a byte, as in Llama 2's vocabulary
  const merges = trainMergesOn([...text.matchAll(SPM_WORDS)].map((m) => [...m[0]]), numMerges);
  for (const [a, b] of merges) add(a + b);
  const replace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: form === 'gemma' ? replace : { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replace] },
    pre_tokenizer: form === 'gemma' ? { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false } : null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, ...(form === 'gemma' ? [] : [{ type: 'Strip', content: ' ', start: 1, stop: 0 }])] },
    model: { type: 'BPE', dropout: null, unk_token: FAMILY[family].unk, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges },
  };
  return { tokenizer, vocabSize: Object.keys(vocab).length };
}

export function makeTokenizer(numMerges = 120, family: ChatFamily = 'chatml'): { tokenizer: object; vocabSize: number } {
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  const specials = SPECIALS[family];
  specials.forEach((t, i) => (vocab[t] = i));
  for (const ch of byteChar) vocab[ch] = Object.keys(vocab).length;
  const merges = trainMerges(numMerges, byteChar);
  for (const [a, b] of merges) if (vocab[a + b] === undefined) vocab[a + b] = Object.keys(vocab).length;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
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
  const family = spec.chat ?? 'chatml';
  const fam = FAMILY[family];
  const { tokenizer, vocabSize: tokVocab } = spec.sentencepiece ? makeSpmTokenizer(120, family, spec.sentencepiece) : makeTokenizer(120, family);
  const vocab = spec.vocab ?? tokVocab;
  if (vocab < tokVocab) throw new Error(`${spec.name}: vocab ${vocab} is smaller than the tokenizer's ${tokVocab}`);
  const C = spec.hidden;
  const qwen2 = spec.architecture === 'Qwen2ForCausalLM';
  const gemma = spec.architecture === 'Gemma3ForCausalLM';
  const modelType = { LlamaForCausalLM: 'llama', Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3', Gemma3ForCausalLM: 'gemma3_text' }[spec.architecture];

  const files = new Map<string, Uint8Array>();
  const config: Record<string, unknown> = {
    architectures: [spec.architecture],
    model_type: modelType,
    vocab_size: vocab,
    hidden_size: C,
    intermediate_size: spec.intermediate,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    [gemma ? 'hidden_activation' : 'hidden_act']: gemma ? 'gelu_pytorch_tanh' : 'silu',
    max_position_embeddings: spec.maxPositions ?? 512,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: spec.tied,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[spec.dtype],
    bos_token_id: 1,
    eos_token_id: 2,
  };
  if (family !== 'chatml') Object.assign(config, { bos_token_id: SPECIALS[family].indexOf(fam.bos), eos_token_id: fam.eosIds });
  if (spec.headDim !== undefined) config.head_dim = spec.headDim;
  if (qwen2) Object.assign(config, { use_sliding_window: false, sliding_window: 4096, max_window_layers: spec.layers });
  else Object.assign(config, { attention_bias: false, mlp_bias: false });
  Object.assign(config, spec.extra ?? {});
  if (config.rope_parameters !== undefined) delete config.rope_theta;

  // The tensors and their shapes come from the engine's one description of each architecture.
  const parsed = parseConfig(config);
  const tensors: { name: string; shape: number[]; values: Float32Array }[] = [];
  for (const [name, shape] of expectedTensors(parsed)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let std: number;
    let mean = 0;
    if (name === 'model.embed_tokens.weight') std = spec.embedStd ?? 1;
    else if (name.endsWith('norm.weight')) [std, mean] = [0.1, parsed.gemmaNorms ? 0 : 1]; // Gemma scales by (1 + w)
    else if (name.endsWith('.bias')) std = 0.1;
    else std = 1 / Math.sqrt(shape[1]); // a linear [out, in]
    tensors.push({ name, shape, values: normal(rng, n, std, mean) });
  }

  files.set('config.json', json(config));
  files.set('tokenizer.json', json(tokenizer));
  const tokConfig: Record<string, unknown> = {
    add_prefix_space: false,
    bos_token: fam.bos,
    eos_token: fam.eos,
    pad_token: fam.pad,
    unk_token: fam.unk,
    clean_up_tokenization_spaces: false,
    model_max_length: spec.maxPositions ?? 512,
    tokenizer_class: family === 'chatml' ? 'GPT2Tokenizer' : 'PreTrainedTokenizerFast',
  };
  if (spec.noTemplate) {
    // a base model ships no template
  } else if (spec.templateFile) files.set('chat_template.jinja', encoder.encode(TEMPLATES[family]));
  else tokConfig.chat_template = TEMPLATES[family];
  files.set('tokenizer_config.json', json(tokConfig));
  if (spec.generationConfig) files.set('generation_config.json', json({ bos_token_id: config.bos_token_id, eos_token_id: fam.eosIds, max_new_tokens: 64 }));

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
