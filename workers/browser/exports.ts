// Exports in the browser: written as they are made into the origin's private file system (OPFS), then handed
// to the page as a disk-backed File for download — a model-sized file is never held in memory, let alone
// twice. A writable's bytes become the file only when it closes, so a failed export leaves nothing behind.
import { InvalidRequestError } from '../engine/errors';
import type { Engine } from '../engine/engine';
import { writeModelGguf } from '../engine/export/gguf-model';
import { writeMergedFolder } from '../engine/export/merged';
import type { ByteSink, ExportProgress } from '../engine/export/sink';
import type { Example, GgufType, MergedDtype, RunRecord } from '../shared/types';
import { zipSync } from 'fflate';
import { llamaFactoryRecipe, runSettings } from '../engine/export/llama-factory';
import { zipFolder } from './zip-folder';
import { modelName } from '../shared/names';

const DIR = 'webtune-exports';

/** A new file in the exports folder; the previous exports are removed first (each can be gigabytes). */
async function exportFile(name: string) {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(DIR, { recursive: true }).catch(() => {}); // absent the first time
  const dir = await root.getDirectoryHandle(DIR, { create: true });
  const handle = await dir.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  const sink: ByteSink = { write: (bytes) => writable.write(bytes as Uint8Array<ArrayBuffer>), close: () => writable.close() };
  return {
    writable,
    sink,
    abort: async () => {
      await writable.abort().catch(() => {}); // already aborted by a failed pipe
      await dir.removeEntry(name).catch(() => {});
    },
    file: () => handle.getFile(),
  };
}

/** The file name of an export: the model's last path segment, -tuned when an adapter is folded in. */
function baseName(engine: Engine, suffix: string): string {
  if (engine.training) throw new InvalidRequestError('A training run is going on: export the model after it ends.');
  return `${modelName(engine.current.id)}${engine.adapter ? '-tuned' : ''}-${suffix}`.replace(/[^\w.-]/g, '_');
}

export async function exportGguf(engine: Engine, type: GgufType, loraScale: number, onProgress?: ExportProgress): Promise<File> {
  const out = await exportFile(`${baseName(engine, type)}.gguf`);
  try {
    await writeModelGguf(engine.current, engine.adapter, out.sink, { type, loraScale }, onProgress);
  } catch (e) {
    await out.abort();
    throw e;
  }
  return out.file();
}

/** The merged Hugging Face folder as one zip (stored, ZIP64 when large), the folder inside it. */
export async function exportMerged(engine: Engine, dtype: MergedDtype, loraScale: number, onProgress?: ExportProgress): Promise<File> {
  const name = baseName(engine, dtype.toLowerCase());
  const out = await exportFile(`${name}.zip`);
  const z = zipFolder(name);
  const piped = z.zip.pipeTo(out.writable); // closes the file when the zip ends
  try {
    await writeMergedFolder(engine.current, engine.adapter, z.folder, { dtype, loraScale }, onProgress);
    z.end();
    await piped;
  } catch (e) {
    z.fail(e);
    await piped.catch(() => {});
    await out.abort();
    throw e;
  }
  return out.file();
}

/** A run of this page as a LLaMA-Factory recipe (YAML, dataset_info.json, the data), zipped. The template is
 * the one the loaded model renders chats with now. */
export function exportRecipe(engine: Engine, run: RunRecord, examples: Example[]): File {
  const files = llamaFactoryRecipe(runSettings(engine, run.baseModel, run.train, run.lora), examples, 'webtune');
  const zip = zipSync(Object.fromEntries([...files].map(([name, bytes]) => [`webtune-llama-factory/${name}`, bytes])));
  return new File([zip as Uint8Array<ArrayBuffer>], 'webtune-llama-factory.zip', { type: 'application/zip' });
}
