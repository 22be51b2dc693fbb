// A model folder on disk, for Node hosts (CLI, tests, benchmarks).
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ModelFileMissingError } from '../engine/errors';
import { filesFor, type ModelFiles, type ReadOptions } from '../engine/source';
import { hubAccessFromEnv } from './hub';

export class DirModelFiles implements ModelFiles {
  readonly where: string;
  constructor(
    private readonly dir: string,
    readonly id = dir,
  ) {
    this.where = resolve(dir);
  }

  read(file: string, opts?: ReadOptions & { optional?: false }): Promise<Uint8Array>;
  read(file: string, opts: ReadOptions & { optional: true }): Promise<Uint8Array | null>;
  async read(file: string, opts: ReadOptions = {}): Promise<Uint8Array | null> {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.dir, file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (opts.optional) return null;
      throw new ModelFileMissingError(file, this.where);
    }
    const out = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    opts.onProgress?.({ file, loaded: out.byteLength, total: out.byteLength, cached: true });
    return out;
  }
}

/** A CLI --model argument: an existing directory, an http(s) URL, or a Hub repo id (on HF_ENDPOINT, with HF_TOKEN). */
export async function resolveModelArg(arg: string): Promise<ModelFiles> {
  if (/^https?:\/\//.test(arg)) return filesFor({ kind: 'url', url: arg });
  const isDir = await stat(arg).then((s) => s.isDirectory(), () => false);
  if (isDir) return new DirModelFiles(arg);
  const [repo, revision] = arg.split('@');
  return filesFor({ kind: 'hub', repo, revision, hub: hubAccessFromEnv() });
}
