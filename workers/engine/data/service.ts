// The browser's dataset and run service, next to the engine in the worker: parse dropped files off the UI
// thread (streamed, with progress), keep them in IndexedDB, and train on a stored dataset while recording
// the run's curves so they survive a reload.
import { splitIndices } from '../train/split';
import { DEFAULT_LORA, DEFAULT_TRAIN, type Engine, type EvalRow, type LoraConfig, type TrainConfig, type TrainRequest, type TrainResult } from '../engine';
import { InvalidRequestError } from '../errors';
import { isQuotaError } from '../source';
import type { TrainEvent } from '../train/trainer';
import { tokenizeExample, type TrainOn } from '../train/examples';
import { addTokenStats, loadDataset, loadRecords, type LoadedDataset } from './dataset';
import type { DatasetFormat } from './formats';
import { DatasetDecoder, isJsonArrayFile, JsonlReader, readJsonArray, textEncoding, type RawRecord, type TextEncodingName } from './records';
import { datasetStore, runStore, type RunRecord, type StoredDataset } from './store';

export type { RunRecord, StoredDataset };

export interface ParseProgress {
  bytes: number;
  total: number;
}

/** One example as the model sees it: runs of text that are trained or not, and what truncation cuts. */
export interface PreviewExample {
  line: number;
  tokens: number;
  pieces: { text: string; trained: boolean; cut: boolean }[];
}

export interface TrainOnDatasetRequest extends Omit<TrainRequest, 'examples' | 'validation'> {
  datasetId: string;
  validationDatasetId?: string;
}

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

export class DatasetService {
  private activeRun: string | null = null;
  private stopEval = false;

  constructor(private readonly engine: Engine) {}

  private async parse(blob: Blob, name: string, format: DatasetFormat | undefined, maxSeqLen: number, onProgress?: (p: ParseProgress) => void): Promise<LoadedDataset> {
    const { records, lossy, encoding } = await readBlob(blob, name, onProgress);
    const data = loadRecords(records, format, { lossy, encoding });
    const tokenizer = this.engine.info() ? this.engine.current.tokenizer : null;
    if (tokenizer) addTokenStats(data, tokenizer, maxSeqLen);
    return data;
  }

