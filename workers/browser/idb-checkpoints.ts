// Checkpoints in IndexedDB (browser). One put in one transaction: a checkpoint is stored whole or not at all.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { CheckpointNotFoundError } from '../engine/errors';
import { decodeCheckpoint, type CheckpointMeta, type CheckpointStore } from '../engine/train/checkpoint';

interface Schema extends DBSchema {
  checkpoints: { key: [string, string]; value: { runId: string; name: string; meta: CheckpointMeta; bytes: Uint8Array }; indexes: { runId: string } };
}

let db: Promise<IDBPDatabase<Schema>> | null = null;
function open(): Promise<IDBPDatabase<Schema>> {
  db ??= openDB<Schema>('webtune-checkpoints', 1, {
    upgrade(d) {
      d.createObjectStore('checkpoints', { keyPath: ['runId', 'name'] }).createIndex('runId', 'runId');
    },
  });
  return db;
}

export class IdbCheckpointStore implements CheckpointStore {
  constructor(private readonly runId: string) {}

  async save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void> {
    const d = await open();
    const tx = d.transaction('checkpoints', 'readwrite');
    await Promise.all([tx.store.put({ runId: this.runId, name: meta.name, meta, bytes }), tx.done]);
  }

  async load(name: string): Promise<Uint8Array> {
    const d = await open();
    const item = await d.get('checkpoints', [this.runId, name]);
    if (!item) {
      const stored = (await d.getAllKeysFromIndex('checkpoints', 'runId', this.runId)).map(([, n]) => n);
      throw new CheckpointNotFoundError(name, `run ${this.runId}`, stored.sort());
    }
    decodeCheckpoint(item.bytes); // refuse a damaged blob here rather than half-way through a restore
    return item.bytes;
  }

  async list(): Promise<CheckpointMeta[]> {
    const items = await (await open()).getAllFromIndex('checkpoints', 'runId', this.runId);
    return items.map((i) => i.meta).sort((a, b) => a.step - b.step);
  }

  async delete(name: string): Promise<void> {
    await (await open()).delete('checkpoints', [this.runId, name]);
  }
}
