// Node host set-up: point the WASM backend at the package's own binaries.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { configureWasm } from '../engine/backend';

let done = false;
export function setupNodeHost(): void {
  if (done) return;
  done = true;
  const require = createRequire(import.meta.url);
  configureWasm(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/');
}
