// The merged model: base + s·B·A folded into every adapted weight, written as a Hugging Face folder that
// transformers and webtune load like any other (config.json, tokenizer files, generation_config.json,
// model.safetensors, or shards with their index). Tensors are made and written one at a time.
import * as tf from '../tf';
import { expectedTensors } from '../config';
import { InvalidRequestError } from '../errors';
import type { LoadedModel } from '../load';
import type { LoraAdapter } from '../lora';
import { DTYPE_BYTES, encodeValues, safetensorsPrefix, type DType } from '../safetensors';
import { writeWhole, type ExportProgress, type FolderSink } from './sink';
import { MERGED_DTYPES } from '../../shared/defaults';

/** One weight as the checkpoint names and shapes it, in float32. */
export interface CheckpointTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** A merged model or GGUF file writes the base's values: refuse a base held in int8/int4, whose values are rounded. */
export function assertExactBase(loaded: LoadedModel): void {
  const lossy = loaded.model.packedFormats.filter((f) => f === 'int8' || f === 'int4');
  if (lossy.length > 0) throw new InvalidRequestError(`The base model is loaded with its weights in ${lossy.join('/')}, which rounds them; a merged model would carry that rounding. Load it again with the weights in float32 or 16-bit (the file's own values), then export. The adapter itself exports as it is.`);
}

/** Every tensor of the model in `expectedTensors` order, as the checkpoint stores it, with
 * `loraScale`·alpha/r·B·A added to each weight the adapter targets. One tensor is on the CPU at a time. */
export async function* mergedTensors(loaded: LoadedModel, adapter: LoraAdapter | null, loraScale = 1): AsyncGenerator<CheckpointTensor> {
  const s = adapter ? adapter.scale * loraScale : 0;
  for (const [name, shape] of expectedTensors(loaded.config)) {
    const pair = adapter && s !== 0 && name.endsWith('.weight') ? adapter.modules.get(name.slice(0, -'.weight'.length)) : undefined;
    // W [out, in] + s · B [out, r] · A [r, in]
    const merge = pair ? (w: tf.Tensor) => tf.add(w, tf.mul(tf.matMul(pair.B, pair.A), s)) : undefined;
    yield { name, shape, values: await loaded.model.checkpointValues(name, merge) };
  }
}

export { MERGED_DTYPES };
const TORCH_DTYPE: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
/** transformers writes shards of at most 5 GB; 2 GiB keeps each file inside every tool's 32-bit limits. */
export const DEFAULT_SHARD_BYTES = 2 * 1024 ** 3;
const INDEX = 'model.safetensors.index.json';
/** Files besides the weights that a model folder carries over as they are, when the base has them. */
const CARRIED = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'generation_config.json'];

export interface MergedOptions {
  dtype?: DType;
  loraScale?: number;
  shardBytes?: number;
}

/** Tensors grouped into shards of at most `limit` bytes, in order (a tensor larger than the limit is a shard alone). */
function planShards(entries: { name: string; shape: number[] }[], dtype: DType, limit: number): { name: string; shape: number[] }[][] {
  const shards: { name: string; shape: number[] }[][] = [[]];
  let bytes = 0;
  for (const e of entries) {
    const size = e.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (bytes > 0 && bytes + size > limit) {
      shards.push([]);
      bytes = 0;
    }
    shards[shards.length - 1].push(e);
    bytes += size;
  }
  return shards;
}

/** The base's config.json with the dtype written; every other field is the base's own. */
async function mergedConfig(loaded: LoadedModel, dtype: DType): Promise<Uint8Array> {
  const config = JSON.parse(new TextDecoder().decode(await loaded.files.read('config.json'))) as Record<string, unknown>;
  config.torch_dtype = TORCH_DTYPE[dtype]; // transformers v4's name …
  if ('dtype' in config) config.dtype = TORCH_DTYPE[dtype]; // … and v5's
  return new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n');
}

/** Write the merged model into `out`. Returns the names of the files written. */
export async function writeMergedFolder(loaded: LoadedModel, adapter: LoraAdapter | null, out: FolderSink, options: MergedOptions = {}, onProgress?: ExportProgress): Promise<string[]> {
  assertExactBase(loaded);
  const dtype = options.dtype ?? 'F32';
  if (!(MERGED_DTYPES as readonly string[]).includes(dtype)) throw new InvalidRequestError(`The merged model's dtype must be one of ${MERGED_DTYPES.join(', ')}, got "${dtype}".`);
  const entries = [...expectedTensors(loaded.config)].map(([name, shape]) => ({ name, shape }));
  const shards = planShards(entries, dtype, options.shardBytes ?? DEFAULT_SHARD_BYTES);
  const shardName = (i: number) => (shards.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const written: string[] = [];

  await writeWhole(out, 'config.json', await mergedConfig(loaded, dtype));
  written.push('config.json');
  for (const name of CARRIED) {
    const bytes = await loaded.files.read(name, { optional: true });
    if (!bytes) continue;
    await writeWhole(out, name, bytes);
    written.push(name);
  }

  const tensors = mergedTensors(loaded, adapter, options.loraScale ?? 1);
  const weightMap: Record<string, string> = {};
  let totalBytes = 0;
  let done = 0;
  for (let i = 0; i < shards.length; i++) {
    const { prefix, dataBytes } = safetensorsPrefix(shards[i], dtype);
    const file = await out.file(shardName(i));
    await file.write(prefix);
    for (const planned of shards[i]) {
      const t = (await tensors.next()).value as CheckpointTensor;
      if (t.name !== planned.name) throw new Error(`export order: expected ${planned.name}, got ${t.name}`);
      await file.write(encodeValues(t.values, dtype));
      weightMap[t.name] = shardName(i);
      onProgress?.(++done, entries.length);
    }
    await file.close();
    totalBytes += dataBytes;
    written.push(shardName(i));
  }
  if (shards.length > 1) {
    const index = { metadata: { total_size: totalBytes }, weight_map: weightMap };
    await writeWhole(out, INDEX, new TextEncoder().encode(JSON.stringify(index, null, 2) + '\n'));
    written.push(INDEX);
  }
  return written;
}
