// A loaded model (with its adapter merged) as a GGUF file for llama.cpp and Ollama: the architecture's
// metadata, llama.cpp's tensor names, the byte-level BPE vocabulary, and the chat template. Llama's q/k rows
// are reordered from the Hugging Face rotary layout (each head's first half rotates with its second half)
// into llama.cpp's (adjacent pairs), as llama.cpp's own converter does; Qwen2/Qwen3 keep the HF layout.
import type { Architecture, ModelConfig } from '../config';
import { GGUF_TYPES } from '../../shared/defaults';
import type { GgufType } from '../../shared/types';
import { expectedTensors, ropeInverseFrequencies } from '../config';
import { GgufUnsupportedError, InvalidRequestError } from '../errors';
import type { LoadedModel } from '../load';
import type { LoraAdapter } from '../lora';
import { GgufMetadata, Q8_0_BLOCK, writeGguf, type GgmlType, type GgufTensor } from './gguf';
import { assertExactBase, mergedTensors } from './merged';
import type { ByteSink, ExportProgress } from './sink';
import { modelName } from '../../shared/names';

export { GGUF_TYPES };
/** general.file_type: llama.cpp's LLAMA_FTYPE of the file's main weight type. */
const FTYPE: Record<GgufType, number> = { f32: 0, f16: 1, q8_0: 7 };

const ARCH: Partial<Record<Architecture, string>> = { LlamaForCausalLM: 'llama', Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3' };

/** llama.cpp's name of a checkpoint tensor. */
export function ggufTensorName(hf: string): string {
  const top: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (top[hf]) return top[hf];
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf);
  const part: Record<string, string> = {
    input_layernorm: 'attn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    'self_attn.q_norm': 'attn_q_norm',
    'self_attn.k_norm': 'attn_k_norm',
    post_attention_layernorm: 'ffn_norm',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
  };
  if (!m || !part[m[2]]) throw new Error(`no GGUF name for ${hf}`);
  return `blk.${m[1]}.${part[m[2]]}.${m[3]}`;
}

/** Rows of a q/k weight [heads·D, in] (or bias [heads·D]) from HF's half-split rotary order to adjacent pairs:
 * new row 2j + k of a head is old row k·D/2 + j. */
export function interleaveRotaryRows(values: Float32Array, heads: number, rowLength: number): Float32Array {
  const rows = values.length / rowLength;
  const D = rows / heads;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < D / 2; j++) {
      for (let k = 0; k < 2; k++) {
        const from = (h * D + k * (D / 2) + j) * rowLength;
        out.set(values.subarray(from, from + rowLength), (h * D + 2 * j + k) * rowLength);
      }
    }
  }
  return out;
}

function tensorType(shape: number[], fileType: GgufType): GgmlType {
  if (shape.length < 2 || fileType === 'f32') return 'F32'; // norms and biases stay F32, as llama.cpp keeps them
  if (fileType === 'f16') return 'F16';
  return shape[shape.length - 1] % Q8_0_BLOCK === 0 ? 'Q8_0' : 'F16'; // a row that is no whole number of blocks
}

type Json = Record<string, unknown>;

// The pre-tokenizers of the byte-level BPE families llama.cpp knows, by the split each one makes.
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** tokenizer.ggml.pre: llama.cpp's name for how text is split before BPE, read from tokenizer.json's pre_tokenizer. */
export function ggufPreTokenizer(pre: unknown): string {
  const p = (pre ?? {}) as Json;
  const byteLevel = (x: Json, regex: boolean) => x.type === 'ByteLevel' && (x.use_regex !== false) === regex;
  if (byteLevel(p, true)) return 'gpt-2'; // llama.cpp's name for GPT-2's own split (the tokenizer model is "gpt2")
  const seq = p.type === 'Sequence' && Array.isArray(p.pretokenizers) ? (p.pretokenizers as Json[]) : null;
  if (seq?.length === 2 && seq[0].type === 'Digits' && seq[0].individual_digits === true && byteLevel(seq[1], true)) return 'smollm';
  if (seq?.length === 2 && seq[0].type === 'Split' && byteLevel(seq[1], false)) {
    const regex = ((seq[0].pattern ?? {}) as Json).Regex;
    if (regex === LLAMA3_SPLIT) return 'llama-bpe';
    if (regex === QWEN2_SPLIT) return 'qwen2';
  }
  throw new GgufUnsupportedError(`tokenizer.json's pre_tokenizer (${JSON.stringify(pre).slice(0, 200)}) is not one of the byte-level splits llama.cpp names (GPT-2, SmolLM, Llama 3, Qwen2)`);
}

