// Load a model folder: config.json, tokenizer files, then the weights file by file, so that peak memory
// stays near the float32 weights plus one file's raw bytes.
import * as tf from './tf';
import { expectedTensors, parseConfig, type ModelConfig } from './config';
import { ModelFormatError, ShapeMismatchError } from './errors';
import { isTransposed, LlamaModel } from './llama';
import { decodeHalves, decodeTensor, parseSafetensorsHeader } from './safetensors';
import { PackedMatrix } from './quant/packed-matrix';
import { packingFor, type PackFormat, type Packing } from './quant/format';
import type { WeightFormat } from '../shared/weights';
import { LINEAR_MODULES } from '../shared/defaults';
import type { FileProgress, ModelFiles } from './source';
import { TextTokenizer } from './tokenizer';
import { VocabMatrix } from './vocab-matrix';
import { storageBindingLimit } from './gpu-device';
import type { LoadProgress } from '../shared/types';

export type { LoadProgress };


export interface LoadedModel {
  id: string;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  model: LlamaModel;
  /** Where it was read from: export reads the tokenizer and config files from here again. */
  files: ModelFiles;
}

const INDEX = 'model.safetensors.index.json';

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** The safetensors files of the folder, in order: the shards named by the index, or model.safetensors. */
async function weightFiles(files: ModelFiles, onProgress?: (p: LoadProgress) => void): Promise<string[]> {
  const index = await files.read(INDEX, { optional: true, ...readOptions(onProgress) });
  if (!index) return ['model.safetensors'];
  let map: unknown;
  try {
    map = (JSON.parse(text(index)) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new ModelFormatError(INDEX, `is not valid JSON (${(e as Error).message}).`);
  }
  if (!map || typeof map !== 'object') throw new ModelFormatError(INDEX, 'has no "weight_map" object.');
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  if (!shards.every((s) => typeof s === 'string' && /^[\w.-]+\.safetensors$/.test(s))) {
    throw new ModelFormatError(INDEX, 'weight_map names a file that is not a plain *.safetensors file name.');
  }
  return (shards as string[]).sort();
}

/** Only the tokenizer and chat template of a model folder (no weights): for dataset statistics. */
function readOptions(onProgress?: (p: LoadProgress) => void) {
  return {
    onProgress: (p: FileProgress) => onProgress?.({ stage: 'file', ...p }),
    onWarning: (message: string) => onProgress?.({ stage: 'warning', message }),
  };
}

export async function loadTokenizer(files: ModelFiles, onProgress?: (p: LoadProgress) => void): Promise<TextTokenizer> {
  const rd = readOptions(onProgress);
  const tokenizerJson = await files.read('tokenizer.json', rd);
  const tokenizerConfig = await files.read('tokenizer_config.json', rd);
  const template = await files.read('chat_template.jinja', { optional: true, ...rd });
  const generation = await files.read('generation_config.json', { optional: true, ...rd });
  return TextTokenizer.fromFiles(tokenizerJson, tokenizerConfig, template && text(template), generation);
}

/** On WASM a vocabulary matrix above this is kept in blocks, so training's transposed copy is made a block at a
 * time (Gemma 3 270M's 671 MB head, its copy and their packed twins do not fit the 4 GB heap at once). */
const WASM_VOCAB_BLOCK_BYTES = 128 * 1024 * 1024;

/** The largest vocabulary block for a backend: WebGPU's binding limit, a heap-friendly size on WASM, none on cpu. */
export function vocabBlockBytesFor(backend: string): number | null {
  return backend === 'webgpu' ? storageBindingLimit() : backend === 'wasm' ? WASM_VOCAB_BLOCK_BYTES : null;
}

/**
 * `vocabBlockBytes`: the embedding and LM head are kept in row blocks of at most this many bytes (the WebGPU
 * device's binding limit), built straight from the file's values so the whole matrix never sits in one buffer.
 */
/** What a model folder says before its weights: config.json, the tokenizer and which weight files there are.
 * Reading it first means a folder that is not a model, a mistyped repo id or an unreachable Hub fails before the
 * model already loaded is given up. */
export interface ModelHead {
  config: ModelConfig;
  tokenizer: TextTokenizer;
  weightFiles: string[];
}

export async function readModelHead(files: ModelFiles, onProgress?: (p: LoadProgress) => void): Promise<ModelHead> {
  const config = parseConfig(text(await files.read('config.json', readOptions(onProgress))));
  const tokenizer = await loadTokenizer(files, onProgress);
  return { config, tokenizer, weightFiles: await weightFiles(files, onProgress) };
}

/** The linear modules' weights, the bulk of every block: with the vocabulary matrices, the ones that may be packed. */
const LINEAR_WEIGHT = new RegExp(`\\.(${LINEAR_MODULES.join('|')})\\.weight$`);

/** How a [R, K] matrix stored as `dtype` is packed for `format`: 16 bits keeps a bf16/f16 file's own halves (an
 * F32 file is rounded to bf16); a quantized format that K does not divide into falls back to the next finer one;
 * null: float32. */
function packingOf(format: WeightFormat, dtype: string, K: number): Packing | null {
  const order: PackFormat[] = format === 'int4' ? ['int4', 'int8'] : format === 'int8' ? ['int8'] : [];
  for (const f of order) {
    const p = packingFor(f, K);
    if (p) return p;
  }
  if (format === 'f32') return null;
  return packingFor(dtype === 'F16' ? 'f16' : 'bf16', K);
}

/** `format`: how the linear modules' weights and the vocabulary matrices are held (quant/format.ts): float32, or
 * packed (16 bits, int8, int4) and unpacked inside each product; the loader packs one tensor at a time, so peak
 * memory is the packed weights plus one file's bytes and one tensor's float32 values. Packed formats need the
 * backend's unpacking kernels (ops/dequantize.ts): the caller checks. */
export async function loadModel(files: ModelFiles, onProgress?: (p: LoadProgress) => void, vocabBlockBytes: number | null = null, head?: ModelHead, format: WeightFormat = 'f32'): Promise<LoadedModel> {
  const rd = readOptions(onProgress);
  const { config, tokenizer, weightFiles: weightList } = head ?? (await readModelHead(files, onProgress));
  // Text tokenizes into vocabulary ids, so those must all have an embedding row; an added token past the
  // embedding matters only if a text holds it.
  const { vocab: vocabMax, added } = tokenizer.maxTokenId;
  if (vocabMax >= config.vocabSize) {
    throw new ModelFormatError('tokenizer.json', `produces token ids up to ${vocabMax}, but config.json's vocab_size is ${config.vocabSize}: the embedding has no row for them. The tokenizer and the weights come from different models.`);
  }
  if (added >= config.vocabSize) onProgress?.({ stage: 'warning', message: `tokenizer.json has added tokens up to id ${added}, past config.json's vocab_size ${config.vocabSize}; a text holding one of them cannot be used.` });

  const expected = expectedTensors(config);
  const weights = new Map<string, tf.Tensor>();
  const vocab = new Map<string, VocabMatrix>(); // the vocabulary matrices kept in blocks, by checkpoint key
  const packed = new Map<string, PackedMatrix>(); // the linear weights kept packed, by checkpoint key
  const blockRows = VocabMatrix.blockRows(config.vocabSize, config.hiddenSize, vocabBlockBytes);
  const total = expected.size;
  let rounded = false; // an F32 file's weights rounded to bf16 (said once)
  try {
    for (const file of weightList) {
      let bytes: Uint8Array | null = await files.read(file, rd);
      const header = parseSafetensorsHeader(bytes, file);
      for (const entry of header.tensors) {
        const shape = expected.get(entry.name);
        if (!shape) continue; // e.g. rotary inv_freq buffers, or lm_head.weight of a tied model
        if (shape.length !== entry.shape.length || shape.some((d, i) => d !== entry.shape[i])) {
          throw new ShapeMismatchError(file, entry.name, shape, entry.shape);
        }
        if (weights.has(entry.name) || vocab.has(entry.name) || packed.has(entry.name)) throw new ModelFormatError(file, `tensor ${entry.name} appears twice in the checkpoint.`);
        const isVocab = entry.name === 'model.embed_tokens.weight' || entry.name === 'lm_head.weight';
        const [rows, cols] = entry.shape;
        const packing = isVocab || LINEAR_WEIGHT.test(entry.name) ? packingOf(format, entry.dtype, cols) : null;
        const loaded = () => onProgress?.({ stage: 'tensors', loaded: weights.size + vocab.size + packed.size, total });
        if (packing) {
          // In the checkpoint's [rows, cols] layout; a bf16/f16 file's halves are kept as they are.
          const own = (packing.format === 'bf16' && entry.dtype === 'BF16') || (packing.format === 'f16' && entry.dtype === 'F16');
          const values = own ? decodeHalves(bytes, header, entry) : decodeTensor(bytes, header, entry);
          if (!own && packing.format === 'bf16' && entry.dtype === 'F32' && !rounded) {
            rounded = true;
            onProgress?.({ stage: 'warning', message: `${file} stores float32 weights: 16-bit rounds them to bf16 (choose float32 to keep them exact).` });
          }
          if (isVocab) vocab.set(entry.name, VocabMatrix.packedFromRows(entry.name, values, rows, cols, packing, blockRows));
          else packed.set(entry.name, PackedMatrix.pack(values, rows, cols, packing));
          loaded();
          continue;
        }
        if (isVocab && blockRows < config.vocabSize) {
          const transposed = isTransposed(entry.name, config.tieWordEmbeddings);
          vocab.set(entry.name, VocabMatrix.fromRows(entry.name, decodeTensor(bytes, header, entry), config.vocabSize, config.hiddenSize, transposed, blockRows));
          loaded();
          continue;
        }
        const t = tf.tensor(decodeTensor(bytes, header, entry), entry.shape, 'float32');
        weights.set(entry.name, isTransposed(entry.name, config.tieWordEmbeddings) ? tf.tidy(() => tf.transpose(t)) : t);
        if (weights.get(entry.name) !== t) t.dispose();
        loaded();
      }
      bytes = null; // this file's raw bytes can be collected before the next one arrives
    }
    const missing = [...expected.keys()].filter((k) => !weights.has(k) && !vocab.has(k) && !packed.has(k));
    if (missing.length > 0) {
      throw new ModelFormatError('model weights', `${missing.length} tensor(s) that config.json requires are missing, first ${missing[0]}. The checkpoint is incomplete or belongs to another architecture.`);
    }
  } catch (e) {
    for (const t of weights.values()) t.dispose();
    for (const m of vocab.values()) m.dispose();
    for (const p of packed.values()) p.dispose();
    throw e;
  }
  return { id: files.id, config, tokenizer, model: new LlamaModel(config, weights, vocab, packed), files };
}
