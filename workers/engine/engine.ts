// The engine: EngineApi (workers/shared/api.ts) on one loaded model and its live adapter. Node hosts (CLI,
// tests, benchmarks) call it directly; the browser runs it in a worker (workers/browser/worker.ts).
// Every request carries its own mode (LoRA scale, sampling): nothing one request sets is seen by another.
import { discardWasmBackend, selectBackend, wasmFailed, WasmHeapExhaustedError, type BackendInfo } from './backend';
import { deviceLost, lossBehind, onDeviceLost } from './gpu-device';
import { parameterCount, parseConfig } from './config';
import { DeviceLostError, InvalidRequestError, NoModelLoadedError, WasmMemoryError, WebtuneError } from './errors';
import { cutAtStopText, generateIds } from './generate';
import { loadModel, readModelHead, vocabBlockBytesFor, type LoadedModel } from './load';
import { canDequantize } from './ops/dequantize';
import { resolveWeightFormat, type WeightDecision } from '../shared/weights';
import { filesFor, type ModelFiles } from './source';
import { TEMPLATE_CHOICES } from './tokenizer';
import { LoraAdapter, validateLora } from './lora';
import { exportPeft, importPeft, baseModelWarning, ADAPTER_CONFIG, ADAPTER_WEIGHTS, RUN_SETTINGS } from './peft';
import { runSettings } from './export/llama-factory';
import { adapterFromCheckpoint, MemoryCheckpointStore, runIdentity, type CheckpointStore } from './train/checkpoint';
import { validateTrain, type TrainConfig } from './train/config';
import { tokenizeExample, tokenizePair, trainedCount, type Example, type TokenizedExample, type TokenizedPair } from './train/examples';
import { splitIndices } from './train/split';
import { TrainControl, Trainer } from './train/trainer';
import { DEFAULT_LORA, DEFAULT_TRAIN } from '../shared/defaults';
import type { EngineApi } from '../shared/api';
import type {
  AdapterFiles,
  AdapterInfo,
  CheckpointMeta,
  GenerateInput,
  GenerateOptions,
  GenerateResult,
  LoadOptions,
  LoadProgress,
  LoraConfig,
  ModelInfo,
  ModelSource,
  ModelSummary,
  TemplateChoice,
  TokenEvent,
  TrainEvent,
  TrainRequest,
  TrainResult,
} from '../shared/types';

export interface EngineOptions {
  demoBaseUrl?: string; // where the host serves the built-in demo model (the browser app)
  checkpoints?: (runId: string) => CheckpointStore; // default: kept in memory only
}

export class Engine implements EngineApi {
  private loaded: LoadedModel | null = null;
  /** The live adapter: what generation applies (at each request's LoRA scale) and export writes. */
  private live: LoraAdapter | null = null;
  /** The settings that trained the live adapter (a run here, or a checkpoint of one); null for an imported one. */
  private liveRun: { train: TrainConfig; lora: LoraConfig } | null = null;
  private backend: BackendInfo | null = null;
  private weights: WeightDecision = { format: 'f32', reason: 'as chosen' }; // how the loaded model's frozen weights are held
  private stopRequested = false;
  private control: TrainControl | null = null;
  private readonly stores = new Map<string, CheckpointStore>();

  private lostListener: ((message: string, name: string) => void) | null = null;
  private readonly unwatchDevice: () => void;

  constructor(private readonly options: EngineOptions = {}) {
    // A lost GPU device ends the work on it with a clear error; the weights on it are gone, so the model
    // must be loaded again, and that load brings a fresh device (or WASM, if the user picks it).
    this.unwatchDevice = onDeviceLost((reason) => {
      if (this.backend?.name !== 'webgpu') return;
      this.control?.fail(new DeviceLostError(reason, 'training'));
      const err = new DeviceLostError(reason, this.control ? 'training' : 'work');
      this.lostListener?.(err.message, err.name);
    });
  }

