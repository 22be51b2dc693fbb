// Checkpoints as files: written to a temporary name, flushed, then renamed, so a crash leaves either the
// previous file set or the complete new file, never a partial one.
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeCheckpoint, type CheckpointMeta, type CheckpointStore } from '../engine/train/checkpoint';

export class DirCheckpointStore implements CheckpointStore {
  constructor(private readonly dir: string) {}

  async save(meta: CheckpointMeta, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const final = join(this.dir, `${meta.name}.ckpt`);
    const tmp = `${final}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
  }

  async load(name: string): Promise<Uint8Array> {
    const b = await readFile(join(this.dir, `${name}.ckpt`));
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  async list(): Promise<CheckpointMeta[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const metas: CheckpointMeta[] = [];
    for (const n of names.filter((f) => f.endsWith('.ckpt'))) metas.push(decodeCheckpoint(await this.load(n.slice(0, -5))).meta);
    return metas.sort((a, b) => a.step - b.step);
  }

  async delete(name: string): Promise<void> {
    await rm(join(this.dir, `${name}.ckpt`), { force: true });
  }
}
