// A loaded model (with its adapter merged) as a GGUF file for llama.cpp and Ollama: the architecture's
// metadata, llama.cpp's tensor names, the vocabulary (gguf-vocab.ts), and the chat template. Llama's q/k rows
// are reordered from the Hugging Face rotary layout (each head's first half rotates with its second half)
// into llama.cpp's (adjacent pairs), as llama.cpp's own converter does; Qwen2/Qwen3/Gemma 3 keep the HF layout.
// Gemma 3's norms scale by (1 + w) and llama.cpp's by w, so its norm weights are written plus one; what
// llama.cpp's gemma3 fixes rather than reads (the layer pattern, the local rope base, the query scale) is
// checked against the model, and a model that differs is refused (gemma3Refusal).
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
import { ggufVocab } from './gguf-vocab';

export { GGUF_TYPES };
/** general.file_type: llama.cpp's LLAMA_FTYPE of the file's main weight type. */
const FTYPE: Record<GgufType, number> = { f32: 0, f16: 1, q8_0: 7 };

const ARCH: Partial<Record<Architecture, string>> = { LlamaForCausalLM: 'llama', Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3', Gemma3ForCausalLM: 'gemma3' };

/** Gemma's names for its four norms, which llama.cpp's gemma3 calls by its own. */
const GEMMA_NORMS: Record<string, string> = { post_attention_layernorm: 'post_attention_norm', pre_feedforward_layernorm: 'ffn_norm', post_feedforward_layernorm: 'post_ffw_norm' };

/** llama.cpp's name of a checkpoint tensor in a file of architecture `arch`. */
export function ggufTensorName(hf: string, arch = 'llama'): string {
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
  const name = m && ((arch === 'gemma3' && GEMMA_NORMS[m[2]]) || part[m[2]]);
  if (!m || !name) throw new Error(`no GGUF name for ${hf}`);
  return `blk.${m[1]}.${name}.${m[3]}`;
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

/** Llama 3's rope: llama.cpp divides each base frequency by a factor read from the rope_freqs tensor. */
function llama3RopeFactors(c: ModelConfig): Float32Array | null {
  const spec = c.rope.full;
  if (spec.scaling.type !== 'llama3') return null;
  const scaled = ropeInverseFrequencies(spec, c.headDim);
  const base = ropeInverseFrequencies({ ...spec, scaling: { type: 'default' } }, c.headDim);
  return Float32Array.from(base, (f, j) => f / scaled[j]);
}

/** What llama.cpp's gemma3 assumes rather than reads (llama-model.cpp): every 6th layer full and the rest
 * sliding, sliding layers rotating with base 10000 unscaled, queries scaled by 1/√head_dim (by 1/√(hidden/heads)
 * for the 62-layer 27B), no soft-capping of scores, the tanh GELU. The first difference, in words, or null. */
export function gemma3Refusal(c: ModelConfig): string | null {
  if (c.attnSoftcap !== null) return `its attention scores are soft-capped (attn_logit_softcapping ${c.attnSoftcap}), which llama.cpp's gemma3 does not do`;
  if (c.activation !== 'gelu_tanh') return `its MLP uses ${c.activation}, where llama.cpp's gemma3 uses the tanh GELU`;
  const slides = c.layerTypes.includes('sliding');
  const wrong = c.layerTypes.findIndex((t, i) => t !== (i % 6 < 5 ? 'sliding' : 'full'));
  if (slides && wrong >= 0) {
    const full = c.layerTypes.flatMap((t, i) => (t === 'full' ? [i] : []));
    return `llama.cpp's gemma3 makes every 6th layer full attention (layers 5, 11, …) and the rest sliding; this model's full layers are ${full.join(', ') || 'none'}`;
  }
  const local = c.rope.sliding;
  if (slides && (local.theta !== 10000 || local.scaling.type !== 'default')) return `its sliding layers rotate with base ${local.theta}${local.scaling.type === 'default' ? '' : `, ${local.scaling.type} scaling`}; llama.cpp's gemma3 uses 10000 unscaled`;
  const scalar = c.numLayers === 62 ? c.hiddenSize / c.numHeads : c.headDim;
  if (Math.abs(c.attnScale * Math.sqrt(scalar) - 1) > 1e-6) return `its queries are scaled by 1/√${+(1 / c.attnScale ** 2).toPrecision(6)} (query_pre_attn_scalar); llama.cpp's gemma3 scales them by 1/√${scalar}`;
  return null;
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
  if (arch === 'gemma3' && c.slidingWindow !== null) md.u32(`${arch}.attention.sliding_window`, c.slidingWindow);
  if (arch === 'gemma3' && c.finalSoftcap !== null) md.f32(`${arch}.final_logit_softcapping`, c.finalSoftcap);

  const vocab = ggufVocab(tokenizerJson, c.vocabSize);
  md.string('tokenizer.ggml.model', vocab.model);
  if (vocab.model === 'gpt2') md.string('tokenizer.ggml.pre', vocab.pre);
  md.strings('tokenizer.ggml.tokens', vocab.tokens).i32s('tokenizer.ggml.token_type', vocab.types);
  if (vocab.model === 'gpt2') md.strings('tokenizer.ggml.merges', vocab.merges);
  else md.f32s('tokenizer.ggml.scores', vocab.scores).bool('tokenizer.ggml.add_space_prefix', vocab.addSpacePrefix);
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
  if (!arch) throw new GgufUnsupportedError(`GGUF export of ${c.architecture} is not built yet (Llama, Qwen2, Qwen3 and Gemma 3 are)`);
  const refusal = arch === 'gemma3' ? gemma3Refusal(c) : c.layerTypes.includes('sliding') ? 'it has sliding-window layers' : null;
  if (refusal) throw new GgufUnsupportedError(refusal);
  const tokenizerJson = JSON.parse(new TextDecoder().decode(await loaded.files.read('tokenizer.json'))) as Json;
  const md = metadata(loaded, arch, fileType, tokenizerJson); // refuses an unwritable vocabulary before any byte is written

  const ropeFactors = llama3RopeFactors(c);
  const hf = [...expectedTensors(c)];
  const tensors: GgufTensor[] = [
    ...(ropeFactors ? [{ name: 'rope_freqs.weight', shape: [ropeFactors.length], type: 'F32' as const }] : []),
    ...hf.map(([name, shape]) => ({ name: ggufTensorName(name, arch), shape, type: tensorType(shape, fileType) })),
  ];
  const interleave = arch === 'llama';
  async function* values(): AsyncGenerator<Float32Array> {
    if (ropeFactors) yield ropeFactors;
    for await (const t of mergedTensors(loaded, adapter, options.loraScale ?? 1)) {
      const q = /\.self_attn\.q_proj\.(weight|bias)$/.test(t.name);
      const k = /\.self_attn\.k_proj\.(weight|bias)$/.test(t.name);
      if (interleave && (q || k)) yield interleaveRotaryRows(t.values, q ? c.numHeads : c.numKvHeads, t.shape.length === 2 ? t.shape[1] : 1);
      else if (c.gemmaNorms && t.name.endsWith('norm.weight')) yield t.values.map((w) => w + 1); // (1 + w) as llama.cpp's plain w
      else yield t.values;
    }
  }
  await writeGguf(sink, md, tensors, values(), onProgress);
}