  /** Why the device this model lives on was lost, or null. */
  private lost(): string | null {
    return this.backend?.name === 'webgpu' ? deviceLost() : null;
  }

  /**
   * The error to report for `e`: a read from a lost device can fail before the loss event arrives, so a
   * non-webtune error on WebGPU waits a moment for it and, if the device was lost, reports the loss instead;
   * on WASM, a dead module is reported as its memory running out.
   */
  private async asDeviceLoss(e: unknown, during: 'training' | 'generation'): Promise<unknown> {
    if (e instanceof WebtuneError) return e;
    if (this.backend?.name === 'wasm') return this.asWasmFailure(e, during);
    if (this.backend?.name !== 'webgpu') return e;
    // A failed read of a GPU buffer is what a destroyed device looks like first; its loss event can trail it by
    // seconds on a loaded machine (seen on SwiftShader in CI), so such an error waits longer for it.
    const gpuRead = /mapAsync|GPUBuffer|GPUDevice|device (was )?(lost|destroyed)/i.test(String((e as Error)?.message ?? e));
    const lost = await lossBehind(gpuRead ? 10_000 : 1000);
    return lost ? new DeviceLostError(lost, during) : e;
  }

  /**
   * A raw error on WASM after which the module no longer answers, or an allocation it had no room for, is its
   * memory running out. The model's tensors lived in that heap: the model is dropped, the backend replaced by a fresh
   * one for the next load (a full heap stays fragmented), and the UI told (as for a lost GPU device).
   */
  private asWasmFailure(e: unknown, during: 'training' | 'generation' | 'loading'): unknown {
    if (!(e instanceof WasmHeapExhaustedError) && !wasmFailed()) return e;
    this.loaded = null;
    this.live = null;
    discardWasmBackend();
    const err = new WasmMemoryError(during);
    if (during !== 'loading') this.lostListener?.(err.message, err.name);
    return err;
  }

  /** Be told when the model's device or heap is lost (the UI marks the model as needing a reload). */
  watchDeviceLoss(fn: (message: string, name: string) => void): void {
    this.lostListener = fn;
  }

  load(source: ModelSource, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    return this.loadFiles(filesFor(source, this.options.demoBaseUrl), options, onProgress);
  }

  async inspect(source: ModelSource): Promise<ModelSummary> {
    const files = filesFor(source, this.options.demoBaseUrl);
    const config = parseConfig(new TextDecoder().decode(await files.read('config.json')));
    return { parameters: parameterCount(config), vocabSize: config.vocabSize, hiddenSize: config.hiddenSize, architecture: config.architecture };
  }

  private store(runId: string): CheckpointStore {
    let s = this.stores.get(runId);
    if (!s) {
      s = this.options.checkpoints?.(runId) ?? new MemoryCheckpointStore(`run ${runId}`);
      this.stores.set(runId, s);
    }
    return s;
  }

