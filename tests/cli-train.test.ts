// The CLI tunes a tiny model that then reproduces its training answers; the folder has PEFT's names and shapes.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseSafetensorsHeader } from '../workers/engine/safetensors';
import { modelDir } from './helpers';
import { QA } from './train-helpers';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', ...args], { maxBuffer: 1 << 24 });

describe('cli train', () => {
  it('tunes, exports a PEFT folder, and generate --adapter reproduces the answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webtune-cli-'));
    const data = join(dir, 'qa.jsonl');
    const lines = QA.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }));
    lines.splice(2, 0, '{"messages": "oops"}'); // a bad line is listed and skipped, not fatal
    writeFileSync(data, lines.join('\n') + '\n');
    const out = join(dir, 'adapter');
    const { stdout, stderr } = await cli('train', '--model', modelDir('llama-tied-gqa-f32'), '--data', data, '--out', out, '--epochs', '60', '--batch-size', '8', '--lr', '0.01', '--dropout', '0', '--val-split', '0', '--json');
    expect(stderr).toContain(`${data}:3: missing_messages: "messages" must be a non-empty array`);
    const objs = stdout.trim().split('\n').map((l) => JSON.parse(l));
    const stepsLogged = objs.filter((o) => 'loss' in o);
    expect(stepsLogged.length).toBe(60);
    expect(Object.keys(stepsLogged[0])).toEqual(expect.arrayContaining(['step', 'loss', 'lr']));
    const done = objs[objs.length - 1];
    expect(done).toMatchObject({ done: true, adapter: out });
    expect(done.train_loss).toBeLessThan(0.1 * stepsLogged[0].loss);

    expect(readdirSync(out).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'checkpoints']);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, bias: 'none', fan_in_fan_out: false, use_rslora: false });
    const bytes = new Uint8Array(readFileSync(join(out, 'adapter_model.safetensors')));
    const names = parseSafetensorsHeader(bytes, 'adapter_model.safetensors').tensors.map((t) => t.name);
    expect(names.length).toBe(2 * 7 * 2);
    for (const n of names) expect(n).toMatch(/^base_model\.model\.model\.layers\.[01]\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.lora_[AB]\.weight$/);

    for (const [q, a] of QA.slice(0, 3)) {
      const g = await cli('generate', '--model', modelDir('llama-tied-gqa-f32'), '--adapter', out, '--prompt', q, '--max-new-tokens', '48', '--json');
      const last = JSON.parse(g.stdout.trim().split('\n').pop()!);
      expect(last.text).toBe(a);
    }
    const base = await cli('generate', '--model', modelDir('llama-tied-gqa-f32'), '--adapter', out, '--lora-scale', '0', '--prompt', QA[0][0], '--max-new-tokens', '48', '--json');
    expect(JSON.parse(base.stdout.trim().split('\n').pop()!).text).not.toBe(QA[0][1]);
  });
});
