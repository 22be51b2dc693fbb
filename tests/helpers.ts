import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../workers/engine/backend';
import { Engine } from '../workers/engine/engine';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';
import * as tf from '../workers/engine/tf';
import { LINEAR_MODULES } from '../workers/engine/config';
import { LoraAdapter } from '../workers/engine/lora';
import { Rng } from '../workers/engine/sampling';

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

/** A LoRA adapter on every linear module of the loaded model, with a random B (a fresh one changes nothing), set on the engine. */
export function setRandomAdapter(engine: Engine, seed = 11): LoraAdapter {
  const adapter = LoraAdapter.create(engine.current.config, { rank: 4, alpha: 8, dropout: 0, targets: [...LINEAR_MODULES], rslora: false }, 3);
  const rng = new Rng(seed);
  for (const { B } of adapter.modules.values()) B.assign(tf.tensor(Float32Array.from({ length: B.size }, () => (rng.next() - 0.5) * 0.6), B.shape));
  engine.setAdapter(adapter);
  return adapter;
}