  async train(request: TrainRequest, onEvent: (e: TrainEvent) => void = () => {}): Promise<TrainResult> {
    const { model, id } = this.current;
    if (this.control) throw new InvalidRequestError('A training run is already going on; stop it first.');
    const lost = this.lost();
    if (lost) throw new DeviceLostError(lost, 'work');
    const cfg = validateTrain({ ...DEFAULT_TRAIN, ...request.train });
    const lora = validateLora({ ...DEFAULT_LORA, ...request.lora });
    // Positions past the model's reach were never trained: rotary angles it has not seen (generate refuses them too).
    if (cfg.maxSeqLen > model.config.maxPositions) {
      throw new InvalidRequestError(`The maximum sequence length (${cfg.maxSeqLen}) is more than this model reads (max_position_embeddings ${model.config.maxPositions}). Set it to ${model.config.maxPositions} or less.`);
    }
    const { train, val } = this.trainingData(request, cfg, onEvent);
    const runId = request.runId ?? `run-${Date.now().toString(36)}`;
    this.setAdapter(LoraAdapter.create(model.config, lora, cfg.seed));
    this.liveRun = { train: cfg, lora };
    const identity = runIdentity(id, model.config, train.flatMap((u) => ('chosen' in u ? [u.chosen, u.rejected] : [u])));
    const trainer = new Trainer(model, this.live!, train, val, cfg, { runId, baseModel: id, store: this.store(runId), identity });
    this.control = new TrainControl();
    try {
      if (request.resumeFrom) await trainer.restore(await this.store(runId).load(request.resumeFrom));
      const summary = await trainer.run(onEvent, this.control).catch(async (e: unknown) => {
        throw await this.asDeviceLoss(e, 'training');
      });
      return {
        ...summary,
        runId,
        trainExamples: train.length,
        valExamples: val.length,
        truncatedExamples: [...train, ...val].filter((u) => ('chosen' in u ? u.chosen.truncated + u.rejected.truncated : u.truncated) > 0).length,
        trainedTokens: train.reduce((n, u) => n + ('chosen' in u ? trainedCount(u.chosen) + trainedCount(u.rejected) : trainedCount(u)), 0),
      };
    } finally {
      trainer.dispose();
      this.control = null;
    }
  }

  /** The request's examples tokenized for its method and split into training and validation units. */
  private trainingData(request: TrainRequest, cfg: TrainConfig, onEvent: (e: TrainEvent) => void): { train: (TokenizedExample | TokenizedPair)[]; val: (TokenizedExample | TokenizedPair)[] } {
    const { tokenizer } = this.current;
    const dpo = cfg.method === 'dpo';
    const pairs = [...request.examples, ...(request.validation ?? [])].filter((e) => 'chosen' in e).length;
    if (dpo && pairs !== request.examples.length + (request.validation?.length ?? 0)) {
      throw new InvalidRequestError('DPO trains on preference pairs (a prompt with a chosen and a rejected answer), and some examples have single answers. Give a preference dataset, or train with SFT.');
    }
    if (!dpo && pairs > 0) throw new InvalidRequestError('The examples are preference pairs (chosen and rejected answers); train them with the DPO method.');
    const tokenize = (e: Example, i: number): TokenizedExample | TokenizedPair => {
      try {
        return 'chosen' in e ? tokenizePair(tokenizer, e, cfg.maxSeqLen) : tokenizeExample(tokenizer, e, cfg.maxSeqLen, cfg.trainOn);
      } catch (err) {
        if (err instanceof InvalidRequestError) throw new InvalidRequestError(`Example ${i + 1}: ${err.message}`);
        throw err;
      }
    };
    const all = request.examples.map(tokenize);
    let train = all;
    let val = (request.validation ?? []).map(tokenize);
    if (!request.validation && cfg.valSplit > 0) {
      const split = splitIndices(all.length, cfg.valSplit, cfg.seed);
      train = split.train.map((i) => all[i]);
      val = split.val.map((i) => all[i]);
    }
    if (dpo) {
      // A pair whose answer was cut away by the length limit compares nothing: it is left out, and said so.
      const whole = (u: TokenizedExample | TokenizedPair) => 'chosen' in u && trainedCount(u.chosen) > 0 && trainedCount(u.rejected) > 0;
      const lost = train.length - train.filter(whole).length + val.length - val.filter(whole).length;
      train = train.filter(whole);
      val = val.filter(whole);
      if (lost > 0) onEvent({ type: 'warning', message: `${lost} pair(s) lost a whole answer to the ${cfg.maxSeqLen}-token limit and are left out. Raise the maximum sequence length, or shorten their prompts.` });
      if (train.length === 0) throw new InvalidRequestError(`No preference pair has both answers within the ${cfg.maxSeqLen}-token limit. Raise the maximum sequence length, or shorten the prompts.`);
      return { train, val };
    }
    const single = train as TokenizedExample[];
    if (!single.some((e) => trainedCount(e) > 0)) {
      const cut = single.filter((e) => e.truncated > 0).length;
      throw new InvalidRequestError(
        `No training example has a token to learn from${cut ? `: ${cut} of ${train.length} lost every trained (assistant) token to the ${cfg.maxSeqLen}-token limit` : ''}. ${cut ? 'Raise the maximum sequence length, or shorten the prompts.' : 'Check that the examples have assistant answers (or train on all tokens).'}`,
      );
    }
    return { train, val };
  }

