// The engine's interface, written once. Node hosts (CLI, tests, benchmarks) call an Engine, which implements
// EngineApi; the browser runs it in a module Worker whose exposed object `satisfies WorkerApi`, and the UI
// holds a `Client<WorkerApi>`: the same methods, each returning a promise, callbacks passed as plain
// functions (src/lib/engine-client.ts proxies them across the worker boundary). Errors cross as {name, message}.
import type {
  AdapterFiles,
  AdapterInfo,
  CachedModel,
  CheckpointMeta,
  DatasetFormat,
  EvalRequest,
  EvalRow,
  GenerateInput,
  GgufType,
  MergedDtype,
  GenerateOptions,
  GenerateResult,
  LoadOptions,
  LoadProgress,
  LoraConfig,
  ModelInfo,
  ModelSource,
  ModelSummary,
  ParseProgress,
  PreviewExample,
  RunRecord,
  StoredDataset,
  TemplateChoice,
  TokenEvent,
  TrainConfig,
  TrainEvent,
  TrainingEstimate,
  TrainOn,
  TrainOnDatasetRequest,
  TrainRequest,
  TrainResult,
} from './types';

export interface EngineApi {
  load(source: ModelSource, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  /** Read only config.json: enough to estimate memory before downloading any weights. */
  inspect(source: ModelSource): Promise<ModelSummary>;
  /** Be told, with a message for the user, when the loaded model's GPU device or WASM heap is lost. */
  watchDeviceLoss(onLost: (message: string, name: string) => void): void;
  /** `options.loraScale` sets the adapter's strength for this request only. */
  generate(input: GenerateInput, options?: GenerateOptions, onToken?: (t: TokenEvent) => void): Promise<GenerateResult>;
  /** Ends the running generation after its current token. */
  stop(): void;
  unload(): void;
  info(): ModelInfo | null;
  /** LoRA-train the loaded model; the adapter is the live one afterwards. */
  train(request: TrainRequest, onEvent?: (e: TrainEvent) => void): Promise<TrainResult>;
  pauseTraining(): void;
  resumeTraining(): void;
  cancelTraining(): void;
  listCheckpoints(runId: string): Promise<CheckpointMeta[]>;
  /** Make a stored checkpoint's adapter the live one. */
  useCheckpoint(runId: string, name: string): Promise<AdapterInfo>;
  exportAdapter(): Promise<AdapterFiles>;
  importAdapter(files: AdapterFiles): Promise<AdapterInfo>;
  adapterInfo(): AdapterInfo | null;
  /** Which chat template renders conversations from now on (chat, datasets, training). */
  setChatTemplate(choice: TemplateChoice): ModelInfo;
}

/** The browser's worker: the engine plus the datasets, runs and models it keeps in the browser's storage. */
export interface WorkerApi extends EngineApi {
  /** Parse, report and store a dropped file (its bytes are kept unchanged). */
  addDataset(file: File, options: { maxSeqLen: number; format?: DatasetFormat }, onProgress?: (p: ParseProgress) => void): Promise<StoredDataset>;
  listDatasets(): Promise<StoredDataset[]>;
  renameDataset(id: string, name: string): Promise<void>;
  deleteDataset(id: string): Promise<void>;
  /** The original file, byte for byte. */
  datasetFile(id: string): Promise<Blob>;
  /** Recount tokens with the loaded model (after a model change or a new maximum length). */
  restat(id: string, maxSeqLen: number): Promise<StoredDataset>;
  /** Values for the dataset's {{placeholders}} (name → value; an empty value unsets it), kept with it; the report is redone. */
  setPlaceholders(id: string, fill: Record<string, string>, maxSeqLen: number): Promise<StoredDataset>;
  /** A page of examples rendered with the loaded model's chat template and tokenizer. */
  previewDataset(id: string, offset: number, count: number, maxSeqLen: number, trainOn?: TrainOn): Promise<{ total: number; items: PreviewExample[] }>;
  estimateTraining(id: string, train: Partial<TrainConfig>, lora: Partial<LoraConfig>): Promise<TrainingEstimate>;
  /** Held-out examples answered by the base and the tuned model, row by row; resolves to the row count. */
  evaluateDataset(req: EvalRequest, onRow: (row: EvalRow) => void): Promise<number>;
  stopEvaluation(): void;
  listCachedModels(): Promise<CachedModel[]>;
  deleteCachedModel(base: string): Promise<void>;
  /** Past runs; one still marked running that is not training here was cut off (tab closed or reloaded). */
  listRuns(): Promise<RunRecord[]>;
  /** Train on a stored dataset, recording the run's settings and curves as it goes. */
  trainOnDataset(req: TrainOnDatasetRequest, onEvent?: (e: TrainEvent) => void): Promise<TrainResult>;
  /** The loaded model with the live adapter folded in (at `loraScale`), as one GGUF file for llama.cpp and
   * Ollama: written to the origin's private storage as it is made, returned as a disk-backed File. */
  exportGguf(type: GgufType, loraScale: number, onProgress?: (done: number, total: number) => void): Promise<File>;
  /** The same, as the merged Hugging Face folder (safetensors in `dtype`) inside one zip. */
  exportMerged(dtype: MergedDtype, loraScale: number, onProgress?: (done: number, total: number) => void): Promise<File>;
  /** A run as a LLaMA-Factory recipe (YAML, dataset_info.json, its dataset), zipped: the same job on a GPU cluster. */
  exportRecipe(runId: string): Promise<File>;
}

/** An API as seen from the other side of a worker: every method returns a promise. */
export type Client<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never };
