// PEFT adapter folders as zip files, for download and upload in the page.
import { unzipSync, zipSync } from 'fflate';
import { downloadBlob } from './download';
import type { EngineClient } from './engine-client';

export async function downloadAdapterZip(engine: EngineClient, name: string): Promise<void> {
  const files = await engine.exportAdapter();
  const zip = zipSync(Object.fromEntries(Object.entries(files).map(([f, bytes]) => [`${name}/${f}`, bytes])));
  downloadBlob(new Blob([zip as Uint8Array<ArrayBuffer>], { type: 'application/zip' }), `${name}.zip`);
}

/** The adapter files inside a zip, wherever the folder sits in it. */
export async function adapterFilesFromZip(file: File): Promise<Record<string, Uint8Array>> {
  const entries = unzipSync(new Uint8Array(await file.arrayBuffer()));
  const out: Record<string, Uint8Array> = {};
  for (const [path, bytes] of Object.entries(entries)) {
    const base = path.split('/').pop()!;
    if (base === 'adapter_config.json' || base === 'adapter_model.safetensors') out[base] = bytes;
  }
  return out;
}