  /** Whether a training run is going on. */
  get training(): boolean {
    return this.control !== null;
  }

  pauseTraining(): void {
    this.control?.pause();
  }

  resumeTraining(): void {
    this.control?.resume();
  }

  cancelTraining(): void {
    this.control?.cancel();
  }

  listCheckpoints(runId: string): Promise<CheckpointMeta[]> {
    return this.store(runId).list();
  }

  async useCheckpoint(runId: string, name: string): Promise<AdapterInfo> {
    const { config, id } = this.current; // throws NoModelLoadedError when no model is loaded
    const { adapter, meta } = adapterFromCheckpoint(await this.store(runId).load(name), config, id);
    this.setAdapter(adapter);
    this.liveRun = { train: { ...DEFAULT_TRAIN, ...meta.train }, lora: meta.lora };
    return this.adapterInfo()!;
  }

  async exportAdapter(): Promise<AdapterFiles> {
    const { id } = this.current;
    if (!this.live) throw new InvalidRequestError('There is no adapter to export: train one or load one first.');
    const files: AdapterFiles = Object.fromEntries(await exportPeft(this.live, id));
    // The run's settings beside the adapter, so that the folder alone can be handed on (export llama-factory).
    if (this.liveRun) files[RUN_SETTINGS] = new TextEncoder().encode(JSON.stringify(runSettings(this, id, this.liveRun.train, this.liveRun.lora), null, 2) + '\n');
    return files;
  }

  async importAdapter(files: AdapterFiles): Promise<AdapterInfo> {
    const { model, id } = this.current;
    this.setAdapter(importPeft(files[ADAPTER_CONFIG] ?? null, files[ADAPTER_WEIGHTS] ?? null, model.config));
    const warning = baseModelWarning(files[ADAPTER_CONFIG]!, id);
    return { ...this.adapterInfo()!, ...(warning ? { warnings: [warning] } : {}) };
  }

  adapterInfo(): AdapterInfo | null {
    const a = this.live;
    return a ? { config: a.config, parameters: a.parameterCount() } : null;
  }

  /** The live adapter, for Node hosts and tests that work below the interface. */
  get adapter(): LoraAdapter | null {
    return this.live;
  }

  /** Make `next` the live adapter; the one it replaces is freed. (A failed import or checkpoint read never
   * reaches here, so the adapter the user had stays.) Public for Node hosts and tests below the interface. */
  setAdapter(next: LoraAdapter | null): void {
    this.live?.dispose();
    this.live = next;
    this.liveRun = null;
  }

  async loadFiles(files: ModelFiles, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    // The model in use stays until the new folder's config, tokenizer and weight list have been read: a wrong
    // folder, a mistyped repo id or an unreachable Hub leaves it (and its adapter) as they were.
    const head = await readModelHead(files, onProgress);
    if (this.control) throw new InvalidRequestError('A training run is going on; stop it before loading another model.');
    this.unload();
    this.backend = await selectBackend(options.backend ?? 'auto');
    const vocabBlockBytes = options.vocabBlockBytes ?? vocabBlockBytesFor(this.backend.name);
    const weights = resolveWeightFormat(options.weights ?? 'auto', parameterCount(head.config), this.backend.name, canDequantize());
    this.loaded = await loadModel(files, onProgress, vocabBlockBytes, head, weights.format).catch((e: unknown) => {
      throw this.asWasmFailure(e, 'loading');
    });
    this.weights = weights;
    return this.info()!;
  }

