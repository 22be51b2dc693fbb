// Node host set-up: point the WASM backend at the package's own binaries, and start its threaded build here
// (workers/node/wasm-threads.ts) on as many threads as setWasmThreads asks for (default: one per logical core), with
// the helper threads of webtune's own SIMD kernels on worker_threads.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { configureWasm } from '../engine/backend';
import { setHelperSpawner } from '../engine/ops/simd-pool';
import { nodeThreadedWasm, spawnNodeHelper } from './wasm-threads';

let done = false;
export function setupNodeHost(): void {
  if (done) return;
  done = true;
  const require = createRequire(import.meta.url);
  configureWasm(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/', nodeThreadedWasm());
  setHelperSpawner(spawnNodeHelper);
}
