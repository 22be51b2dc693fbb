// Checkpoints as files: written to a temporary name, flushed, then renamed, so a crash leaves either the
// previous file set or the complete new file, never a partial one.
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointNotFoundError } from '../engine/errors';
import { decodeCheckpoint, type CheckpointMeta, type CheckpointStore } from '../engine/train/checkpoint';

export class DirCheckpointStore implements CheckpointStore {
  /** `onSkip`: told of a file in the folder that is not a readable checkpoint (it is left alone and skipped). */
  constructor(
    private readonly dir: string,
    private readonly onSkip?: (file: string, why: string) => void,
  ) {}

  async save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, `${meta.name}.ckpt`), bytes);
  }

  async load(name: string): Promise<Uint8Array> {
    const b = await readFile(join(this.dir, `${name}.ckpt`)).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      const stored = (await readdir(this.dir).catch(() => [] as string[])).filter((f) => f.endsWith('.ckpt')).map((f) => f.slice(0, -5));
      throw new CheckpointNotFoundError(name, this.dir, stored.sort());
    });
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  async list(): Promise<CheckpointMeta[]> {
    await sweepOrphans(this.dir); // a writer killed mid-write (kill -9, power loss) leaves its temporary file
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const metas: CheckpointMeta[] = [];
    for (const n of names.filter((f) => f.endsWith('.ckpt'))) {
      try {
        metas.push(decodeCheckpoint(await this.load(n.slice(0, -5))).meta);
      } catch (e) {
        this.onSkip?.(join(this.dir, n), (e as Error).message);
      }
    }
    return metas.sort((a, b) => a.step - b.step);
  }

  async delete(name: string): Promise<void> {
    await rm(join(this.dir, `${name}.ckpt`), { force: true });
  }
}

/**
 * Write a file so that a crash or a full disk leaves either the previous file or the complete new one: a
 * temporary name beside it, flushed, then renamed into place. On failure the temporary file is removed.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await writeFilesAtomic([[path, bytes]]);
}

/**
 * Several files that belong together (an adapter's weights, its config and its run settings): every one is written
 * whole to its temporary name first, and only then are they renamed into place. A full disk or any failed write
 * therefore leaves all the previous files as they were (and removes the temporary ones); renames need no space.
 */
export async function writeFilesAtomic(files: readonly (readonly [path: string, bytes: Uint8Array])[]): Promise<void> {
  const tmps = files.map(([path]) => `${path}.tmp-${process.pid}`);
  try {
    for (const [i, [, bytes]] of files.entries()) {
      const fh = await open(tmps[i], 'w');
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  } catch (e) {
    await Promise.all(tmps.map((t) => rm(t, { force: true })));
    throw e;
  }
  for (const [i, [path]] of files.entries()) await rename(tmps[i], path);
}

/** Remove the temporary files (`<name>.tmp-<pid>`) that writers no longer running left in a folder. */
export async function sweepOrphans(dir: string): Promise<string[]> {
  const swept: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(/\.tmp-(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    await rm(join(dir, name), { force: true });
    swept.push(name);
  }
  return swept;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}
