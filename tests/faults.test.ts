// Faults planted on the CLI in real processes, each checked byte for byte: kill -9 in the middle of checkpointing
// (every checkpoint left is whole, a dead writer's temporary file is swept, and the resumed run ends with the same
// adapter as an uninterrupted one), and a real full disk (a small tmpfs): checkpoints warn and training goes on,
// an adapter that cannot be written leaves the previous one exactly as it was, and no temporary file is left.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../workers/engine/train/checkpoint';
import { CLI, cli, snapshot } from './cli-helpers';
import { modelDir } from './helpers';
import { QA } from './train-helpers';

const temporaries = (dir: string) => Object.keys(snapshot(dir)).filter((f) => /\.tmp-\d+$/.test(f));

const figures: Record<string, unknown> = {};
afterAll(() => {
  mkdirSync('.reliability', { recursive: true });
  writeFileSync('.reliability/faults.json', JSON.stringify(figures, null, 2));
});

const dir = mkdtempSync(join(tmpdir(), 'webtune-faults-'));
const data = join(dir, 'qa.jsonl');
writeFileSync(data, QA.slice(0, 4).map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n');
// One step per epoch, so a checkpoint is written after every step.
const trainArgs = (out: string, ...extra: string[]) => ['train', '--model', modelDir('llama-tied-gqa-f32'), '--data', data, '--out', out, '--batch-size', '4', '--val-split', '0', '--seed', '5', ...extra];

describe('kill -9 while checkpointing', () => {
  it('leaves only whole checkpoints, sweeps a dead writer’s temporary file, and resumes to the same adapter', async () => {
    const EPOCHS = '24';
    const reference = join(dir, 'reference');
    const ref = await cli(...trainArgs(reference, '--epochs', EPOCHS));
    expect(ref.code, ref.stderr).toBe(0);

    const out = join(dir, 'killed');
    const killedAt: number[] = [];
    const delaysMs = [0, 2, 7];
    let resume: string | null = null;
    for (const delay of delaysMs) {
      const args = trainArgs(out, '--epochs', EPOCHS, ...(resume ? ['--resume', resume] : []));
      const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      // Kill a few checkpoints after the start (or the resume), `delay` ms after one is reported saved: the next
      // one is being written then, or about to be.
      const saved = await new Promise<number>((resolve, reject) => {
        let text = '';
        let seen = 0;
        child.stderr.on('data', (b: Buffer) => {
          text += b.toString();
          const n = (text.match(/checkpoint epoch-\d+ saved/g) ?? []).length;
          if (n > seen && (seen = n) === 3) {
            setTimeout(() => {
              child.kill('SIGKILL');
              resolve(Number([...text.matchAll(/checkpoint epoch-(\d+) saved/g)].at(-1)![1]));
            }, delay);
          }
        });
        child.on('exit', (code, signal) => signal !== 'SIGKILL' && reject(new Error(`the run ended (${code}) before it was killed:\n${text}`)));
      });
      await new Promise((r) => child.on('close', r));
      killedAt.push(saved);
      // Every checkpoint file left is whole: it decodes, header and tensors.
      const runs = readdirSync(join(out, 'checkpoints'));
      expect(runs).toHaveLength(1); // resumes stay in the run's own folder
      const ckptDir = join(out, 'checkpoints', runs[0]);
      const ckpts = readdirSync(ckptDir).filter((f) => f.endsWith('.ckpt'));
      for (const f of ckpts) expect(() => decodeCheckpoint(new Uint8Array(readFileSync(join(ckptDir, f)))), f).not.toThrow();
      const latest = ckpts.map((f) => Number(/epoch-(\d+)/.exec(f)![1])).sort((a, b) => b - a)[0];
      expect(latest).toBeGreaterThanOrEqual(saved);
      resume = join(ckptDir, `epoch-${latest}.ckpt`);
    }

    // A temporary file of a writer that no longer runs (what kill -9 leaves when it lands inside a write).
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const ckptDir = join(out, 'checkpoints', readdirSync(join(out, 'checkpoints'))[0]);
    writeFileSync(join(ckptDir, `epoch-99.ckpt.tmp-${dead}`), 'half a checkpoint');
    const last = await cli(...trainArgs(out, '--epochs', EPOCHS, '--resume', resume!));
    expect(last.code, last.stderr).toBe(0);
    expect(temporaries(out)).toEqual([]);
    // The interrupted run, resumed three times, ends exactly where the uninterrupted one did.
    expect(readFileSync(join(out, 'adapter_model.safetensors')).equals(readFileSync(join(reference, 'adapter_model.safetensors')))).toBe(true);
    figures.kill9 = { kills: delaysMs.length, delaysAfterASaveMs: delaysMs, killedAfterCheckpoints: killedAt, steps: Number(EPOCHS), adapterIdenticalToUninterrupted: true, temporaryFilesLeft: 0 };
  }, 180_000);
});

// A real full disk needs a small filesystem: a tmpfs, which only root may mount.
const mountPoint = join(dir, 'disk');
mkdirSync(mountPoint);
const mounted = process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]).status === 0;
afterAll(() => {
  if (mounted) spawnSync('umount', [mountPoint]);
  rmSync(dir, { recursive: true, force: true });
});

