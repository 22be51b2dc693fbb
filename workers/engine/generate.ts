// Autoregressive generation with a KV cache: one prefill over the prompt, then one token per step.
import * as tf from './tf';
import { InvalidRequestError } from './errors';
import { KVCache, type LlamaModel } from './llama';
import type { LoraAdapter } from './lora';
import { DEFAULT_GENERATE } from '../shared/defaults';
import type { GenerateOptions, StopReason } from '../shared/types';

export type { GenerateOptions, StopReason };
import { Rng, sample, type SamplingOptions } from './sampling';


export interface StepResult {
  ids: number[];
  stopReason: StopReason;
  prefillMs: number;
  decodeMs: number;
}

export function resolveOptions(o: GenerateOptions = {}): Required<GenerateOptions> {
  const r = { ...DEFAULT_GENERATE, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as Required<GenerateOptions>;
  if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 0) throw new InvalidRequestError(`maxNewTokens must be a whole number ≥ 0, got ${r.maxNewTokens}.`);
  if (!(r.temperature >= 0)) throw new InvalidRequestError(`temperature must be ≥ 0, got ${r.temperature}.`);
  if (!Number.isInteger(r.topK) || r.topK < 0) throw new InvalidRequestError(`topK must be a whole number ≥ 0, got ${r.topK}.`);
  if (!(r.topP > 0 && r.topP <= 1)) throw new InvalidRequestError(`topP must be in (0, 1], got ${r.topP}.`);
  if (!(r.loraScale >= 0 && r.loraScale <= 1)) throw new InvalidRequestError(`The LoRA scale must be between 0 and 1, got ${r.loraScale}.`);
  return r;
}

/** Last position's logits [1, V] of a forward over `ids`, appending to the cache. */
function stepLogits(model: LlamaModel, ids: number[], cache: KVCache, adapter: LoraAdapter | null, loraScale: number): tf.Tensor2D {
  return tf.tidy(() => {
    const hidden = model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'), { cache, adapter, loraScale }); // [1, T, C]
    const last = hidden.slice([0, ids.length - 1, 0], [1, 1, -1]).reshape([1, -1]); // [1, C]
    return model.logits(last) as tf.Tensor2D; // [1, V]
  });
}

async function choose(logits: tf.Tensor2D, opts: SamplingOptions, rng: Rng): Promise<number> {
  if (opts.temperature <= 0 || opts.topK === 1) {
    const idx = tf.argMax(logits, 1); // read back one integer, not the whole vocabulary
    const id = (await idx.data())[0];
    idx.dispose();
    return id;
  }
  return sample((await logits.data()) as Float32Array, opts, rng);
}

/**
 * Generate after `promptIds`, with `adapter` (if any) at the request's LoRA scale. `onToken` sees each id as
 * it is chosen; `shouldStop` is polled between tokens.
 * Every tensor allocated here is released before returning, whatever the outcome.
 */
export async function generateIds(
  model: LlamaModel,
  promptIds: number[],
  eosIds: number[],
  options: GenerateOptions,
  onToken: (id: number) => void,
  shouldStop: () => boolean,
  adapter: LoraAdapter | null = null,
): Promise<StepResult> {
  const o = resolveOptions(options);
  if (promptIds.length === 0) throw new InvalidRequestError('The prompt is empty: give at least one token.');
  const bad = promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= model.config.vocabSize);
  if (bad !== undefined) throw new InvalidRequestError(`Token id ${bad} is outside the vocabulary (0..${model.config.vocabSize - 1}).`);
  const room = model.config.maxPositions - promptIds.length;
  if (room <= 0) throw new InvalidRequestError(`The prompt has ${promptIds.length} tokens; this model reads at most ${model.config.maxPositions}. Shorten it.`);
  const maxNew = Math.min(o.maxNewTokens, room);
  const rng = new Rng(o.seed);
  const eos = new Set(eosIds);
  const cache = new KVCache(model.config.numLayers);
  const ids: number[] = [];
  let stopReason: StopReason = 'length';
  const t0 = performance.now();
  let t1 = t0;
  try {
    let input = promptIds;
    while (ids.length < maxNew) {
      if (shouldStop()) {
        stopReason = 'stopped';
        break;
      }
      const logits = stepLogits(model, input, cache, adapter, o.loraScale);
      let id: number;
      try {
        id = await choose(logits, o, rng);
      } finally {
        logits.dispose();
      }
      if (ids.length === 0) t1 = performance.now();
      ids.push(id);
      onToken(id);
      if (eos.has(id)) {
        stopReason = 'eos';
        break;
      }
      input = [id];
    }
  } finally {
    cache.dispose();
  }
  const end = performance.now();
  return { ids, stopReason, prefillMs: t1 - t0, decodeMs: end - t1 };
}

/** Reference check for tests: logits of every position of `ids` without a cache. */
export function fullLogits(model: LlamaModel, ids: number[], adapter: LoraAdapter | null = null): tf.Tensor2D {
  return tf.tidy(() => model.logits(model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'), { adapter })).reshape([ids.length, -1]) as tf.Tensor2D);
}

/**
 * Text generated so far, cut at a textual stop marker: what may be shown (never a tail that could be the
 * marker's start), and whether the marker has appeared.
 */
export function cutAtStopText(full: string, stop: string): { text: string; stopped: boolean } {
  const at = full.indexOf(stop);
  if (at >= 0) return { text: full.slice(0, at), stopped: true };
  for (let k = Math.min(stop.length - 1, full.length); k > 0; k--) if (stop.startsWith(full.slice(-k))) return { text: full.slice(0, -k), stopped: false };
  return { text: full, stopped: false };
}
