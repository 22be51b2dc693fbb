// --adapter <dir>: a PEFT folder made the engine's live adapter; its warnings go to stderr.
import type { Engine } from '../engine/engine';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../engine/peft';
import { DirModelFiles } from '../node/dir-files';

export async function applyAdapterDir(engine: Engine, dir: string): Promise<void> {
  const folder = new DirModelFiles(dir);
  const files: Record<string, Uint8Array> = {};
  for (const name of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) files[name] = await folder.read(name);
  const adapter = await engine.importAdapter(files);
  for (const w of adapter.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
}