/** Fill the disk, then give back `free` bytes: the next writes larger than that fail with ENOSPC. */
function fill(free: number): string {
  const filler = join(mountPoint, 'filler');
  const fd = openSync(filler, 'a');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (e) {
    expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    closeSync(fd);
  }
  truncateSync(filler, Math.max(0, statSync(filler).size - free));
  return filler;
}

describe.skipIf(!mounted)('a full disk (a 2 MiB tmpfs)', () => {
  it('checkpoints warn and training goes on; an adapter that cannot be written leaves the previous one whole', async () => {
    const out = join(mountPoint, 'adapter');
    const first = await cli(...trainArgs(out, '--epochs', '3'));
    expect(first.code, first.stderr).toBe(0);
    const before = snapshot(out);

    // No room at all: every checkpoint fails and the new adapter cannot be written.
    const filler = fill(0);
    const full = await cli(...trainArgs(out, '--epochs', '3', '--overwrite', '--seed', '6'));
    expect(full.code).not.toBe(0);
    expect(full.stderr).toMatch(/warning: Checkpoint epoch-1 was not saved: the disk is full\. Training continues/);
    expect(full.stderr).toMatch(/error: DiskFullError: The adapter could not be written to .*: the disk is full\. The adapter already there is unchanged\./);
    expect(full.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const after = snapshot(out);
    for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'webtune_run.json']) expect(after[f], f).toBe(before[f]);
    for (const [f, bytes] of Object.entries(before)) expect(after[f], f).toBe(bytes); // the first run's checkpoints too
    expect(temporaries(mountPoint)).toEqual([]);

    // Room for an adapter (63 kB) but not for a checkpoint (188 kB): training warns at each and writes the adapter.
    rmSync(filler);
    fill(128 * 1024);
    const tight = await cli(...trainArgs(out, '--epochs', '3', '--overwrite', '--seed', '6'));
    expect(tight.code, tight.stderr).toBe(0);
    expect((tight.stderr.match(/was not saved: the disk is full/g) ?? []).length).toBe(3);
    const written = snapshot(out);
    expect(written['adapter_model.safetensors']).not.toBe(before['adapter_model.safetensors']); // the new run's
    for (const [f, bytes] of Object.entries(before)) if (f.endsWith('.ckpt')) expect(written[f], f).toBe(bytes);
    expect(temporaries(mountPoint)).toEqual([]);
    figures.fullDisk = {
      disk: 'tmpfs, 2 MiB',
      noRoom: { exit: full.code, message: /error: (.*)/.exec(full.stderr)?.[1], checkpointWarnings: (full.stderr.match(/was not saved/g) ?? []).length, previousFilesUnchanged: Object.keys(before).length },
      roomForAdapterOnly: { exit: tight.code, checkpointWarnings: 3, adapterWritten: true },
      temporaryFilesLeft: 0,
    };
  }, 120_000);
});

