// The engine: one typed interface (EngineApi) that the UI uses through comlink in a worker, and that Node
// hosts (CLI, tests, benchmarks) use directly.
import * as tf from './tf';
import { discardWasmBackend, selectBackend, wasmFailed, type BackendInfo, type BackendPreference } from './backend';
import { deviceLost, lossBehind, onDeviceLost } from './gpu-device';
import type { ModelConfig } from './config';
import { parameterCount, parseConfig } from './config';
import { DeviceLostError, InvalidRequestError, NoModelLoadedError, WasmMemoryError, WebtuneError } from './errors';
import { cutAtStopText, generateIds, type GenerateOptions, type StopReason } from './generate';
import { loadModel, vocabBlockBytesFor, type LoadedModel, type LoadProgress } from './load';
import { filesFor, type ModelFiles, type ModelSource } from './source';
import { TEMPLATE_CHOICES, type ChatMessage, type TemplateChoice, type TemplateVariables } from './tokenizer';
import { DEFAULT_LORA, LoraAdapter, validateLora, type LoraConfig } from './lora';
import { exportPeft, importPeft, baseModelWarning, ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './peft';
import { decodeCheckpoint, MemoryCheckpointStore, type CheckpointMeta, type CheckpointStore } from './train/checkpoint';
import { DEFAULT_TRAIN, validateTrain, type TrainConfig } from './train/config';
import { collate, tokenizeExample, trainedCount, type Example } from './train/examples';
import { chunkedLmEval, chunkRowsFor } from './train/lm-loss';
import { splitIndices } from './train/split';
import { TrainControl, Trainer, type TrainEvent, type TrainSummary } from './train/trainer';

export type { BackendInfo, BackendPreference, ChatMessage, CheckpointMeta, Example, GenerateOptions, LoadProgress, LoraConfig, ModelConfig, ModelSource, StopReason, TrainConfig, TrainEvent, TrainSummary };
export { DEFAULT_LORA, DEFAULT_TRAIN };

export interface LoadOptions {
  backend?: BackendPreference; // default 'auto': hardware WebGPU, else WASM, else cpu
  /** Largest buffer one vocabulary block may take; default: the WebGPU device's binding limit, 128 MiB on WASM, no limit on cpu. */
  vocabBlockBytes?: number;
}

export interface ModelInfo {
  id: string;
  config: ModelConfig;
  parameters: number;
  backend: BackendInfo;
  hasChatTemplate: boolean; // a template renders chats now (the model's own or the one chosen)
  chatTemplate: {
    choice: TemplateChoice; // 'model' (the default), 'chatml' or 'none'
    own: boolean; // the model ships a template
    options: string[]; // variables the template reads that a request may set (e.g. enable_thinking)
  };
  eosIds: number[];
  tensorBytes: number;
}

/** What to continue: a chat (rendered with the chat template, with optional template variables such as
 * enable_thinking), a raw text, or token ids. */
export type GenerateInput = { messages: ChatMessage[]; template?: TemplateVariables } | { text: string } | { ids: number[] };

export interface TokenEvent {
  id: number;
  text: string; // the new text this token completes (may be empty while a UTF-8 character is incomplete)
}

export interface GenerateResult {
  promptIds: number[];
  ids: number[]; // generated ids only
  text: string;
  stopReason: StopReason;
  prefillMs: number;
  decodeTokensPerSecond: number;
}

export interface TrainRequest {
  examples: Example[];
  validation?: Example[]; // a separate validation set; otherwise train.valSplit of `examples` is held out
  lora?: Partial<LoraConfig>;
  train?: Partial<TrainConfig>;
  runId?: string; // checkpoints are kept per run
  resumeFrom?: string; // a checkpoint name of this run to continue from
}

export interface TrainResult extends TrainSummary {
  runId: string;
  trainExamples: number;
  valExamples: number;
  truncatedExamples: number; // examples longer than maxSeqLen, cut
  trainedTokens: number;
}

export interface AdapterInfo {
  config: LoraConfig;
  parameters: number;
  strength: number;
  warnings?: string[]; // from an import: e.g. the adapter names another base model
}

/** A PEFT folder's files by name (adapter_config.json, adapter_model.safetensors). */
export type AdapterFiles = Record<string, Uint8Array>;

/** One held-out example answered by the base model and by the tuned one. */
export interface EvalRow {
  index: number;
  prompt: string; // the last user message
  expected: string; // the reference answer (the example's last assistant message)
  base: string;
  tuned: string | null; // null without an adapter
  baseLoss: number; // mean loss over the example's trained tokens
  tunedLoss: number | null;
}

export interface EngineApi {
  load(source: ModelSource, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  generate(input: GenerateInput, options?: GenerateOptions, onToken?: (t: TokenEvent) => void): Promise<GenerateResult>;
  /** Ends the running generation after its current token. */
  stop(): void;
  unload(): void;
  info(): ModelInfo | null;
  /** LoRA-train the loaded model; the adapter stays applied afterwards. */
  train(request: TrainRequest, onEvent?: (e: TrainEvent) => void): Promise<TrainResult>;
  pauseTraining(): void;
  resumeTraining(): void;
  cancelTraining(): void;
  listCheckpoints(runId: string): Promise<CheckpointMeta[]>;
  /** Apply a stored checkpoint's adapter for generation. */
  useCheckpoint(runId: string, name: string): Promise<AdapterInfo>;
  exportAdapter(): Promise<AdapterFiles>;
  importAdapter(files: AdapterFiles): Promise<AdapterInfo>;
  /** 0 = base model, 1 = adapter as trained. */
  setLoraScale(scale: number): void;
  adapterInfo(): AdapterInfo | null;
  /** Which chat template renders conversations from now on (chat, datasets, training). */
  setChatTemplate(choice: TemplateChoice): ModelInfo;
}

export interface EngineOptions {
  demoBaseUrl?: string; // where the host serves the built-in demo model (the browser app)
  checkpoints?: (runId: string) => CheckpointStore; // default: kept in memory only
}

export class Engine implements EngineApi {
  private loaded: LoadedModel | null = null;
  private backend: BackendInfo | null = null;
  private stopRequested = false;
  private control: TrainControl | null = null;
  private readonly stores = new Map<string, CheckpointStore>();

  private lostListener: ((message: string, name: string) => void) | null = null;

  constructor(private readonly options: EngineOptions = {}) {
    // A lost GPU device ends the work on it with a clear error; the weights on it are gone, so the model
    // must be loaded again, and that load brings a fresh device (or WASM, if the user picks it).
    onDeviceLost((reason) => {
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
    const lost = await lossBehind();
    return lost ? new DeviceLostError(lost, during) : e;
  }

  /**
   * A raw error on WASM after which the module no longer answers is its memory running out. The model's
   * tensors lived in that heap: the model is dropped, the backend replaced by a fresh one for the next
   * load, and the UI told (as for a lost GPU device).
   */
  private asWasmFailure(e: unknown, during: 'training' | 'generation' | 'loading'): unknown {
    if (!wasmFailed()) return e;
    this.loaded = null;
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

  /** Read only config.json: enough to estimate memory before downloading any weights. */
  async inspect(source: ModelSource): Promise<{ parameters: number; vocabSize: number; hiddenSize: number; architecture: string }> {
    const files = filesFor(source, this.options.demoBaseUrl);
    const config = parseConfig(new TextDecoder().decode(await files.read('config.json')));
    return { parameters: parameterCount(config), vocabSize: config.vocabSize, hiddenSize: config.hiddenSize, architecture: config.architecture };
  }

  private store(runId: string): CheckpointStore {
    let s = this.stores.get(runId);
    if (!s) {
      s = this.options.checkpoints?.(runId) ?? new MemoryCheckpointStore();
      this.stores.set(runId, s);
    }
    return s;
  }

  async train(request: TrainRequest, onEvent: (e: TrainEvent) => void = () => {}): Promise<TrainResult> {
    const { model, tokenizer, id } = this.current;
    if (this.control) throw new InvalidRequestError('A training run is already going on; stop it first.');
    const lost = this.lost();
    if (lost) throw new DeviceLostError(lost, 'work');
    const cfg = validateTrain({ ...DEFAULT_TRAIN, ...request.train });
    const lora = validateLora({ ...DEFAULT_LORA, ...request.lora });
    // Positions past the model's reach were never trained: rotary angles it has not seen (generate refuses them too).
    if (cfg.maxSeqLen > model.config.maxPositions) {
      throw new InvalidRequestError(`The maximum sequence length (${cfg.maxSeqLen}) is more than this model reads (max_position_embeddings ${model.config.maxPositions}). Set it to ${model.config.maxPositions} or less.`);
    }
    const all = request.examples.map((e) => tokenizeExample(tokenizer, e, cfg.maxSeqLen, cfg.trainOn));
    let train = all;
    let val = (request.validation ?? []).map((e) => tokenizeExample(tokenizer, e, cfg.maxSeqLen, cfg.trainOn));
    if (!request.validation && cfg.valSplit > 0) {
      const split = splitIndices(all.length, cfg.valSplit, cfg.seed);
      train = split.train.map((i) => all[i]);
      val = split.val.map((i) => all[i]);
    }
    if (!train.some((e) => trainedCount(e) > 0)) {
      const cut = train.filter((e) => e.truncated > 0).length;
      throw new InvalidRequestError(
        `No training example has a token to learn from${cut ? `: ${cut} of ${train.length} lost every trained (assistant) token to the ${cfg.maxSeqLen}-token limit` : ''}. ${cut ? 'Raise the maximum sequence length, or shorten the prompts.' : 'Check that the examples have assistant answers (or train on all tokens).'}`,
      );
    }
    const runId = request.runId ?? `run-${Date.now().toString(36)}`;
    model.adapter?.dispose();
    model.adapter = LoraAdapter.create(model.config, lora, cfg.seed);
    const trainer = new Trainer(model, model.adapter, train, val, cfg, { runId, baseModel: id, store: this.store(runId) });
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
        truncatedExamples: [...train, ...val].filter((e) => e.truncated > 0).length,
        trainedTokens: train.reduce((n, e) => n + e.trained.reduce((a, b) => a + b, 0), 0),
      };
    } finally {
      trainer.dispose();
      this.control = null;
    }
  }

  /**
   * Training tokens/s on this device for these settings, from a short real run (one warm-up step, then two
   * timed ones) on the first examples. The live adapter, if any, is left as it was.
   */
  async measureTrainingSpeed(examples: Example[], train: Partial<TrainConfig> = {}, lora: Partial<LoraConfig> = {}): Promise<number> {
    const { model, tokenizer, id } = this.current;
    if (this.control) throw new InvalidRequestError('A training run is going on; measure speed before or after it.');
    const cfg = validateTrain({ ...DEFAULT_TRAIN, ...train, valSplit: 0, maxSteps: 3, epochs: 1000 });
    const loraCfg = validateLora({ ...DEFAULT_LORA, ...lora });
    const sample = examples.slice(0, cfg.batchSize * cfg.gradAccum * 3).map((e) => tokenizeExample(tokenizer, e, cfg.maxSeqLen, cfg.trainOn));
    if (sample.length === 0) throw new InvalidRequestError('There is no example to measure with.');
    const live = model.adapter;
    const probe = LoraAdapter.create(model.config, loraCfg, cfg.seed);
    model.adapter = probe;
    const trainer = new Trainer(model, probe, sample, [], cfg, { runId: 'speed-probe', baseModel: id });
    try {
      const step = async (s: number) => {
        const { metrics, tokens } = trainer.trainStep(s % trainer.stepsPerEpoch);
        await metrics.data();
        metrics.dispose();
        return tokens;
      };
      await step(0);
      const t0 = performance.now();
      const tokens = (await step(1)) + (await step(2));
      return (tokens * 1000) / (performance.now() - t0);
    } finally {
      trainer.dispose();
      probe.dispose();
      model.adapter = live;
    }
  }

  /**
   * Answer one chat example's prompt (all messages before its last assistant message) greedily with the base
   * model (LoRA scale 0) and the tuned one (the current scale), and score the whole example under both.
   */
  async evaluateExample(example: Example, index: number, maxNewTokens = 128): Promise<EvalRow> {
    const { model, tokenizer } = this.current;
    if (!('messages' in example)) throw new InvalidRequestError('Evaluation needs chat examples (with an assistant answer).');
    const last = example.messages.map((m) => m.role).lastIndexOf('assistant');
    if (last < 0) throw new InvalidRequestError('This example has no assistant answer to compare with.');
    const prompt = example.messages.slice(0, last).map(({ role, content }) => ({ role, content }));
    const adapter = model.adapter;
    const strength = adapter?.strength ?? 1;
    // The example as the model scores it: tokenized and batched once, for both scales.
    const b = collate([tokenizeExample(tokenizer, example, model.config.maxPositions, 'assistant')], 0);
    const count = Math.max(1, b.trained);
    const score = async (scale: number) => {
      if (adapter) adapter.strength = scale;
      const stats = tf.tidy(() => {
        const hidden = model.forward(tf.tensor2d(b.ids, [1, b.T], 'int32'));
        return chunkedLmEval(hidden.reshape([b.T, -1]) as tf.Tensor2D, model.head(), b.targets, b.weights, chunkRowsFor(model.config.vocabSize), model.config.finalSoftcap);
      });
      const nll = (await stats.data())[0];
      stats.dispose();
      return nll / count;
    };
    const answer = async (scale: number) => {
      if (adapter) adapter.strength = scale;
      return (await this.generate({ messages: prompt }, { maxNewTokens })).text;
    };
    try {
      const base = await answer(0);
      const baseLoss = await score(0);
      const tuned = adapter ? await answer(strength) : null;
      const tunedLoss = adapter ? await score(strength) : null;
      return { index, prompt: prompt.filter((m) => m.role === 'user').pop()?.content ?? '', expected: example.messages[last].content, base, tuned, baseLoss, tunedLoss };
    } finally {
      if (adapter) adapter.strength = strength;
    }
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
    const { model } = this.current;
    const { meta, tensors } = decodeCheckpoint(await this.store(runId).load(name));
    const pairs = new Map<string, { A: tf.Tensor; B: tf.Tensor }>();
    for (const [key, t] of tensors) {
      const m = /^(.*)\.lora_A$/.exec(key);
      if (!m) continue;
      const b = tensors.get(`${m[1]}.lora_B`)!;
      pairs.set(m[1], { A: tf.tensor(t.values, t.shape), B: tf.tensor(b.values, b.shape) });
    }
    model.adapter?.dispose();
    model.adapter = LoraAdapter.fromTensors(meta.lora, pairs);
    return this.adapterInfo()!;
  }

  async exportAdapter(): Promise<AdapterFiles> {
    const { model, id } = this.current;
    if (!model.adapter) throw new InvalidRequestError('There is no adapter to export: train one or load one first.');
    return Object.fromEntries(await exportPeft(model.adapter, id));
  }

  async importAdapter(files: AdapterFiles): Promise<AdapterInfo> {
    const { model } = this.current;
    const adapter = importPeft(files[ADAPTER_CONFIG] ?? null, files[ADAPTER_WEIGHTS] ?? null, model.config);
    model.adapter?.dispose();
    model.adapter = adapter;
    const warning = baseModelWarning(files[ADAPTER_CONFIG]!, this.current.id);
    return { ...this.adapterInfo()!, ...(warning ? { warnings: [warning] } : {}) };
  }

  setLoraScale(scale: number): void {
    if (!(scale >= 0 && scale <= 1)) throw new InvalidRequestError(`The LoRA scale must be between 0 and 1, got ${scale}.`);
    const a = this.current.model.adapter;
    if (a) a.strength = scale;
  }

  adapterInfo(): AdapterInfo | null {
    const a = this.loaded?.model.adapter;
    return a ? { config: a.config, parameters: a.parameterCount(), strength: a.strength } : null;
  }

  async loadFiles(files: ModelFiles, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    this.unload();
    this.backend = await selectBackend(options.backend ?? 'auto');
    const vocabBlockBytes = options.vocabBlockBytes ?? vocabBlockBytesFor(this.backend.name);
    this.loaded = await loadModel(files, onProgress, vocabBlockBytes).catch((e: unknown) => {
      throw this.asWasmFailure(e, 'loading');
    });
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
    const r = await generateIds(model, promptIds, tokenizer.eosIds, options, emit, () => {
      const lost = this.lost();
      if (lost) throw new DeviceLostError(lost, 'generation');
      return this.stopRequested || stoppedAtText;
    }).catch(async (e: unknown) => {
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
    this.loaded?.model.adapter?.dispose();
    this.loaded?.model.dispose();
    this.loaded = null;
  }
}
