// The UI's handle on the engine worker. Callbacks cross the worker boundary as comlink proxies.
import * as Comlink from 'comlink';
import type { WorkerApi } from '../../workers/engine.worker';
import type { AdapterInfo, EvalRow, CheckpointMeta, GenerateInput, GenerateOptions, GenerateResult, LoadOptions, LoadProgress, LoraConfig, ModelInfo, ModelSource, TokenEvent, TrainConfig, TrainEvent, TrainResult } from '../../workers/engine/engine';
import type { HubAccess } from '../../workers/engine/source';
import type { ParseProgress, PreviewExample, RunRecord, StoredDataset, TrainOnDatasetRequest } from '../../workers/engine/data/service';

export type { PreviewExample };
export type { AdapterInfo, EvalRow, CheckpointMeta, GenerateInput, GenerateOptions, GenerateResult, HubAccess, LoadOptions, LoadProgress, LoraConfig, ModelInfo, ModelSource, ParseProgress, RunRecord, StoredDataset, TokenEvent, TrainConfig, TrainEvent, TrainOnDatasetRequest, TrainResult };
export type { DatasetReport, TokenStats } from '../../workers/engine/data/dataset';
export type { DatasetFormat, Finding } from '../../workers/engine/data/formats';
import type { DatasetFormat } from '../../workers/engine/data/formats';
export type { ChatMessage } from '../../workers/engine/tokenizer';
import type { TemplateChoice } from '../../workers/engine/tokenizer';
export type { TemplateChoice };

export class EngineClient {
  private readonly worker: Worker;
  private readonly remote: Comlink.Remote<WorkerApi>;

  constructor() {
    this.worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'webtune-engine' });
    this.remote = Comlink.wrap<WorkerApi>(this.worker);
  }

  load(source: ModelSource, options: LoadOptions, onProgress: (p: LoadProgress) => void): Promise<ModelInfo> {
    return this.remote.load(source, options, Comlink.proxy(onProgress));
  }

  generate(input: GenerateInput, options: GenerateOptions, onToken: (t: TokenEvent) => void): Promise<GenerateResult> {
    return this.remote.generate(input, options, Comlink.proxy(onToken));
  }

  /** `onLost` hears, with a message for the user, when the GPU device under the loaded model is lost. */
  watchDeviceLoss(onLost: (message: string, name: string) => void): Promise<void> {
    return this.remote.watchDeviceLoss(Comlink.proxy(onLost));
  }

  stop(): Promise<void> {
    return this.remote.stop();
  }

  addDataset(file: File, options: { maxSeqLen: number; format?: DatasetFormat }, onProgress: (p: ParseProgress) => void): Promise<StoredDataset> {
    return this.remote.addDataset(file, options, Comlink.proxy(onProgress));
  }
  listDatasets = () => this.remote.listDatasets();
  renameDataset = (id: string, name: string) => this.remote.renameDataset(id, name);
  deleteDataset = (id: string) => this.remote.deleteDataset(id);
  datasetFile = (id: string) => this.remote.datasetFile(id);
  restat = (id: string, maxSeqLen: number) => this.remote.restat(id, maxSeqLen);
  previewDataset = (id: string, offset: number, count: number, maxSeqLen: number) => this.remote.previewDataset(id, offset, count, maxSeqLen);
  listRuns = () => this.remote.listRuns();
  estimateTraining = (id: string, train: Partial<TrainConfig>, lora: Partial<LoraConfig>) => this.remote.estimateTraining(id, train, lora);
  listCheckpoints = (runId: string) => this.remote.listCheckpoints(runId);
  useCheckpoint = (runId: string, name: string) => this.remote.useCheckpoint(runId, name);
  setLoraScale = (scale: number) => this.remote.setLoraScale(scale);
  adapterInfo = () => this.remote.adapterInfo();
  setChatTemplate = (choice: TemplateChoice) => this.remote.setChatTemplate(choice);
  exportAdapter = () => this.remote.exportAdapter();
  stopEvaluation = () => this.remote.stopEvaluation();
  listCachedModels = () => this.remote.listCachedModels();
  inspect = (source: ModelSource) => this.remote.inspect(source);
  deleteCachedModel = (base: string) => this.remote.deleteCachedModel(base);

  evaluateDataset(req: { datasetId: string; split?: { valSplit: number; seed: number }; limit: number; maxNewTokens: number }, onRow: (row: EvalRow) => void): Promise<number> {
    return this.remote.evaluateDataset(req, Comlink.proxy(onRow));
  }
  importAdapter = (files: Record<string, Uint8Array>) => this.remote.importAdapter(files);
  pauseTraining = () => this.remote.pauseTraining();
  resumeTraining = () => this.remote.resumeTraining();
  cancelTraining = () => this.remote.cancelTraining();

  trainOnDataset(req: TrainOnDatasetRequest, onEvent: (e: TrainEvent) => void): Promise<TrainResult> {
    return this.remote.trainOnDataset(req, Comlink.proxy(onEvent));
  }
}

/** Errors arrive from the worker as {name, message}; keep both for the user. */
export function describeError(e: unknown): { name: string; message: string } {
  if (e && typeof e === 'object' && 'message' in e) {
    const err = e as { name?: string; message: string };
    return { name: err.name ?? 'Error', message: err.message };
  }
  return { name: 'Error', message: String(e) };
}
