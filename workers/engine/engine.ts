// The engine: one typed interface (EngineApi) that the UI uses through comlink in a worker, and that Node
// hosts (CLI, tests, benchmarks) use directly.
import * as tf from './tf';
import { selectBackend, type BackendInfo, type BackendPreference } from './backend';
import type { ModelConfig } from './config';
import { parameterCount } from './config';
import { InvalidRequestError, NoModelLoadedError } from './errors';
import { generateIds, type GenerateOptions, type StopReason } from './generate';
import { loadModel, type LoadedModel, type LoadProgress } from './load';
import { filesFor, type ModelFiles, type ModelSource } from './source';
import type { ChatMessage } from './tokenizer';

export type { BackendInfo, BackendPreference, ChatMessage, GenerateOptions, LoadProgress, ModelConfig, ModelSource, StopReason };

export interface LoadOptions {
  backend?: BackendPreference; // default 'auto': hardware WebGPU, else WASM, else cpu
}

export interface ModelInfo {
  id: string;
  config: ModelConfig;
  parameters: number;
  backend: BackendInfo;
  hasChatTemplate: boolean;
  eosIds: number[];
  tensorBytes: number;
}

/** What to continue: a chat (rendered with the model's template), a raw text, or token ids. */
export type GenerateInput = { messages: ChatMessage[] } | { text: string } | { ids: number[] };

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

export interface EngineApi {
  load(source: ModelSource, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  generate(input: GenerateInput, options?: GenerateOptions, onToken?: (t: TokenEvent) => void): Promise<GenerateResult>;
  /** Ends the running generation after its current token. */
  stop(): void;
  unload(): void;
  info(): ModelInfo | null;
}

export class Engine implements EngineApi {
  private loaded: LoadedModel | null = null;
  private backend: BackendInfo | null = null;
  private stopRequested = false;

  /** demoBaseUrl: where the host serves the built-in demo model (the browser app), if anywhere. */
  constructor(private readonly demoBaseUrl?: string) {}

  load(source: ModelSource, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    return this.loadFiles(filesFor(source, this.demoBaseUrl), options, onProgress);
  }

  async loadFiles(files: ModelFiles, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    this.unload();
    this.backend = await selectBackend(options.backend ?? 'auto');
    this.loaded = await loadModel(files, onProgress);
    return this.info()!;
  }

  info(): ModelInfo | null {
    const m = this.loaded;
    if (!m || !this.backend) return null;
    let bytes = 0;
    for (const t of m.model.weights.values()) bytes += t.size * 4;
    return {
      id: m.id,
      config: m.config,
      parameters: parameterCount(m.config),
      backend: this.backend,
      hasChatTemplate: m.tokenizer.hasChatTemplate,
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
    return tokenizer.encodeChat(input.messages, true);
  }

  async generate(input: GenerateInput, options: GenerateOptions = {}, onToken?: (t: TokenEvent) => void): Promise<GenerateResult> {
    const { model, tokenizer } = this.current;
    const promptIds = this.promptIds(input);
    this.stopRequested = false;
    const ids: number[] = [];
    let shown = '';
    const emit = (id: number) => {
      ids.push(id);
      if (!onToken) return;
      const full = tokenizer.decode(ids);
      // Hold back text that ends inside a multi-byte character until the character is complete.
      const delta = full.endsWith('\uFFFD') ? '' : full.slice(shown.length);
      if (delta) shown = full;
      onToken({ id, text: delta });
    };
    const r = await generateIds(model, promptIds, tokenizer.eosIds, options, emit, () => this.stopRequested);
    const decodeTokens = Math.max(0, r.ids.length - 1);
    return {
      promptIds,
      ids: r.ids,
      text: tokenizer.decode(r.ids),
      stopReason: r.stopReason,
      prefillMs: r.prefillMs,
      decodeTokensPerSecond: r.decodeMs > 0 ? (decodeTokens * 1000) / r.decodeMs : 0,
    };
  }

  stop(): void {
    this.stopRequested = true;
  }

  unload(): void {
    this.loaded?.model.dispose();
    this.loaded = null;
  }

  /** Live tensors and bytes on the backend, for memory checks. */
  memory(): { numTensors: number; numBytes: number } {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  }
}