// llama.cpp's token types.
const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

/** The vocabulary as llama.cpp's "gpt2" tokenizer model reads it: one token per embedding row (rows no token
 * uses are [PAD<id>], unused), each with its type, and the merges in rank order. */
export function ggufVocab(tokenizerJson: Json, vocabSize: number): { pre: string; tokens: string[]; types: number[]; merges: string[] } {
  const model = (tokenizerJson.model ?? {}) as Json;
  if (model.type !== 'BPE' || model.byte_fallback === true) throw new GgufUnsupportedError(`its tokenizer is ${String(model.type)}${model.byte_fallback ? ' with byte fallback (a SentencePiece vocabulary)' : ''}; only byte-level BPE vocabularies are written`);
  const pre = ggufPreTokenizer(tokenizerJson.pre_tokenizer);
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types = new Array<number>(vocabSize).fill(NORMAL);
  for (const [token, id] of Object.entries((model.vocab ?? {}) as Record<string, number>)) if (id < vocabSize) tokens[id] = token;
  for (const a of (tokenizerJson.added_tokens ?? []) as { id: number; content: string; special?: boolean }[]) {
    if (a.id >= vocabSize) continue; // past the embedding: no text can use it (the loader warned)
    tokens[a.id] = a.content;
    types[a.id] = a.special ? CONTROL : USER_DEFINED;
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = UNUSED;
    }
  }
  const merges = ((model.merges ?? []) as (string | [string, string])[]).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  return { pre, tokens: tokens as string[], types, merges };
}

/** Llama 3's rope: llama.cpp divides each base frequency by a factor read from the rope_freqs tensor. */
function llama3RopeFactors(c: ModelConfig): Float32Array | null {
  const spec = c.rope.full;
  if (spec.scaling.type !== 'llama3') return null;
  const scaled = ropeInverseFrequencies(spec, c.headDim);
  const base = ropeInverseFrequencies({ ...spec, scaling: { type: 'default' } }, c.headDim);
  return Float32Array.from(base, (f, j) => f / scaled[j]);
}

