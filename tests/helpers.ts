import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../workers/engine/backend';
import { Engine } from '../workers/engine/engine';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';

export const MODELS_DIR = '.models';
export const modelDir = (name: string) => join(MODELS_DIR, name);
export const CONFORMANCE = join('..', 'shared', 'conformance');
export const hasConformance = existsSync(CONFORMANCE);

export async function loadEngine(name: string, backend: BackendName = 'wasm'): Promise<Engine> {
  setupNodeHost();
  const engine = new Engine();
  await engine.loadFiles(new DirModelFiles(modelDir(name)), { backend });
  return engine;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
