// Everything about checkpoints, once: the format (one safetensors blob: LoRA A/B under the adapter's own
// tensor names, their Adam moments, and in its metadata the step, data position, configs and metrics), the
// store interface every host implements, the retention policy, and the one error a missing checkpoint is.
// One blob means one atomic write: a checkpoint is complete or absent.
import * as tf from '../tf';
import { CheckpointMismatchError, CheckpointNotFoundError, InvalidRequestError, ModelFormatError } from '../errors';
import { LoraAdapter, type NamedTensors } from '../lora';
import { decodeTensor, parseSafetensorsHeader, writeSafetensors } from '../safetensors';
import { DEFAULT_TRAIN } from '../../shared/defaults';
import type { CheckpointMeta, LoraConfig, RunIdentity, TrainConfig } from '../../shared/types';
import { linearShape, type ModelConfig } from '../config';
import type { LinearModule } from '../../shared/types';
import type { TokenizedExample } from './examples';
import type { AdamW } from './optimizer';

export type { CheckpointMeta, RunIdentity, TrainState } from '../../shared/types';

export interface CheckpointTensors {
  meta: CheckpointMeta;
  tensors: NamedTensors;
}

type Tensor = { name: string; shape: number[]; values: Float32Array };

const FILE = 'checkpoint';
const FORMAT = 'webtune-checkpoint-v1';
const MOMENTS = ['.adam_m', '.adam_v'] as const;

export function encodeCheckpoint(meta: CheckpointMeta, tensors: Tensor[]): Uint8Array {
  return writeSafetensors(tensors, 'F32', { format: FORMAT, meta: JSON.stringify(meta) });
}

export function decodeCheckpoint(bytes: Uint8Array): CheckpointTensors {
  const header = parseSafetensorsHeader(bytes, FILE);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const raw = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as { __metadata__?: { format?: string; meta?: string } };
  if (raw.__metadata__?.format !== FORMAT || !raw.__metadata__.meta) throw new ModelFormatError(FILE, 'is not a webtune checkpoint.');
  const meta = JSON.parse(raw.__metadata__.meta) as CheckpointMeta;
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const t of header.tensors) tensors.set(t.name, { shape: t.shape, values: decodeTensor(bytes, header, t) });
  return { meta, tensors };
}

/** FNV-1a over 32-bit words, as 8 hex digits: a fingerprint, not a security hash. */
function fnv(words: Iterable<number>, h = 0x811c9dc5): number {
  for (const w of words) h = Math.imul(h ^ (w >>> 0), 0x01000193) >>> 0;
  return h;
}
const hex = (h: number) => h.toString(16).padStart(8, '0');

/** What a run is: its base model (id and config), and its training examples as tokenized, in order. */
export function runIdentity(baseModel: string, config: ModelConfig, train: TokenizedExample[]): RunIdentity {
  const text = JSON.stringify(config);
  let data = 0x811c9dc5;
  for (const e of train) data = fnv([e.ids.length, ...e.ids, ...e.trained], data);
  return { baseModel, configHash: hex(fnv(Array.from(text, (c) => c.charCodeAt(0)))), data: hex(data), examples: train.length };
}

/** Settings a resumed run must share with its checkpoint: data order, batches, learning rate, optimizer. The
 * length may change (epochs, maxSteps: a run can be continued for longer, its schedule stretched to the new
 * end), and so may evaluation, early stopping and activation checkpointing. */
const SCHEDULE_FIELDS = ['learningRate', 'batchSize', 'gradAccum', 'maxSeqLen', 'warmupRatio', 'schedule', 'weightDecay', 'maxGradNorm', 'beta1', 'beta2', 'epsilon', 'valSplit', 'trainOn', 'seed', 'method', 'beta', 'labelSmoothing'] as const satisfies readonly (keyof TrainConfig)[];
const LORA_FIELDS = ['rank', 'alpha', 'dropout', 'targets', 'rslora'] as const satisfies readonly (keyof LoraConfig)[];

/** Refuse, naming the first field that differs, a checkpoint of another run than `identity` with `lora` and `train`. */
export function checkResumable(meta: CheckpointMeta, identity: RunIdentity, lora: LoraConfig, train: TrainConfig): void {
  const differ = (field: string, theirs: unknown, ours: unknown) => {
    if (JSON.stringify(theirs) !== JSON.stringify(ours)) throw new CheckpointMismatchError(meta.name, field, theirs, ours);
  };
  if (meta.identity) {
    differ('base model', meta.identity.baseModel, identity.baseModel);
    differ("model config (config.json's hash)", meta.identity.configHash, identity.configHash);
    differ('number of training examples', meta.identity.examples, identity.examples);
    differ('training data (fingerprint)', meta.identity.data, identity.data);
  } else differ('base model', meta.baseModel, identity.baseModel);
  for (const f of LORA_FIELDS) differ(`LoRA ${f}`, f === 'targets' ? [...meta.lora.targets].sort() : meta.lora[f], f === 'targets' ? [...lora.targets].sort() : lora[f]);
  // A checkpoint from before a field existed ran with its default (method, beta and labelSmoothing came with DPO).
  for (const f of SCHEDULE_FIELDS) differ(f, meta.train[f] ?? DEFAULT_TRAIN[f], train[f]);
}

