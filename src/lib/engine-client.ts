// The UI's handle on the engine worker. Callbacks cross the worker boundary as comlink proxies.
import * as Comlink from 'comlink';
import type { WorkerApi } from '../../workers/engine.worker';
import type { GenerateInput, GenerateOptions, GenerateResult, LoadOptions, LoadProgress, ModelInfo, ModelSource, TokenEvent } from '../../workers/engine/engine';

export type { GenerateInput, GenerateOptions, GenerateResult, LoadOptions, LoadProgress, ModelInfo, ModelSource, TokenEvent };
export type { ChatMessage } from '../../workers/engine/tokenizer';

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

  stop(): Promise<void> {
    return this.remote.stop();
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
