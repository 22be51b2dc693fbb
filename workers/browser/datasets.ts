// The browser's dataset library, next to the engine in the worker: parse dropped files off the UI thread
// (streamed, with progress), keep them in IndexedDB with their reports, page through them as the loaded
// model sees them, and hand their examples to evaluation, estimates and training.
import type { Engine } from '../engine/engine';
import { InvalidRequestError } from '../engine/errors';
import { isQuotaError } from '../engine/source';
import { tokenizeExample, tokenizePair, type Example, type TokenizedExample } from '../engine/train/examples';
import { addTokenStats, loadDataset, loadRecords, type LoadedDataset } from '../engine/data/dataset';
import { DatasetDecoder, isJsonArrayFile, JsonlReader, readJsonArray, textEncoding, type RawRecord, type TextEncodingName } from '../engine/data/records';
import { DEFAULT_TRAIN } from '../shared/defaults';
import type { DatasetFormat, ParseProgress, PreviewExample, StoredDataset, TrainOn } from '../shared/types';
import { datasetStore } from './store';

async function readBlob(blob: Blob, name: string, onProgress?: (p: ParseProgress) => void): Promise<{ records: RawRecord[]; lossy: boolean; encoding: TextEncodingName }> {
  const total = blob.size;
  const headBytes = new Uint8Array(await blob.slice(0, 64).arrayBuffer());
  const encoding = textEncoding(name, headBytes);
  const decoder = new DatasetDecoder(encoding);
  const head = new DatasetDecoder(encoding).decode(headBytes, true);
  if (isJsonArrayFile(name, head)) {
    const text = decoder.decode(new Uint8Array(await blob.arrayBuffer()));
    onProgress?.({ bytes: total, total });
    return { records: readJsonArray(text), lossy: decoder.lossy, encoding };
  }
  const out: RawRecord[] = [];
  const reader = new JsonlReader();
  const stream = blob.stream().getReader();
  let bytes = 0;
  let lastReport = 0;
  for (;;) {
    const { done, value } = await stream.read();
    if (done) break;
    bytes += value.byteLength;
    reader.push(decoder.decode(value, true), out);
    if (bytes - lastReport > 1 << 20 || bytes === total) {
      onProgress?.({ bytes, total });
      lastReport = bytes;
    }
  }
  reader.push(decoder.decode(), out);
  reader.end(out);
  onProgress?.({ bytes: total, total });
  return { records: out, lossy: decoder.lossy, encoding };
}

export class DatasetLibrary {
  /** The last dataset parsed for preview, estimates, evaluation or training: paging must not re-parse the file. */
  private parsed: { id: string; meta: StoredDataset; data: LoadedDataset } | null = null;

  constructor(private readonly engine: Engine) {}

  private async parse(blob: Blob, name: string, format: DatasetFormat | undefined, maxSeqLen: number, onProgress?: (p: ParseProgress) => void, fill?: Record<string, string>): Promise<LoadedDataset> {
    const { records, lossy, encoding } = await readBlob(blob, name, onProgress);
    const data = loadRecords(records, format, { lossy, encoding }, fill);
    const info = this.engine.info();
    if (info) {
      addTokenStats(data, this.engine.current.tokenizer, maxSeqLen);
      data.report.tokens!.tokenizer = info.id;
    }
    return data;
  }

  async addDataset(file: File, options: { format?: DatasetFormat; maxSeqLen?: number } = {}, onProgress?: (p: ParseProgress) => void): Promise<StoredDataset> {
    const data = await this.parse(file, file.name, options.format, options.maxSeqLen ?? DEFAULT_TRAIN.maxSeqLen, onProgress);
    if (data.report.valid === 0) {
      const first = data.report.errors.slice(0, 3).map((f) => `line ${f.line}: ${f.code}: ${f.message}`);
      const more = data.report.errors.length > 3 ? ` (and ${data.report.errors.length - 3} more)` : '';
      throw new InvalidRequestError(`${file.name} has no usable example, so it was not added. ${first.join(' ')}${more}${data.report.records === 0 ? 'The file is empty.' : ''}`);
    }
    const meta: StoredDataset = {
      id: `ds-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`,
      name: file.name.replace(/\.(jsonl?|json)$/i, ''),
      fileName: file.name,
      size: file.size,
      createdAt: new Date().toISOString(),
      ...(options.format ? { forcedFormat: options.format } : {}),
      report: data.report,
    };
    try {
      await datasetStore.add(meta, file);
    } catch (e) {
      if (!isQuotaError(e)) throw e;
      throw new InvalidRequestError(`${file.name} was not stored: this site's storage is full. Nothing already stored was changed; delete cached models, runs or datasets to make room, then add it again.`);
    }
    return meta;
  }