/** The adapter and its Adam moments, read back, under the adapter's tensor names (moments suffixed). */
export async function trainingTensors(adapter: LoraAdapter, optimizer: AdamW): Promise<Tensor[]> {
  const out: Tensor[] = [];
  const named = adapter.named(); // the order of adapter.variables(), which the optimizer's moments follow
  for (let i = 0; i < named.length; i++) {
    const { name, variable } = named[i];
    out.push({ name, shape: variable.shape, values: (await variable.data()) as Float32Array });
    for (const [k, suffix] of MOMENTS.entries()) {
      const moment = (k === 0 ? optimizer.m : optimizer.v)[i];
      out.push({ name: name + suffix, shape: variable.shape, values: (await moment.data()) as Float32Array });
    }
  }
  return out;
}

/** Put a checkpoint's adapter and moments into a live adapter of the same shape (refused by name otherwise). */
export function restoreTraining({ meta, tensors }: CheckpointTensors, adapter: LoraAdapter, optimizer: AdamW): void {
  adapter.named().forEach(({ name, variable }, i) => {
    const targets = [variable, optimizer.m[i], optimizer.v[i]];
    ['', ...MOMENTS].forEach((suffix, k) => {
      const t = tensors.get(name + suffix);
      if (!t || t.shape.join() !== variable.shape.join()) throw new InvalidRequestError(`Checkpoint ${meta.name} does not match this adapter (${name}${suffix}). Resume with the same model and LoRA settings.`);
      tf.tidy(() => targets[k].assign(tf.tensor(t.values, t.shape)));
    });
  });
  optimizer.t = meta.state.adamT;
}

/** A stored checkpoint as an adapter for generation (the moments are not needed). */
/** A checkpoint's adapter for the model of `config` (loaded as `modelId`): one trained on another base whose shapes
 * do not fit is refused naming that base, never left to fail inside a matrix product. */
export function adapterFromCheckpoint(bytes: Uint8Array, config: ModelConfig, modelId: string): { adapter: LoraAdapter; meta: CheckpointMeta } {
  const { meta, tensors } = decodeCheckpoint(bytes);
  const layer = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])$/;
  for (const [name, t] of tensors) {
    const m = layer.exec(name);
    if (!m) continue;
    const [out, inF] = linearShape(config, m[2] as LinearModule);
    const want = m[3] === 'A' ? [meta.lora.rank, inF] : [out, meta.lora.rank];
    if (Number(m[1]) >= config.numLayers || t.shape.join() !== want.join()) {
      throw new CheckpointMismatchError(meta.name, 'base model', meta.baseModel, modelId, `Its adapter does not fit this model (${name} is [${t.shape.join(', ')}]${Number(m[1]) >= config.numLayers ? `, and this model has ${config.numLayers} layers` : `; this model needs [${want.join(', ')}]`}). Load ${meta.baseModel} to use it.`);
    }
  }
  return { adapter: LoraAdapter.fromNamed(meta.lora, tensors), meta };
}

/** Where checkpoints live: files in Node, IndexedDB in the browser. `save` is atomic; `load` of a name that
 * is not stored throws CheckpointNotFoundError. */
export interface CheckpointStore {
  save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void>;
  load(name: string): Promise<Uint8Array>;
  list(): Promise<CheckpointMeta[]>;
  delete(name: string): Promise<void>;
}

/** Epoch checkpoints kept per run (the newest ones), besides "best": as hosted fine-tuning services do. */
export const KEEP_EPOCH_CHECKPOINTS = 3;

/**
 * Which of a run's stored checkpoints to delete after a new one is saved: epoch checkpoints past the newest
 * KEEP_EPOCH_CHECKPOINTS. Never deleted: "best", the epoch checkpoint with the lowest validation loss, and
 * the checkpoint this run resumed from (`keep`).
 */
export function checkpointsToPrune(stored: CheckpointMeta[], runId: string, keep: ReadonlySet<string> = new Set()): string[] {
  const epochs = stored.filter((m) => m.name.startsWith('epoch-') && m.runId === runId).sort((a, b) => a.step - b.step);
  const scored = epochs.filter((m) => m.valLoss !== null && Number.isFinite(m.valLoss));
  const best = scored.length ? scored.reduce((a, b) => (b.valLoss! < a.valLoss! ? b : a)).name : null;
  return epochs
    .slice(0, Math.max(0, epochs.length - KEEP_EPOCH_CHECKPOINTS))
    .map((m) => m.name)
    .filter((name) => name !== best && !keep.has(name));
}

/** In memory, for tests and for runs that keep nothing. */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly items = new Map<string, { meta: CheckpointMeta; bytes: Uint8Array }>();
  constructor(private readonly runId = 'this run') {}
  async save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void> {
    this.items.set(meta.name, { meta, bytes: bytes.slice() });
  }
  async load(name: string): Promise<Uint8Array> {
    const item = this.items.get(name);
    if (!item) throw new CheckpointNotFoundError(name, this.runId, [...this.items.keys()]);
    return item.bytes;
  }
  async list(): Promise<CheckpointMeta[]> {
    return [...this.items.values()].map((i) => i.meta).sort((a, b) => a.step - b.step);
  }
  async delete(name: string): Promise<void> {
    this.items.delete(name);
  }
}
