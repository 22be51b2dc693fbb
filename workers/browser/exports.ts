// Exports in the browser: written as they are made into the origin's private file system (OPFS), then handed
// to the page as a disk-backed File for download — a model-sized file is never held in memory, let alone
// twice. A writable's bytes become the file only on close(), so a failed export leaves nothing behind.
import type { ByteSink } from '../engine/export/sink';

const DIR = 'webtune-exports';

/** A new file in the exports folder; the previous exports are removed first (each can be gigabytes). */
export async function exportFile(name: string): Promise<{ sink: ByteSink; abort(): Promise<void>; file(): Promise<File> }> {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(DIR, { recursive: true }).catch(() => {}); // absent the first time
  const dir = await root.getDirectoryHandle(DIR, { create: true });
  const handle = await dir.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  return {
    sink: {
      write: async (bytes) => writable.write(bytes as Uint8Array<ArrayBuffer>),
      close: () => writable.close(),
    },
    abort: async () => {
      await writable.abort().catch(() => {});
      await dir.removeEntry(name).catch(() => {});
    },
    file: () => handle.getFile(),
  };
}
