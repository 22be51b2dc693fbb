// Export sinks on disk. Everything is written under a temporary name beside the target and moved into place
// only when complete, so an export that fails or is killed leaves no half-written file or folder behind.
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidRequestError } from '../engine/errors';
import type { ByteSink, FolderSink } from '../engine/export/sink';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Refuse to replace what the user has, unless asked to. */
export async function checkTarget(path: string, overwrite: boolean): Promise<void> {
  if (!overwrite && (await exists(path))) throw new InvalidRequestError(`${path} already exists; choose another --out, or pass --overwrite to replace it.`);
}

class FileSink implements ByteSink {
  constructor(private readonly fh: FileHandle) {}
  async write(bytes: Uint8Array): Promise<void> {
    await this.fh.write(bytes);
  }
  async close(): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
  }
}

/** A temporary file or folder beside `target`, moved over it by `commit`, removed by `abandon`. */
export class PendingOutput {
  readonly temp: string;
  private readonly open = new Set<FileHandle>();
  constructor(readonly target: string) {
    this.temp = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
  }

  /** One file: the export writes `temp`. */
  async file(): Promise<ByteSink> {
    const fh = await open(this.temp, 'w');
    this.open.add(fh);
    return new FileSink(fh);
  }

  /** A folder: the export writes files inside `temp`. */
  async folder(): Promise<FolderSink> {
    await mkdir(this.temp, { recursive: true });
    return {
      file: async (name: string) => {
        if (!/^[\w.-]+$/.test(name)) throw new Error(`not a plain file name: ${name}`);
        const fh = await open(join(this.temp, name), 'w');
        this.open.add(fh);
        return new FileSink(fh);
      },
    };
  }

  async commit(): Promise<void> {
    await rm(this.target, { recursive: true, force: true });
    await rename(this.temp, this.target);
  }

  async abandon(): Promise<void> {
    for (const fh of this.open) await fh.close().catch(() => {});
    await rm(this.temp, { recursive: true, force: true });
  }
}