// The hostile probe that found these faults, replayed through the CLI: each planted input gets a named error that
// says what and where, and a refused run changes nothing on disk.
describe('the hostile probe, item by item', () => {
  it('every planted input is refused or read by name, and nothing on disk changes', async () => {
    const p = join(dir, 'probe');
    mkdirSync(p);
    const out = join(p, 'adapter');
    const first = await cli(...trainArgs(out, '--epochs', '2'));
    expect(first.code, first.stderr).toBe(0);
    const before = snapshot(out);
    const ckpt = join(out, 'checkpoints', readdirSync(join(out, 'checkpoints'))[0], 'epoch-2.ckpt');

    // Planted inputs: a template that loops 10⁹ times, prompts that leave no answer token, UTF-16, gzip, JSONL in .json.
    const evil = join(p, 'evil-model');
    spawnSync('cp', ['-r', modelDir('llama-tied-gqa-f32'), evil]);
    const tc = JSON.parse(readFileSync(join(evil, 'tokenizer_config.json'), 'utf8'));
    writeFileSync(join(evil, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: '{% for i in range(1000000000) %}x{% endfor %}' }));
    const lines = QA.slice(0, 2).map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n';
    const long = QA.slice(0, 2).map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q.repeat(20) }, { role: 'assistant', content: a }] })).join('\n') + '\n';
    writeFileSync(join(p, 'long.jsonl'), long);
    writeFileSync(join(p, 'lines.json'), lines);
    writeFileSync(join(p, 'u16.jsonl'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(lines, 'utf16le')]));
    writeFileSync(join(p, 'data.jsonl.gz'), spawnSync('gzip', ['-c'], { input: lines }).stdout);
    const wrongRank = join(p, 'wrong-rank');
    mkdirSync(wrongRank);
    writeFileSync(join(wrongRank, 'adapter_model.safetensors'), readFileSync(join(out, 'adapter_model.safetensors')));
    writeFileSync(join(wrongRank, 'adapter_config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')), r: 4 }));

    const tiny = modelDir('llama-tied-gqa-f32');
    const probes = {
      '1 · a second run into an --out that holds one': [trainArgs(out, '--epochs', '2'), /already holds a run \(adapter_config\.json, 2 checkpoints\)\. Give --resume <checkpoint> to continue it, --overwrite/],
      '3 · --resume with a checkpoint of another base model': [trainArgs(out, '--epochs', '3', '--resume', ckpt).map((a) => (a === tiny ? modelDir('qwen2-bias-bf16') : a)), /CheckpointMismatchError: Checkpoint .*epoch-2.* belongs to another run: its base model is/],
      '3 · --resume with other LoRA targets': [[...trainArgs(out, '--epochs', '3', '--resume', ckpt), '--targets', 'q_proj,v_proj'], /CheckpointMismatchError: Checkpoint epoch-2 belongs to another run: its LoRA targets are \[/],
      '4 · a chat template that loops 10⁹ times': [['generate', '--model', evil, '--prompt', 'hi', '--max-new-tokens', '2'], /ChatTemplateError: The chat template in tokenizer_config\.json failed .*range\(\) was asked for 1000000000 more items/],
      '5 · every answer cut off by --max-seq-len': [trainArgs(join(p, 'o1'), '--data', join(p, 'long.jsonl'), '--max-seq-len', '32', '--epochs', '1'), /No training example has a token to learn from: 2 of 2 lost every trained \(assistant\) token to the 32-token limit/],
      '5 · --max-seq-len past max_position_embeddings': [trainArgs(join(p, 'o2'), '--max-seq-len', '2048', '--epochs', '1'), /max_position_embeddings 512/],
      '6 · an adapter whose adapter_config.json says another rank': [['generate', '--model', tiny, '--adapter', wrongRank, '--prompt', 'hi', '--max-new-tokens', '2'], /adapter_config\.json/],
      '7 · a UTF-16 file (PowerShell >)': [['validate', '--model', tiny, '--data', join(p, 'u16.jsonl')], /2 usable.*\n.*utf16_decoded: The file is UTF-16 \(little-endian\)/],
      '7 · a gzip file': [['validate', '--data', join(p, 'data.jsonl.gz')], /DatasetEncodingError: .*data\.jsonl\.gz is gzip-compressed\. Decompress it first/],
      '7 · JSONL in a .json file': [['validate', '--data', join(p, 'lines.json')], /line 2: invalid_json: .*this looks like JSONL .*rename the file to \.jsonl/],
    } as const;
    const seen: Record<string, { exit: number; said: string }> = {};
    for (const [what, [args, expected]] of Object.entries(probes)) {
      const r = await cli(...(args as readonly string[]));
      const text = r.stderr + r.stdout;
      expect(text, what).toMatch(expected);
      // What the user read: the whole line(s) holding the match, with this test's folder written as <tmp>.
      const at = text.search(expected);
      const said = text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\n', at + text.slice(at).match(expected)![0].length - 1) + 1 || undefined).trim().replaceAll(dir, '<tmp>');
      expect(r.stderr, what).not.toMatch(/\n\s+at /); // named errors, no stack trace
      seen[what] = { exit: r.code, said };
    }
    expect(snapshot(out)).toEqual(before); // the refused runs changed nothing
    figures.probe = seen;
  }, 180_000);
});