  info(): ModelInfo | null {
    const m = this.loaded;
    if (!m || !this.backend) return null;
    const bytes = m.model.weightBytes;
    return {
      id: m.id,
      config: m.config,
      parameters: parameterCount(m.config),
      backend: this.backend,
      hasChatTemplate: m.tokenizer.hasChatTemplate,
      chatTemplate: { choice: m.tokenizer.templateChoice, own: m.tokenizer.hasOwnTemplate, options: m.tokenizer.templateOptions },
      eosIds: m.tokenizer.eosIds,
      tensorBytes: bytes,
      weights: this.weights,
    };
  }

  /** The loaded model, for Node hosts and tests that work below the interface. */
  get current(): LoadedModel {
    if (!this.loaded) throw new NoModelLoadedError();
    return this.loaded;
  }

  promptIds(input: GenerateInput): number[] {
    const { tokenizer } = this.current;
    if ('ids' in input) return input.ids;
    if ('text' in input) return tokenizer.encode(input.text, true);
    if (!Array.isArray(input.messages) || input.messages.length === 0) throw new InvalidRequestError('Give at least one message.');
    return tokenizer.encodeChat(input.messages, true, input.template ?? {});
  }

  setChatTemplate(choice: TemplateChoice): ModelInfo {
    if (!(TEMPLATE_CHOICES as readonly string[]).includes(choice)) throw new InvalidRequestError(`"${choice}" is not a chat template choice; choose ${TEMPLATE_CHOICES.join(', ')}.`);
    if (this.control) throw new InvalidRequestError('A training run is going on: change the chat template after it ends.');
    this.current.tokenizer.useTemplate(choice);
    return this.info()!;
  }

  async generate(input: GenerateInput, options: GenerateOptions = {}, onToken?: (t: TokenEvent) => void): Promise<GenerateResult> {
    const { model, tokenizer } = this.current;
    const promptIds = this.promptIds(input);
    this.stopRequested = false;
    // A chat whose end-of-turn marker is text, not a token (ChatML chosen for a base model), stops at that text.
    const stopText = 'messages' in input ? tokenizer.endOfTurnText : null;
    let stoppedAtText = false;
    const ids: number[] = [];
    let shown = '';
    const emit = (id: number) => {
      ids.push(id);
      if (!onToken && !stopText) return;
      let full = tokenizer.decode(ids);
      if (stopText) ({ text: full, stopped: stoppedAtText } = cutAtStopText(full, stopText));
      if (!onToken) return;
      // Hold back text that ends inside a multi-byte character until the character is complete.
      const delta = full.endsWith('\uFFFD') || full.length < shown.length ? '' : full.slice(shown.length);
      if (delta) shown = full;
      onToken({ id, text: delta });
    };
    const shouldStop = () => {
      const lost = this.lost();
      if (lost) throw new DeviceLostError(lost, 'generation');
      return this.stopRequested || stoppedAtText;
    };
    const r = await generateIds(model, promptIds, tokenizer.eosIds, options, emit, shouldStop, this.live).catch(async (e: unknown) => {
      throw await this.asDeviceLoss(e, 'generation');
    });
    let text = tokenizer.decode(r.ids);
    if (stoppedAtText) {
      text = cutAtStopText(text, stopText!).text;
      r.stopReason = 'eos';
    }
    const decodeTokens = Math.max(0, r.ids.length - 1);
    return {
      promptIds,
      ids: r.ids,
      text,
      stopReason: r.stopReason,
      prefillMs: r.prefillMs,
      decodeTokensPerSecond: r.decodeMs > 0 ? (decodeTokens * 1000) / r.decodeMs : 0,
    };
  }

  stop(): void {
    this.stopRequested = true;
  }

  unload(): void {
    this.setAdapter(null);
    this.loaded?.model.dispose();
    this.loaded = null;
  }

  /** Unload, and stop listening for device loss: an Engine that is disposed is not kept alive by the listener. */
  dispose(): void {
    this.unload();
    this.unwatchDevice();
    this.lostListener = null;
  }
}