  listDatasets(): Promise<StoredDataset[]> {
    return datasetStore.list();
  }

  renameDataset(id: string, name: string): Promise<void> {
    return datasetStore.rename(id, name);
  }

  deleteDataset(id: string): Promise<void> {
    if (this.parsed?.id === id) this.parsed = null;
    return datasetStore.delete(id);
  }

  async datasetFile(id: string): Promise<Blob> {
    const blob = await datasetStore.blob(id);
    if (!blob) throw new InvalidRequestError('That dataset is no longer stored.');
    return blob;
  }

  async restat(id: string, maxSeqLen: number): Promise<StoredDataset> {
    const meta = await datasetStore.get(id);
    if (!meta) throw new InvalidRequestError('That dataset is no longer stored.');
    const data = await this.parse(await this.datasetFile(id), meta.fileName, meta.forcedFormat, maxSeqLen, undefined, meta.fill);
    const updated = { ...meta, report: data.report };
    await datasetStore.update(updated); // only the report changes; the original file is not written again
    return updated;
  }

  async setPlaceholders(id: string, fill: Record<string, string>, maxSeqLen: number): Promise<StoredDataset> {
    const meta = await datasetStore.get(id);
    if (!meta) throw new InvalidRequestError('That dataset is no longer stored.');
    const kept = Object.fromEntries(Object.entries({ ...meta.fill, ...fill }).filter(([, v]) => v !== ''));
    await datasetStore.update({ ...meta, fill: kept });
    if (this.parsed?.id === id) this.parsed = null; // its examples change
    return this.restat(id, maxSeqLen);
  }

  /** A stored dataset, parsed (once while it stays the one in use). */
  async load(id: string): Promise<{ meta: StoredDataset; data: LoadedDataset }> {
    const meta = await datasetStore.get(id);
    if (!meta) throw new InvalidRequestError('That dataset is no longer stored.');
    if (this.parsed?.id === id && this.parsed.meta.forcedFormat === meta.forcedFormat) return { meta, data: this.parsed.data };
    const text = await (await this.datasetFile(id)).text();
    const data = loadDataset(meta.fileName, text, meta.forcedFormat, meta.fill);
    this.parsed = { id, meta, data };
    return { meta, data };
  }

  /** A stored dataset's examples, in file order. */
  async examples(id: string): Promise<Example[]> {
    return (await this.load(id)).data.examples.map((e) => e.example);
  }

  async previewDataset(id: string, offset: number, count: number, maxSeqLen: number, trainOn: TrainOn = 'assistant'): Promise<{ total: number; items: PreviewExample[] }> {
    if (!this.engine.info()) throw new InvalidRequestError('Load a model to preview examples with its chat template.');
    const tok = this.engine.current.tokenizer;
    const { data } = await this.load(id);
    // Runs of tokens that are alike (trained or not, cut or not), decoded.
    const piecesOf = (t: TokenizedExample): PreviewExample['pieces'] => {
      const pieces: PreviewExample['pieces'] = [];
      const flag = (i: number) => `${t.trained[i]}${i >= maxSeqLen ? 1 : 0}`;
      let start = 0;
      for (let i = 1; i <= t.ids.length; i++) {
        if (i === t.ids.length || flag(i) !== flag(start)) {
          pieces.push({ text: tok.decode(t.ids.slice(start, i), false), trained: t.trained[start] === 1, cut: start >= maxSeqLen });
          start = i;
        }
      }
      return pieces;
    };
    const items = data.examples.slice(offset, offset + count).map(({ line, example }): PreviewExample => {
      if ('chosen' in example) {
        const p = tokenizePair(tok, example, Number.MAX_SAFE_INTEGER);
        return { line, tokens: p.chosen.ids.length, pieces: piecesOf(p.chosen), rejected: { tokens: p.rejected.ids.length, pieces: piecesOf(p.rejected) } };
      }
      const t = tokenizeExample(tok, example, Number.MAX_SAFE_INTEGER, trainOn);
      return { line, tokens: t.ids.length, pieces: piecesOf(t) };
    });
    return { total: data.examples.length, items };
  }
}
