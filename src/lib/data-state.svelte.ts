// Stored datasets and the one being added.
import { DEFAULT_TRAIN } from '../../workers/shared/defaults';
import { describeError, type DatasetFormat, type EngineClient, type StoredDataset } from './engine-client';
import { downloadBlob } from './download';

export class DataState {
  datasets = $state<StoredDataset[]>([]);
  selectedId = $state<string | null>(null);
  adding = $state<{ name: string; bytes: number; total: number } | null>(null);
  error = $state<string | null>(null);
  maxSeqLen = $state(DEFAULT_TRAIN.maxSeqLen);
  /** '' = detect per file; otherwise the format the user chose. */
  format = $state<'' | DatasetFormat>('');

  selected = $derived(this.datasets.find((d) => d.id === this.selectedId) ?? null);

  constructor(private readonly engine: EngineClient) {}

  async refresh(): Promise<void> {
    this.datasets = await this.engine.listDatasets();
    if (!this.selected) this.selectedId = this.datasets[this.datasets.length - 1]?.id ?? null;
  }

  async add(file: File): Promise<void> {
    this.error = null;
    this.adding = { name: file.name, bytes: 0, total: file.size };
    // Progress messages come on their own port and may arrive after the result: once it is in, they are ignored
    // (a late one used to bring back a finished "Reading … 1.4 KB / 1.4 KB" bar after an error).
    let finished = false;
    try {
      const d = await this.engine.addDataset(file, { maxSeqLen: this.maxSeqLen, format: this.format || undefined }, (p) => {
        if (!finished) this.adding = { name: file.name, ...p };
      });
      await this.refresh();
      this.selectedId = d.id;
      void navigator.storage?.persist?.(); // ask once there is something to keep; a refusal is shown, not an error
    } catch (e) {
      this.error = describeError(e).message;
    } finally {
      finished = true;
      this.adding = null;
    }
  }

  /** Recount tokens with the model now loaded. */
  async restat(): Promise<void> {
    if (!this.selectedId) return;
    await this.engine.restat(this.selectedId, this.maxSeqLen);
    await this.refresh();
  }

  /** Values for the selected dataset's {{placeholders}}; the report is redone with them in. */
  async setPlaceholders(fill: Record<string, string>): Promise<void> {
    if (!this.selectedId) return;
    this.error = null;
    try {
      await this.engine.setPlaceholders(this.selectedId, fill, this.maxSeqLen);
    } catch (e) {
      this.error = describeError(e).message;
    }
    await this.refresh();
  }

  async rename(id: string, name: string): Promise<void> {
    if (name.trim()) await this.engine.renameDataset(id, name.trim());
    await this.refresh();
  }

  async remove(id: string): Promise<void> {
    await this.engine.deleteDataset(id);
    if (this.selectedId === id) this.selectedId = null;
    await this.refresh();
  }

  /** Save the original file back to disk, byte for byte. */
  async download(d: StoredDataset): Promise<void> {
    downloadBlob(await this.engine.datasetFile(d.id), d.fileName);
  }
}
