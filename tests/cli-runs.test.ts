// Nothing the user made is lost by the CLI: a second run into an --out that holds one refuses and changes
// nothing; --overwrite keeps both runs' checkpoints apart; --resume finds a checkpoint by name or path and
// lists what exists when it cannot; adapter files are replaced only whole; a full disk while checkpointing
// warns and training goes on.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../workers/node/dir-checkpoints';
import { MemoryCheckpointStore } from '../workers/engine/train/checkpoint';
import { cli, snapshot } from './cli-helpers';
import { loadEngine, modelDir } from './helpers';
import { chats, makeTrainer, QA } from './train-helpers';

describe('cli train runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webtune-runs-'));
  const data = join(dir, 'qa.jsonl');
  writeFileSync(data, QA.slice(0, 4).map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n');
  const out = join(dir, 'adapter');
  const train = (...extra: string[]) => cli('train', '--model', modelDir('llama-tied-gqa-f32'), '--data', data, '--out', out, '--epochs', '2', '--batch-size', '4', '--val-split', '0', ...extra);

  it('a second run into the same --out refuses and changes nothing; --overwrite keeps both runs apart; --resume by name, path, or a listed miss', async () => {
    const first = await train();
    expect(first.code, first.stderr).toBe(0);
    const before = snapshot(out);
    expect(Object.keys(before).filter((f) => f.endsWith('.ckpt'))).toHaveLength(2); // epoch-1, epoch-2 of one run

    const again = await train();
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds a run \(adapter_config\.json, 2 checkpoints\)\. Give --resume <checkpoint> to continue it, --overwrite/);
    expect(snapshot(out)).toEqual(before);

    const over = await train('--overwrite', '--seed', '7');
    expect(over.code, over.stderr).toBe(0);
    const runs = readdirSync(join(out, 'checkpoints'));
    expect(runs).toHaveLength(2); // each run its own folder: the first run's checkpoints are untouched
    const after = snapshot(out);
    for (const [f, bytes] of Object.entries(before)) if (f.endsWith('.ckpt')) expect(after[f]).toBe(bytes);
    expect(after['adapter_model.safetensors']).not.toBe(before['adapter_model.safetensors']);

    const missing = await train('--resume', 'epoch-99');
    expect(missing.stderr).toMatch(/--resume: there is no checkpoint "epoch-99" in .*checkpoints\. It has: epoch-1, epoch-2\./);
    expect(missing.stderr).not.toMatch(/ENOENT|\n\s+at /);
    const firstRun = Object.keys(before).find((f) => f.endsWith('epoch-1.ckpt'))!;
    const byPath = await train('--resume', join(out, firstRun), '--epochs', '3');
    expect(byPath.code, byPath.stderr).toBe(0);
    expect(readdirSync(join(out, 'checkpoints'))).toHaveLength(2); // resumed inside its own run folder
    expect(byPath.stderr).toContain(`checkpoints in ${join(out, firstRun.split('/').slice(0, -1).join('/'))}`);
  }, 120_000);

  it('a file is replaced only whole: a failed write leaves the old file and no temporary one', async () => {
    const d = mkdtempSync(join(tmpdir(), 'webtune-atomic-'));
    const target = join(d, 'adapter_model.safetensors');
    writeFileSync(target, 'old');
    await writeFileAtomic(target, new TextEncoder().encode('new'));
    expect(readFileSync(target, 'utf8')).toBe('new');
    mkdirSync(join(d, 'blocked'));
    mkdirSync(join(d, 'blocked', 'x.tmp-' + process.pid)); // the temporary name cannot be written
    writeFileSync(join(d, 'blocked', 'x'), 'kept');
    await expect(writeFileAtomic(join(d, 'blocked', 'x'), new TextEncoder().encode('lost'))).rejects.toThrow();
    expect(readFileSync(join(d, 'blocked', 'x'), 'utf8')).toBe('kept');
  });
});

describe('a full disk while checkpointing', () => {
  it('warns with the checkpoint named and training goes on to the end', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    // A store whose disk fills after its first checkpoint: the write fails as Node's fs fails (ENOSPC).
    const store = new MemoryCheckpointStore();
    const save = store.save.bind(store);
    let saves = 0;
    store.save = async (meta, bytes) => {
      if (saves++ >= 1) throw Object.assign(new Error(`ENOSPC: no space left on device, open '${meta.name}.ckpt.tmp'`), { code: 'ENOSPC' });
      return save(meta, bytes);
    };
    const warnings: string[] = [];
    const t = makeTrainer(engine, chats().slice(0, 4), { epochs: 3, batchSize: 4, valSplit: 0 }, {}, { store });
    const summary = await t.run((e) => e.type === 'warning' && warnings.push(e.message));
    expect(summary.steps).toBe(3);
    expect(warnings).toEqual([expect.stringMatching(/^Checkpoint epoch-2 was not saved: the disk is full\. Training continues/), expect.stringMatching(/^Checkpoint epoch-3 was not saved/)]);
    expect((await store.list()).map((m) => m.name)).toEqual(['epoch-1']);
    t.dispose();
    engine.unload();
  });
});
