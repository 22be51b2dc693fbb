// Compute backend choice: WebGPU on a real adapter, else WASM, else the plain JS cpu backend.
// The choice and its reason are reported to the user.
import * as tf from './tf';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm'; // registers the wasm backend too
import { setSimdThreads } from './ops/simd-pool';
import { BackendUnavailableError } from './errors';
import { deviceLost, registerWebGpu } from './gpu-device';
import { registerOps } from './ops';
import type { BackendInfo, BackendName, BackendPreference } from '../shared/types';

export type { BackendInfo, BackendName, BackendPreference };


type GpuAdapterLike = { isFallbackAdapter?: boolean; info?: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; description?: string } };
type NavigatorGpu = { gpu?: { requestAdapter(opts?: unknown): Promise<GpuAdapterLike | null> } };

/** The threaded build's Emscripten glue as the package ships it (browser hosts only; see startWasm). */
let threadedGlue: string | null = null;

/** How a host without a browser's threads starts tfjs's threaded WASM build (Node: workers/node/wasm-threads.ts):
 * its logical cores, and `start`, which runs tfjs's own start (setBackend) with what the build needs around it. */
export interface ThreadedWasmStart {
  cores: number;
  start(setBackend: () => Promise<boolean>): Promise<boolean>;
}
let hostThreads: ThreadedWasmStart | null = null;

/** Where the .wasm binaries are: the URLs the bundler gave them (browser) or a directory prefix (Node).
 * `threads`: the threaded build's script text, for its worker threads (browser), or the host's own start (Node). */
export function configureWasm(paths: string | Record<string, string>, threads?: string | ThreadedWasmStart): void {
  threadedGlue = typeof threads === 'string' ? threads : null;
  hostThreads = typeof threads === 'object' ? threads : null;
  setWasmPaths(paths as Parameters<typeof setWasmPaths>[0]);
  tf.env().set('PROD', true); // no debug checks, no console advice about tfjs-node
}

let webGpuRegistered = false;

/**
 * WASM threads, in a cross-origin isolated page (the dev and preview servers send COOP/COEP; see vite.config.ts):
 * one XNNPACK thread per logical core. tfjs-backend-wasm 4.22 starts its threaded build there but caps XNNPACK's
 * pool at half of navigator.hardwareConcurrency (for SMT cores), which is one thread, that is none, on two cores;
 * so the count tfjs reads is doubled for the moment of its start. Each worker thread loads the glue from a script
 * tfjs makes of its factory's source text; once bundled, that text no longer runs on its own and the threads never
 * start (the pool waits for them forever), so the package's own glue file is handed over instead. Node's host brings
 * its own start (ThreadedWasmStart). Elsewhere (a page without isolation or without the glue) the single-threaded
 * build runs. Returns why it could not start, or null.
 */
let threadsWanted: number | null = null;

/** The WASM threads to start with (before the WASM backend starts; default: one per logical core). */
export function setWasmThreads(n: number | null): void {
  threadsWanted = n;
}

/** A tensor the WASM heap had no room for. Thrown where tfjs would go on with address 0 (see guardAllocations). */
export class WasmHeapExhaustedError extends Error {
  override name = 'WasmHeapExhaustedError';
  constructor(bytes: number) {
    super(`the WASM heap has no room for ${bytes} more bytes`);
  }
}

/**
 * A failed allocation on WASM (the heap at its 4 GB) returns address 0, and tfjs goes on to write the tensor there,
 * over the heap's start: the module's own data is overwritten (then "memory access out of bounds", at best), and with
 * threads the pool's shared state too, after which the process can spin forever. A request of 4 GiB or more wraps
 * to a small one. Every tfjs allocation goes through the module's malloc, so such a request throws here instead,
 * before anything is written.
 */
const guarded = new WeakSet<object>();

function guardAllocations(): void {
  const wasm = (tf.backend() as unknown as { wasm: { _malloc(bytes: number): number; _free(at: number): void } }).wasm;
  if (guarded.has(wasm)) return; // setBackend runs again at every load; the module is guarded once
  guarded.add(wasm);
  // Emscripten binds _malloc on its first call, replacing the property with the module's export: bind it first.
  wasm._free(wasm._malloc(16));
  const malloc = wasm._malloc;
  wasm._malloc = (bytes: number) => {
    if (bytes >= 2 ** 32) throw new WasmHeapExhaustedError(bytes); // past what a 32-bit address reaches (it would wrap)
    const at = malloc(bytes);
    if (at === 0 && bytes > 0) throw new WasmHeapExhaustedError(bytes);
    return at;
  };
}

