// Load a model folder: config.json, tokenizer files, then the weights file by file, so that peak memory
// stays near the float32 weights plus one file's raw bytes.
import * as tf from './tf';
import { expectedTensors, parseConfig, type ModelConfig } from './config';
import { ModelFormatError, ShapeMismatchError } from './errors';
import { isTransposed, LlamaModel } from './llama';
import { decodeHalves, decodeTensor, parseSafetensorsHeader } from './safetensors';
import { packHalves, type HalfFormat } from './ops/unpack-half';
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

/** The linear modules' weights, the bulk of every block: the ones that may be kept in 16 bits. */
const LINEAR_WEIGHT = new RegExp(`\\.(${LINEAR_MODULES.join('|')})\\.weight$`);

/** [rows, cols] 16-bit values → [cols, rows]. */
function transposeHalves(h: Uint16Array, rows: number, cols: number): Uint16Array {
  const out = new Uint16Array(h.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = h[r * cols + c];
  return out;
}

/** `halfWeights`: keep the linear modules' weights of a BF16 or F16 checkpoint in their 16 bits (half the
 * memory; unpacked to float32 per use, exactly). F32 checkpoints, and backends without the unpack kernel, keep
 * float32. */
export async function loadModel(files: ModelFiles, onProgress?: (p: LoadProgress) => void, vocabBlockBytes: number | null = null, head?: ModelHead, halfWeights = false): Promise<LoadedModel> {
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
  const halves = new Map<string, HalfFormat>(); // the weights kept in 16 bits, by checkpoint key
  const blockRows = VocabMatrix.blockRows(config.vocabSize, config.hiddenSize, vocabBlockBytes);
  const total = expected.size;
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
        if (weights.has(entry.name) || vocab.has(entry.name)) throw new ModelFormatError(file, `tensor ${entry.name} appears twice in the checkpoint.`);
        const isVocab = entry.name === 'model.embed_tokens.weight' || entry.name === 'lm_head.weight';
        if (isVocab && blockRows < config.vocabSize) {
          const transposed = isTransposed(entry.name, config.tieWordEmbeddings);
          vocab.set(entry.name, VocabMatrix.fromRows(entry.name, decodeTensor(bytes, header, entry), config.vocabSize, config.hiddenSize, transposed, blockRows));
          onProgress?.({ stage: 'tensors', loaded: weights.size + vocab.size, total });
          continue;
        }
        const [rows, cols] = entry.shape;
        if (halfWeights && entry.dtype !== 'F32' && LINEAR_WEIGHT.test(entry.name) && rows % 2 === 0) {
          // Stored [in, out] like the float32 weights (isTransposed), two halves to an int32 word.
          const packed = packHalves(transposeHalves(decodeHalves(bytes, header, entry), rows, cols));
          weights.set(entry.name, tf.tensor(packed, [cols, rows / 2], 'int32'));
          halves.set(entry.name, entry.dtype === 'BF16' ? 'bf16' : 'f16');
          onProgress?.({ stage: 'tensors', loaded: weights.size + vocab.size, total });
          continue;
        }
        const t = tf.tensor(decodeTensor(bytes, header, entry), entry.shape, 'float32');
        weights.set(entry.name, isTransposed(entry.name, config.tieWordEmbeddings) ? tf.tidy(() => tf.transpose(t)) : t);
        if (weights.get(entry.name) !== t) t.dispose();
        onProgress?.({ stage: 'tensors', loaded: weights.size + vocab.size, total });
      }
      bytes = null; // this file's raw bytes can be collected before the next one arrives
    }
    const missing = [...expected.keys()].filter((k) => !weights.has(k) && !vocab.has(k));
    if (missing.length > 0) {
      throw new ModelFormatError('model weights', `${missing.length} tensor(s) that config.json requires are missing, first ${missing[0]}. The checkpoint is incomplete or belongs to another architecture.`);
    }
  } catch (e) {
    for (const t of weights.values()) t.dispose();
    for (const m of vocab.values()) m.dispose();
    throw e;
  }
  return { id: files.id, config, tokenizer, model: new LlamaModel(config, weights, vocab, halves), files };
}
