// Which model is loaded, how far its download is, and on which backend it runs.
import { curatedModels, gpuLimits, preflight } from './preflight';
import { describeError, type EngineClient, type LoadOptions, type LoadProgress, type ModelInfo, type ModelSource, type TemplateChoice } from './engine-client';

export interface FileRow {
  file: string;
  loaded: number;
  total: number | null;
  cached: boolean;
}

export class ModelState {
  status = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  info = $state<ModelInfo | null>(null);
  error = $state<{ name: string; message: string } | null>(null);
  files = $state<FileRow[]>([]);
  tensors = $state({ loaded: 0, total: 0 });
  label = $state('');
  warnings = $state<string[]>([]);
  /** A load that failed while another model stayed loaded: what was tried and why it failed. */
  failed = $state<{ label: string; name: string; message: string } | null>(null);
  private startedAt = 0;

  bytesLoaded = $derived(this.files.reduce((a, f) => a + f.loaded, 0));
  bytesTotal = $derived(this.files.every((f) => f.total !== null) ? this.files.reduce((a, f) => a + (f.total ?? 0), 0) : null);
  networkBytes = $derived(this.files.filter((f) => !f.cached).reduce((a, f) => a + f.loaded, 0));

  constructor(private readonly engine: EngineClient) {}

  /** Bytes per second over the network since the load began. */
  speed(now = performance.now()): number {
    const s = (now - this.startedAt) / 1000;
    return s > 0 ? this.networkBytes / s : 0;
  }

  async load(source: ModelSource, label: string, options: LoadOptions, seqLen: number): Promise<void> {
    this.status = 'loading';
    this.error = null;
    this.failed = null;
    this.files = [];
    this.tensors = { loaded: 0, total: 0 };
    this.label = label;
    this.warnings = [];
    this.startedAt = performance.now();
    try {
      // Preflight from config.json alone: refuse what cannot run here, warn about what may not fit.
      if (source.kind !== 'demo') {
        const facts = await this.engine.inspect(source);
        const limits = options.backend === 'wasm' || options.backend === 'cpu' ? null : await gpuLimits();
        const check = preflight({ label, parameters: facts.parameters, vocab: facts.vocabSize, hidden: facts.hiddenSize }, seqLen, limits, await curatedModels(), undefined, options.weights);
        if (check.level === 'refuse') {
          await this.fail({ name: 'PreflightRefused', message: check.message }, label);
          return;
        }
        if (check.level === 'warn') this.warnings.push(check.message);
      }
      this.info = await this.engine.load(source, options, (p) => this.onProgress(p));
      this.status = 'ready';
    } catch (e) {
      await this.fail(describeError(e), label);
    }
  }

  /** A load failed: the engine keeps the model it had unless the new one had begun replacing it; say which. */
  private async fail(error: { name: string; message: string }, label: string): Promise<void> {
    const kept = await this.engine.info().catch(() => null);
    this.info = kept;
    this.files = [];
    if (kept) {
      this.failed = { label, ...error };
      this.status = 'ready';
    } else {
      this.error = error;
      this.status = 'error';
    }
  }

  /** Render chats with the model's own template, ChatML, or none; false when the engine refused (the reason is in `templateError`). */
  templateError = $state<string | null>(null);
  async setTemplate(choice: TemplateChoice): Promise<boolean> {
    this.templateError = null;
    try {
      this.info = await this.engine.setChatTemplate(choice);
      return true;
    } catch (e) {
      this.templateError = describeError(e).message;
      return false;
    }
  }

  /** The GPU device (or the WASM heap) under the model was lost: its weights are gone, so it must be loaded again. */
  markLost(message: string, name = 'DeviceLostError'): void {
    this.status = 'error';
    this.info = null;
    this.error = { name, message };
  }

  private onProgress(p: LoadProgress): void {
    if (p.stage === 'tensors') {
      this.tensors = { loaded: p.loaded, total: p.total };
      return;
    }
    if (p.stage === 'warning') {
      this.warnings.push(p.message);
      return;
    }
    const row = this.files.find((f) => f.file === p.file);
    if (row) Object.assign(row, { loaded: p.loaded, total: p.total, cached: p.cached });
    else this.files.push({ file: p.file, loaded: p.loaded, total: p.total, cached: p.cached });
  }
}
