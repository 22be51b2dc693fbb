// The UI's handle on the engine worker: a Client<WorkerApi> (workers/shared/api.ts), so every method the
// worker has is here, typed once. Function arguments (progress, token and event callbacks) cross the
// worker boundary as comlink proxies. src/ takes the engine's types and defaults from workers/shared/ only.
import * as Comlink from 'comlink';
import type { Client, WorkerApi } from '../../workers/shared/api';

export type * from '../../workers/shared/types';
export type EngineClient = Client<WorkerApi>;

/** Start the engine worker. */
export function startEngine(): EngineClient {
  const worker = new Worker(new URL('../../workers/browser/worker.ts', import.meta.url), { type: 'module', name: 'webtune-engine' });
  const remote = Comlink.wrap<WorkerApi>(worker) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy({} as EngineClient, {
    get(_, name) {
      if (typeof name !== 'string' || name === 'then') return undefined; // not a thenable, not a symbol-keyed object
      let m = methods.get(name);
      if (!m) {
        m = (...args: unknown[]) => remote[name](...args.map((a) => (typeof a === 'function' ? Comlink.proxy(a) : a)));
        methods.set(name, m);
      }
      return m;
    },
  });
}

/** Errors arrive from the worker as {name, message}; keep both for the user. */
export function describeError(e: unknown): { name: string; message: string } {
  if (e && typeof e === 'object' && 'message' in e) {
    const err = e as { name?: string; message: string };
    return { name: err.name ?? 'Error', message: err.message };
  }
  return { name: 'Error', message: String(e) };
}
