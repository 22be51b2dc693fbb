// Datasets and runs in IndexedDB (browser). A dataset is its original file (kept byte for byte) plus its
// report; both go in one transaction. A run is its settings, curves and status, updated as it trains.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { RunRecord, StoredDataset } from '../shared/types';

interface Schema extends DBSchema {
  datasets: { key: string; value: StoredDataset };
  files: { key: string; value: { id: string; blob: Blob } };
  runs: { key: string; value: RunRecord };
}

let db: Promise<IDBPDatabase<Schema>> | null = null;
function open(): Promise<IDBPDatabase<Schema>> {
  db ??= openDB<Schema>('webtune-data', 1, {
    upgrade(d) {
      d.createObjectStore('datasets', { keyPath: 'id' });
      d.createObjectStore('files', { keyPath: 'id' });
      d.createObjectStore('runs', { keyPath: 'runId' });
    },
  });
  return db;
}

export const datasetStore = {
  async add(meta: StoredDataset, blob: Blob): Promise<void> {
    const tx = (await open()).transaction(['datasets', 'files'], 'readwrite');
    await Promise.all([tx.objectStore('datasets').put(meta), tx.objectStore('files').put({ id: meta.id, blob }), tx.done]);
  },
  async list(): Promise<StoredDataset[]> {
    return (await (await open()).getAll('datasets')).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  },
  async get(id: string): Promise<StoredDataset | undefined> {
    return (await open()).get('datasets', id);
  },
  async blob(id: string): Promise<Blob | undefined> {
    return (await (await open()).get('files', id))?.blob;
  },
  /** Replace a dataset's metadata (name, report); the stored file is left as it is. */
  async update(meta: StoredDataset): Promise<void> {
    await (await open()).put('datasets', meta);
  },
  async rename(id: string, name: string): Promise<void> {
    const d = await open();
    const meta = await d.get('datasets', id);
    if (meta) await d.put('datasets', { ...meta, name });
  },
  async delete(id: string): Promise<void> {
    const tx = (await open()).transaction(['datasets', 'files'], 'readwrite');
    await Promise.all([tx.objectStore('datasets').delete(id), tx.objectStore('files').delete(id), tx.done]);
  },
};

/** Where run records are kept (an interface, so a test can hand RunRecorder a store that fails). */
export interface RunStore {
  put(run: RunRecord): Promise<void>;
  list(): Promise<RunRecord[]>;
  get(runId: string): Promise<RunRecord | undefined>;
}

export const runStore: RunStore = {
  async put(run: RunRecord): Promise<void> {
    await (await open()).put('runs', run);
  },
  async list(): Promise<RunRecord[]> {
    return (await (await open()).getAll('runs')).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  },
  async get(runId: string): Promise<RunRecord | undefined> {
    return (await open()).get('runs', runId);
  },
};
