// tfjs-backend-wasm's threaded build in Node, so the CLI, the benchmarks and the tests can run XNNPACK on every core.
// tfjs 4.22 turns threads off in Node (its WASM_HAS_MULTITHREAD_SUPPORT flag is false there: tfjs issue 3830), though
// the build's Emscripten glue runs its threads on worker_threads. Three things of tfjs's start stand in the way, each
// bridged only while the backend starts (start() below), then put back:
// - the pthread worker's script is handed over as a Blob URL, which a Node Worker cannot load: it is written to a
//   file in the system's temporary folder, named by its content so that every process shares one, and that file's
//   path is handed over instead;
// - the glue each worker loads is sent as a Blob of the factory's source text, which, bundled, no longer runs on its
//   own (nor can Node post a Blob to a worker): the path of the package's own glue file is sent instead;
// - XNNPACK's pool is capped at half of the logical cores (for SMT), one thread, that is none, on two cores: the
//   cores the glue counts are doubled.
// The pool's workers (eight, the glue's fixed pool) are all made, and XNNPACK's threads started on them, while the
// backend starts. The glue holds a worker's thread open (ref) while it runs, and XNNPACK's run until the process
// ends, so a process whose work is done would never exit: those holds are not taken.
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '../engine/tf';
import type { ThreadedWasmStart } from '../engine/backend';
import type { SpawnHelper } from '../engine/ops/simd-pool';

/** The glue's pool of pthread workers, all made at start: XNNPACK can use no more threads than these. */
const POOL = 8;

/** `text` as a file in the temporary folder, named by its hash: written once (whole, by rename), then shared. */
function scriptFile(text: string): string {
  const file = join(os.tmpdir(), `webtune-pthread-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.cjs`);
  if (!existsSync(file)) {
    const part = `${file}.${process.pid}`;
    writeFileSync(part, text);
    renameSync(part, file);
  }
  return file;
}

export function nodeThreadedWasm(): ThreadedWasmStart {
  const require = createRequire(import.meta.url);
  const glue = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  return {
    cores: Math.min(os.availableParallelism(), POOL),
    async start(setBackend) {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      const texts = new WeakMap<Blob, string>();
      const [OriginalBlob, createObjectURL, postMessage, ref, cpus] = [globalThis.Blob, URL.createObjectURL, Worker.prototype.postMessage, Worker.prototype.ref, os.cpus];
      globalThis.Blob = class extends OriginalBlob {
        constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
          super(parts, options);
          if (parts?.length === 1 && typeof parts[0] === 'string') texts.set(this, parts[0]);
        }
      };
      URL.createObjectURL = (blob: Blob) => {
        const text = texts.get(blob);
        if (text === undefined || !text.includes('urlOrBlob')) return createObjectURL(blob);
        return scriptFile(text);
      };
      Worker.prototype.postMessage = function (this: Worker, message: unknown, transfer?: readonly Transferable[]) {
        const m = message as { cmd?: string; urlOrBlob?: unknown };
        return postMessage.call(this, m?.cmd === 'load' && typeof m.urlOrBlob !== 'string' ? { ...m, urlOrBlob: glue } : message, transfer as never);
      };
      (os as { cpus: typeof cpus }).cpus = () => [...cpus(), ...cpus()];
      Worker.prototype.ref = () => {};
      try {
        return await setBackend();
      } finally {
        [globalThis.Blob, URL.createObjectURL, Worker.prototype.postMessage, Worker.prototype.ref] = [OriginalBlob, createObjectURL, postMessage, ref];
        (os as { cpus: typeof cpus }).cpus = cpus;
      }
    },
  };
}

/** A helper thread of the SIMD module's pool (engine/ops/simd-pool.ts), which no more holds the process open than XNNPACK's. */
export const spawnNodeHelper: SpawnHelper = (source) => {
  const worker = new Worker(source, { eval: true });
  worker.unref();
  return worker;
};
