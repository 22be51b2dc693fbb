// Where an export's bytes go: written in order, as they are made, so that no host holds a whole model twice.
// Hosts implement these over a directory (workers/node/) or a browser file (workers/browser/); a sink that
// is not closed leaves nothing the user could mistake for a finished export.

export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
  /** The file is complete. */
  close(): Promise<void>;
}

export interface FolderSink {
  /** A new file of the folder, by its plain name. */
  file(name: string): Promise<ByteSink>;
}

/** Write `bytes` as the whole of file `name`. */
export async function writeWhole(folder: FolderSink, name: string, bytes: Uint8Array): Promise<void> {
  const f = await folder.file(name);
  await f.write(bytes);
  await f.close();
}

/** Progress of an export: tensors written of all. */
export type ExportProgress = (done: number, total: number) => void;