  /** Parse, report and store a dropped file. The original bytes are kept unchanged. */
  async addDataset(file: File, options: { format?: DatasetFormat; maxSeqLen?: number } = {}, onProgress?: (p: ParseProgress) => void): Promise<StoredDataset> {
    const data = await this.parse(file, file.name, options.format, options.maxSeqLen ?? 512, onProgress);
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

  /** The original file, byte for byte. */
  async datasetFile(id: string): Promise<Blob> {
    const blob = await datasetStore.blob(id);
    if (!blob) throw new InvalidRequestError('That dataset is no longer stored.');
    return blob;
  }

  /** Recount tokens with the loaded model (after a model change or a new maximum length). */
  async restat(id: string, maxSeqLen: number): Promise<StoredDataset> {
    const meta = await datasetStore.get(id);
    if (!meta) throw new InvalidRequestError('That dataset is no longer stored.');
    const data = await this.parse(await this.datasetFile(id), meta.fileName, meta.forcedFormat, maxSeqLen);
    const updated = { ...meta, report: data.report };
    await datasetStore.update(updated); // only the report changes; the original file is not written again
    return updated;
  }

  /** The last dataset parsed for preview, estimates, evaluation or training: paging must not re-parse the file. */
  private parsed: { id: string; meta: StoredDataset; data: LoadedDataset } | null = null;

  private async examples(id: string): Promise<{ meta: StoredDataset; data: LoadedDataset }> {
    const meta = await datasetStore.get(id);
    if (!meta) throw new InvalidRequestError('That dataset is no longer stored.');
    if (this.parsed?.id === id && this.parsed.meta.forcedFormat === meta.forcedFormat) return { meta, data: this.parsed.data };
    const text = await (await this.datasetFile(id)).text();
    const data = loadDataset(meta.fileName, text, meta.forcedFormat);
    this.parsed = { id, meta, data };
    return { meta, data };
  }

  /** How long training on this dataset would take here: its tokens × epochs ÷ tokens/s measured now. */
  async estimateTraining(id: string, train: Partial<TrainConfig>, lora: Partial<LoraConfig>): Promise<{ tokensPerSecond: number; tokens: number; seconds: number }> {
    const { data } = await this.examples(id);
    const examples = data.examples.map((e) => e.example);
    const tokensPerSecond = await this.engine.measureTrainingSpeed(examples, train, lora);
    const maxLen = train.maxSeqLen ?? DEFAULT_TRAIN.maxSeqLen;
    const tok = this.engine.current.tokenizer;
    const perEpoch = examples.reduce((n, e) => n + Math.min(maxLen, tokenizeExample(tok, e, Number.MAX_SAFE_INTEGER, train.trainOn ?? 'assistant').ids.length), 0);
    const tokens = perEpoch * (1 - (train.valSplit ?? DEFAULT_TRAIN.valSplit)) * (train.epochs ?? DEFAULT_TRAIN.epochs);
    return { tokensPerSecond, tokens: Math.round(tokens), seconds: tokens / tokensPerSecond };
  }

  /**
   * Held-out examples through the base and tuned models, row by row. With `split`, the validation part of
   * the dataset as a run with that split and seed saw it; otherwise the dataset's first examples.
   */
  async evaluateDataset(req: { datasetId: string; split?: { valSplit: number; seed: number }; limit: number; maxNewTokens: number }, onRow: (row: EvalRow) => void): Promise<number> {
    const { data } = await this.examples(req.datasetId);
    const all = data.examples.map((e) => e.example);
    let chosen = all;
    if (req.split && req.split.valSplit > 0) chosen = splitIndices(all.length, req.split.valSplit, req.split.seed).val.map((i) => all[i]);
    chosen = chosen.filter((e) => 'messages' in e).slice(0, req.limit);
    this.stopEval = false;
    for (let i = 0; i < chosen.length && !this.stopEval; i++) onRow(await this.engine.evaluateExample(chosen[i], i, req.maxNewTokens));
    return chosen.length;
  }

  stopEvaluation(): void {
    this.stopEval = true;
    this.engine.stop();
  }

  /** A page of examples rendered with the loaded model's chat template and tokenizer. */
  async previewDataset(id: string, offset: number, count: number, maxSeqLen: number, trainOn: TrainOn = 'assistant'): Promise<{ total: number; items: PreviewExample[] }> {
    if (!this.engine.info()) throw new InvalidRequestError('Load a model to preview examples with its chat template.');
    const tok = this.engine.current.tokenizer;
    const { data } = await this.examples(id);
    const items = data.examples.slice(offset, offset + count).map(({ line, example }) => {
      const t = tokenizeExample(tok, example, Number.MAX_SAFE_INTEGER, trainOn);
      const pieces: PreviewExample['pieces'] = [];
      const flag = (i: number) => `${t.trained[i]}${i >= maxSeqLen ? 1 : 0}`;
      let start = 0;
      for (let i = 1; i <= t.ids.length; i++) {
        if (i === t.ids.length || flag(i) !== flag(start)) {
          pieces.push({ text: tok.decode(t.ids.slice(start, i), false), trained: t.trained[start] === 1, cut: start >= maxSeqLen });
          start = i;
        }
      }
      return { line, tokens: t.ids.length, pieces };
    });
    return { total: data.examples.length, items };
  }

  /** Past runs. One still marked running that is not training here was cut off (tab closed or reloaded). */
  async listRuns(): Promise<RunRecord[]> {
    return (await runStore.list()).map((r) => ((r.status === 'running' || r.status === 'paused') && r.runId !== this.activeRun ? { ...r, status: 'interrupted' } : r));
  }

  /** Train on a stored dataset; the run's settings and curves are kept in IndexedDB as it goes. */
  async trainOnDataset(req: TrainOnDatasetRequest, onEvent: (e: TrainEvent) => void = () => {}): Promise<TrainResult> {
    const { meta, data } = await this.examples(req.datasetId);
    const validation = req.validationDatasetId ? (await this.examples(req.validationDatasetId)).data.examples.map((e) => e.example) : undefined;
    const info = this.engine.info();
    if (!info) throw new InvalidRequestError('Load a model before training.');
    const runId = req.runId ?? `run-${Date.now().toString(36)}`;
    const existing = req.resumeFrom ? await runStore.get(runId) : undefined;
    const run: RunRecord = existing ?? {
      runId,
      datasetId: req.datasetId,
      datasetName: meta.name,
      baseModel: info.id,
      createdAt: new Date().toISOString(),
      lora: { ...DEFAULT_LORA, ...req.lora },
      train: { ...DEFAULT_TRAIN, ...req.train },
      status: 'running',
      totalSteps: 0,
      points: [],
      evals: [],
    };
    if (existing) {
      const from = (await this.engine.listCheckpoints(runId)).find((c) => c.name === req.resumeFrom);
      run.points = run.points.filter((p) => p.step <= (from?.step ?? 0));
      run.evals = run.evals.filter((e) => e.step <= (from?.step ?? 0));
    }
    run.status = 'running';
    run.error = undefined;
    try {
      await runStore.put(run);
    } catch (e) {
      if (!isQuotaError(e)) throw e;
      // Storage full: train anyway, from memory; the user hears what will not be kept.
      onEvent({ type: 'warning', message: "This run's settings and curve are not being kept: this site's storage is full. Training goes on; delete cached models, runs or datasets to make room." });
    }
    this.activeRun = runId;
    let saving = Promise.resolve();
    let saveError: unknown = null;
    // Curves are kept as the run goes; if storage is full they stay in memory only (checkpoints say why).
    const save = () =>
      (saving = saving
        .then(() => runStore.put(run))
        .catch((e) => {
          if (!isQuotaError(e)) saveError ??= e;
        }));
    try {
      const result = await this.engine.train({ ...req, runId, examples: data.examples.map((e) => e.example), validation }, (e) => {
        if (e.type === 'steps') {
          run.points.push(...e.points);
          run.totalSteps = e.totalSteps;
        } else if (e.type === 'eval') run.evals.push({ step: e.step, valLoss: e.valLoss, perplexity: e.perplexity, accuracy: e.accuracy });
        else if (e.type === 'status') run.status = e.status;
        void save();
        onEvent(e);
      });
      run.status = result.status;
      return result;
    } catch (e) {
      run.status = 'failed';
      run.error = (e as Error).message;
      throw e;
    } finally {
      this.activeRun = null;
      await save();
    }
    if (saveError) throw saveError;
  }
}
