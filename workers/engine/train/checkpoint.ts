// Everything about checkpoints, once: the format (one safetensors blob: LoRA A/B under the adapter's own
// tensor names, their Adam moments, and in its metadata the step, data position, configs and metrics), the
// store interface every host implements, the retention policy, and the one error a missing checkpoint is.
// One blob means one atomic write: a checkpoint is complete or absent.
import * as tf from '../tf';
import { CheckpointNotFoundError, InvalidRequestError, ModelFormatError } from '../errors';
import { LoraAdapter, type NamedTensors } from '../lora';
import { decodeTensor, parseSafetensorsHeader, writeSafetensors } from '../safetensors';
import type { CheckpointMeta } from '../../shared/types';
import type { AdamW } from './optimizer';

export type { CheckpointMeta, TrainState } from '../../shared/types';

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
export function adapterFromCheckpoint(bytes: Uint8Array): LoraAdapter {
  const { meta, tensors } = decodeCheckpoint(bytes);
  return LoraAdapter.fromNamed(meta.lora, tensors);
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
 * KEEP_EPOCH_CHECKPOINTS. "best" and the checkpoint this run resumed from (`keep`) are never deleted.
 */
export function checkpointsToPrune(stored: CheckpointMeta[], runId: string, keep: ReadonlySet<string> = new Set()): string[] {
  const epochs = stored.filter((m) => m.name.startsWith('epoch-') && m.runId === runId && !keep.has(m.name)).sort((a, b) => a.step - b.step);
  return epochs.slice(0, Math.max(0, epochs.length - KEEP_EPOCH_CHECKPOINTS)).map((m) => m.name);
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