function metadata(loaded: LoadedModel, arch: string, fileType: GgufType, tokenizerJson: Json): GgufMetadata {
  const c = loaded.config;
  const { tokenizer } = loaded;
  const md = new GgufMetadata()
    .string('general.architecture', arch)
    .string('general.name', modelName(loaded.id))
    .u32('general.file_type', FTYPE[fileType])
    .u32('general.quantization_version', 2)
    .u32(`${arch}.vocab_size`, c.vocabSize)
    .u32(`${arch}.context_length`, c.maxPositions)
    .u32(`${arch}.embedding_length`, c.hiddenSize)
    .u32(`${arch}.block_count`, c.numLayers)
    .u32(`${arch}.feed_forward_length`, c.intermediateSize)
    .u32(`${arch}.attention.head_count`, c.numHeads)
    .u32(`${arch}.attention.head_count_kv`, c.numKvHeads)
    .u32(`${arch}.attention.key_length`, c.headDim)
    .u32(`${arch}.attention.value_length`, c.headDim)
    .u32(`${arch}.rope.dimension_count`, c.headDim)
    .f32(`${arch}.rope.freq_base`, c.rope.full.theta)
    .f32(`${arch}.attention.layer_norm_rms_epsilon`, c.rmsNormEps);
  if (c.rope.full.scaling.type === 'linear') md.string(`${arch}.rope.scaling.type`, 'linear').f32(`${arch}.rope.scaling.factor`, c.rope.full.scaling.factor);

  const vocab = ggufVocab(tokenizerJson, c.vocabSize);
  md.string('tokenizer.ggml.model', 'gpt2').string('tokenizer.ggml.pre', vocab.pre).strings('tokenizer.ggml.tokens', vocab.tokens).i32s('tokenizer.ggml.token_type', vocab.types).strings('tokenizer.ggml.merges', vocab.merges);
  const bos = tokenizer.specialId('bos_token');
  const eos = tokenizer.specialId('eos_token') ?? tokenizer.eosIds[0];
  const pad = tokenizer.specialId('pad_token');
  const unk = tokenizer.specialId('unk_token');
  if (bos !== undefined) md.u32('tokenizer.ggml.bos_token_id', bos);
  if (eos !== undefined) md.u32('tokenizer.ggml.eos_token_id', eos);
  if (unk !== undefined) md.u32('tokenizer.ggml.unknown_token_id', unk);
  if (pad !== undefined) md.u32('tokenizer.ggml.padding_token_id', pad);
  // Whether a prompt starts with BOS: what tokenizer.json's post-processor does, not what the config claims.
  const probe = tokenizer.encode('a', true);
  md.bool('tokenizer.ggml.add_bos_token', bos !== undefined && probe.length > 1 && probe[0] === bos);
  const template = tokenizer.ownTemplateSource;
  if (template) md.string('tokenizer.chat_template', template);
  return md;
}

export interface GgufOptions {
  type?: GgufType;
  loraScale?: number;
}

/** Write the model, with `adapter` merged at `loraScale`, as one GGUF file into `sink`. */
export async function writeModelGguf(loaded: LoadedModel, adapter: LoraAdapter | null, sink: ByteSink, options: GgufOptions = {}, onProgress?: ExportProgress): Promise<void> {
  assertExactBase(loaded);
  const fileType = options.type ?? 'f16';
  if (!(GGUF_TYPES as readonly string[]).includes(fileType)) throw new InvalidRequestError(`The GGUF type must be one of ${GGUF_TYPES.join(', ')}, got "${fileType}".`);
  const c = loaded.config;
  const arch = ARCH[c.architecture];
  if (!arch) throw new GgufUnsupportedError(`GGUF export of ${c.architecture} is not built yet (Llama, Qwen2 and Qwen3 are)`);
  if (c.layerTypes.includes('sliding')) throw new GgufUnsupportedError('it has sliding-window layers');
  const tokenizerJson = JSON.parse(new TextDecoder().decode(await loaded.files.read('tokenizer.json'))) as Json;
  const md = metadata(loaded, arch, fileType, tokenizerJson); // refuses an unwritable vocabulary before any byte is written

  const ropeFactors = llama3RopeFactors(c);
  const hf = [...expectedTensors(c)];
  const tensors: GgufTensor[] = [
    ...(ropeFactors ? [{ name: 'rope_freqs.weight', shape: [ropeFactors.length], type: 'F32' as const }] : []),
    ...hf.map(([name, shape]) => ({ name: ggufTensorName(name), shape, type: tensorType(shape, fileType) })),
  ];
  const interleave = arch === 'llama';
  async function* values(): AsyncGenerator<Float32Array> {
    if (ropeFactors) yield ropeFactors;
    for await (const t of mergedTensors(loaded, adapter, options.loraScale ?? 1)) {
      const q = /\.self_attn\.q_proj\.(weight|bias)$/.test(t.name);
      const k = /\.self_attn\.k_proj\.(weight|bias)$/.test(t.name);
      if (interleave && (q || k)) yield interleaveRotaryRows(t.values, q ? c.numHeads : c.numKvHeads, t.shape.length === 2 ? t.shape[1] : 1);
      else yield t.values;
    }
  }
  await writeGguf(sink, md, tensors, values(), onProgress);
}
