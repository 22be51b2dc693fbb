// The CLI's greedy ids equal the independent reference's, for every architecture in every format.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './cli-helpers';
import { modelDir } from './helpers';
import { loadRef, refGreedy } from './reference/llama-ref';

function lastJson(stdout: string): { prompt_ids: number[]; ids: number[]; text: string } {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('cli generate', () => {
  it.each(['llama-tied-gqa-f32', 'qwen2-bias-bf16', 'llama-headdim-sharded', 'qwen2-untied-sharded-f16', 'qwen3-headdim-bf16', 'gemma3-window-bf16', 'gemma3-v5-softcap-f32', 'gemma3-spm-bf16', 'llama3-rope-f32'])('%s: chat prompt, greedy ids equal the reference', async (name) => {
    const r = await cli('generate', '--model', modelDir(name), '--prompt', 'What is the capital of France?', '--max-new-tokens', '6', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout);
    expect(out.prompt_ids.length).toBeGreaterThan(10); // (system +) user + generation prompt
    const ref = loadRef(modelDir(name));
    const eos = JSON.parse(readFileSync(join(modelDir(name), 'generation_config.json'), 'utf8')).eos_token_id;
    expect(out.ids).toEqual(refGreedy(ref, out.prompt_ids, 6, eos));
  });

  // The tiny tokenizers' special tokens are ids 0…; each turn marker must be one id, where the format puts it.
  it.each([
    ['gemma3-window-bf16', [2, 4], [5], [4]], // <bos><start_of_turn>user … <end_of_turn> … <start_of_turn>model
    ['llama3-rope-f32', [0, 2], [4], [2]], // <|begin_of_text|><|start_header_id|>user<|end_header_id|> … <|eot_id|><|start_header_id|>assistant…
  ])('%s: the chat prompt opens, closes and hands over the turn with single special ids', async (name, opening, close, handover) => {
    const r = await cli('generate', '--model', modelDir(name), '--prompt', 'Hello', '--max-new-tokens', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const ids = lastJson(r.stdout).prompt_ids;
    expect(ids.slice(0, 2)).toEqual(opening);
    expect(ids.filter((id) => id === close[0])).toHaveLength(1);
    expect(ids.filter((id) => id === handover[0])).toHaveLength(2);
  });

  it('--threads: WASM on one thread, and on one per core through tfjs\'s threaded build started in Node, gives the reference\'s ids; the process exits', async () => {
    const cores = Math.min(availableParallelism(), 8);
    const args = ['generate', '--model', modelDir('llama-untied-mha-f16'), '--prompt-ids', '5,17,200', '--max-new-tokens', '6'];
    const want = refGreedy(loadRef(modelDir('llama-untied-mha-f16')), [5, 17, 200], 6, [2]);
    for (const threads of [1, cores]) {
      const said = await cli(...args, '--threads', String(threads));
      expect(said.code, said.stderr).toBe(0);
      expect(said.stderr).toContain(`backend wasm on ${threads} thread(s)`);
      const r = await cli(...args, '--threads', String(threads), '--json');
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout).ids).toEqual(want);
    }
    const bad = await cli(...args, '--threads', '0');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--threads must be at least 1/);
  });

  it('--prompt-ids and --raw', async () => {
    const ids = await cli('generate', '--model', modelDir('llama-untied-mha-f16'), '--prompt-ids', '5,17,200', '--max-new-tokens', '4', '--json');
    expect(ids.code, ids.stderr).toBe(0);
    const out = lastJson(ids.stdout);
    expect(out.prompt_ids).toEqual([5, 17, 200]);
    expect(out.ids).toEqual(refGreedy(loadRef(modelDir('llama-untied-mha-f16')), [5, 17, 200], 4, [2]));
    const raw = lastJson((await cli('generate', '--model', modelDir('llama-untied-mha-f16'), '--prompt', 'Hello', '--raw', '--max-new-tokens', '1', '--json')).stdout);
    expect(raw.prompt_ids.length).toBeLessThan(6); // no template around it
  });

  it('sampling follows the seed: the same seed repeats, another seed samples otherwise', async () => {
    // An untied model: a tied one's logits favour repeating the last token so much that every seed picks it.
    const args = ['generate', '--model', modelDir('llama-untied-mha-f16'), '--prompt', 'Hi', '--max-new-tokens', '8', '--temperature', '1.5', '--top-k', '50', '--top-p', '0.95', '--json'];
    // Three runs at once also prove that parallel runs never import each other's half-written bundle.
    const runs = await Promise.all(['7', '7', '8'].map((seed) => cli(...args, '--seed', seed)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const [a, b, c] = runs.map((r) => lastJson(r.stdout));
    expect(a.ids).toEqual(b.ids);
    expect(c.ids).not.toEqual(a.ids); // fails if --seed is ignored (both would use the default seed)
  });

  it('--weights holds the base as asked; the last line gives the format, its bytes and the peak', async () => {
    const run = async (w: string) => JSON.parse((await cli('generate', '--model', modelDir('qwen2-bias-bf16'), '--prompt-ids', '5,17,200', '--max-new-tokens', '4', '--weights', w, '--json')).stdout.trim().split('\n').pop()!) as { ids: number[]; weights: string; weight_bytes: number; peak_bytes: number };
    const [f32, half, int4, auto] = await Promise.all(['f32', '16bit', 'int4', 'auto'].map(run));
    expect([f32.weights, half.weights, int4.weights, auto.weights]).toEqual(['f32', '16bit', 'int4', 'f32']);
    expect(half.ids).toEqual(f32.ids); // a bf16 file's own values
    expect(half.weight_bytes).toBeLessThan(0.55 * f32.weight_bytes);
    expect(int4.weight_bytes).toBeLessThan(0.2 * f32.weight_bytes);
    for (const r of [f32, half, int4]) {
      expect(r.peak_bytes).toBeGreaterThan(r.weight_bytes); // the weights and the work on them
      expect(r.peak_bytes).toBeLessThan(r.weight_bytes + 64 * 1024 ** 2);
    }
    const bad = await cli('generate', '--model', modelDir('qwen2-bias-bf16'), '--prompt', 'x', '--weights', 'int3');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--weights must be one of auto, f32, 16bit, int8, int4, got "int3"/);
  });

  it('errors go to stderr with a non-zero exit', async () => {
    const missing = await cli('generate', '--model', '/nonexistent/dir/x', '--prompt', 'x');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/error: /);
    const noPrompt = await cli('generate', '--model', modelDir('llama-tied-gqa-f32'));
    expect(noPrompt.code).not.toBe(0);
    expect(noPrompt.stderr).toMatch(/--prompt or --prompt-ids/);
    const badFlag = await cli('generate', '--bogus');
    expect(badFlag.code).not.toBe(0);
    const badNum = await cli('generate', '--model', modelDir('llama-tied-gqa-f32'), '--prompt', 'x', '--max-new-tokens', 'ten');
    expect(badNum.stderr).toMatch(/--max-new-tokens must be a whole number/);
  });
});