async function startWasm(): Promise<string | null> {
  const setBackend = async () => {
    if (!(await tf.setBackend('wasm'))) return 'tfjs could not initialise the wasm backend';
    guardAllocations();
    return null;
  };
  if (hostThreads) {
    const host = hostThreads;
    const threads = Math.max(1, Math.min(threadsWanted ?? host.cores, host.cores));
    if (threads < 2) return setBackend();
    setThreadsCount(threads);
    return (await host.start(async () => (await setBackend()) === null)) ? null : 'tfjs could not initialise the threaded wasm backend';
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const cores = nav?.hardwareConcurrency ?? 1;
  const threads = Math.max(1, Math.min(threadsWanted ?? cores, cores));
  if (!isolated || threads < 2 || !nav || !threadedGlue) {
    if (isolated) setThreadsCount(1);
    return setBackend();
  }
  setThreadsCount(threads);
  Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * cores, configurable: true });
  const OriginalBlob = globalThis.Blob;
  const glue = threadedGlue;
  globalThis.Blob = class extends OriginalBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      const factorySource = parts?.length === 1 && typeof parts[0] === 'string' && parts[0].startsWith('var WasmBackendModuleThreadedSimd = ');
      super(factorySource ? [glue] : parts, options);
    }
  };
  try {
    return await setBackend();
  } finally {
    globalThis.Blob = OriginalBlob;
    delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency; // the prototype's getter again
  }
}

/** The WASM backend's info with its thread count. */
function withThreads(info: BackendInfo): BackendInfo {
  const threads = wasmThreads();
  return threads === null ? info : { ...info, threads };
}

/** XNNPACK's threads on WASM (1: single-threaded), or null on another backend. */
function wasmThreads(): number | null {
  return tf.getBackend() === 'wasm' ? getThreadsCount() : null;
}

async function tryBackend(name: BackendName): Promise<string | null> {
  try {
    if (name === 'webgpu') {
      await import('@tensorflow/tfjs-backend-webgpu'); // its kernels
      await registerOps('webgpu'); // ours for it
      // Our own device factory, once, and again after a device loss: the next setBackend gets a new device.
      if (!webGpuRegistered || deviceLost()) registerWebGpu();
      webGpuRegistered = true;
    }
    if (name === 'wasm') {
      const err = await startWasm();
      if (err) return err;
      setSimdThreads(getThreadsCount()); // webtune's SIMD products split across as many (ops/simd-pool.ts)
    } else if (!(await tf.setBackend(name))) return `tfjs could not initialise the ${name} backend`;
    await tf.ready();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

async function probeWebGpu(): Promise<{ ok: boolean; fallback: boolean; adapter: string; why: string }> {
  const gpu = (globalThis.navigator as NavigatorGpu | undefined)?.gpu;
  if (!gpu) return { ok: false, fallback: false, adapter: '', why: 'no WebGPU here' };
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) return { ok: false, fallback: false, adapter: '', why: 'no WebGPU adapter was granted' };
  const info = adapter.info ?? {};
  const fallback = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown GPU';
  return { ok: true, fallback, adapter: name, why: fallback ? `the WebGPU adapter (${name}) is a software fallback, slower than WASM` : '' };
}

/** Select and initialise a backend. `auto` prefers a hardware WebGPU adapter, then WASM, then cpu. */
export async function selectBackend(pref: BackendPreference = 'auto'): Promise<BackendInfo> {
  await registerOps();
  if (pref !== 'auto') {
    const err = await tryBackend(pref);
    if (err) throw new BackendUnavailableError(`The ${pref} backend is unavailable here: ${err}. Choose another backend (auto picks one that works).`);
    const adapter = pref === 'webgpu' ? (await probeWebGpu()).adapter : undefined;
    return withThreads({ name: pref, reason: 'chosen explicitly', adapter });
  }
  const notes: string[] = [];
  const gpu = await probeWebGpu();
  if (gpu.ok && !gpu.fallback) {
    const err = await tryBackend('webgpu');
    if (!err) return { name: 'webgpu', reason: `hardware WebGPU adapter: ${gpu.adapter}`, adapter: gpu.adapter };
    notes.push(`WebGPU failed to start (${err})`);
  } else notes.push(gpu.why);
  const wasmErr = await tryBackend('wasm');
  if (!wasmErr) return withThreads({ name: 'wasm', reason: `${notes.join('; ')}, so WASM` });
  notes.push(`WASM failed to start (${wasmErr})`);
  const cpuErr = await tryBackend('cpu');
  if (!cpuErr) return { name: 'cpu', reason: `${notes.join('; ')}, so the plain JS backend (slow)` };
  throw new BackendUnavailableError(`No compute backend could start: ${notes.join('; ')}; cpu: ${cpuErr}.`);
}

/** Whether the WASM module has failed (out of memory: malloc fails, then a bad access or an abort). After
 * that its heap is unusable and every call fails. Probed with a one-element op. */
export function wasmFailed(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  try {
    tf.tidy(() => {
      tf.add(tf.scalar(1), tf.scalar(1)).dataSync();
    });
    return false;
  } catch {
    return true;
  }
}

/** Drop a failed WASM backend so that the next selectBackend starts a fresh one (a new heap). Tensors of
 * the old one become inert: disposing them does nothing, since its module can no longer free memory. */
export function discardWasmBackend(): void {
  const old = tf.findBackend('wasm') as (tf.KernelBackend & { dispose(): void; disposeData(id: object): boolean }) | null;
  const factory = tf.findBackendFactory('wasm');
  if (!old || !factory) return;
  old.dispose = () => {};
  old.disposeData = () => true;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory);
}

