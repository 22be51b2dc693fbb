// A checkpoint is one safetensors blob: LoRA A/B, Adam moments, and (in its metadata) the step, data
// position, configs and metrics. One blob means one atomic write: a checkpoint is complete or absent.
import { ModelFormatError } from '../errors';
import type { LoraConfig } from '../lora';
import { decodeTensor, parseSafetensorsHeader, writeSafetensors } from '../safetensors';
import type { TrainConfig } from './config';

export interface TrainState {
  step: number; // optimizer steps completed; data order and dropout follow from it and the seed
  adamT: number;
  bestValLoss: number | null;
  evalsWithoutImprovement: number;
}

export interface CheckpointMeta {
  name: string;
  runId: string;
  step: number;
  epoch: number; // fractional epochs completed
  trainLoss: number | null;
  valLoss: number | null;
  createdAt: string;
  baseModel: string;
  lora: LoraConfig;
  train: TrainConfig;
  state: TrainState;
}

export interface CheckpointTensors {
  meta: CheckpointMeta;
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
}

const FILE = 'checkpoint';

export function encodeCheckpoint(meta: CheckpointMeta, tensors: { name: string; shape: number[]; values: Float32Array }[]): Uint8Array {
  return writeSafetensors(tensors, 'F32', { format: 'webtune-checkpoint-v1', meta: JSON.stringify(meta) });
}

export function decodeCheckpoint(bytes: Uint8Array): CheckpointTensors {
  const header = parseSafetensorsHeader(bytes, FILE);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const raw = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as { __metadata__?: { format?: string; meta?: string } };
  if (raw.__metadata__?.format !== 'webtune-checkpoint-v1' || !raw.__metadata__.meta) throw new ModelFormatError(FILE, 'is not a webtune checkpoint.');
  const meta = JSON.parse(raw.__metadata__.meta) as CheckpointMeta;
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const t of header.tensors) tensors.set(t.name, { shape: t.shape, values: decodeTensor(bytes, header, t) });
  return { meta, tensors };
}

/** Where checkpoints live: files in Node, IndexedDB in the browser. `save` is atomic. */
export interface CheckpointStore {
  save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void>;
  load(name: string): Promise<Uint8Array>;
  list(): Promise<CheckpointMeta[]>;
  delete(name: string): Promise<void>;
}

/** Epoch checkpoints kept per run (the newest ones), besides "best": as hosted fine-tuning services do. */
export const KEEP_EPOCH_CHECKPOINTS = 3;

/** In memory, for tests and for runs that keep nothing. */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly items = new Map<string, { meta: CheckpointMeta; bytes: Uint8Array }>();
  async save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void> {
    this.items.set(meta.name, { meta, bytes: bytes.slice() });
  }
  async load(name: string): Promise<Uint8Array> {
    const item = this.items.get(name);
    if (!item) throw new ModelFormatError(`checkpoint ${name}`, 'does not exist.');
    return item.bytes;
  }
  async list(): Promise<CheckpointMeta[]> {
    return [...this.items.values()].map((i) => i.meta).sort((a, b) => a.step - b.step);
  }
  async delete(name: string): Promise<void> {
    this.items.delete(name);
  }
}
