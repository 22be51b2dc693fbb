// The CLI tunes a tiny model that then reproduces its training answers; the folder has PEFT's names and shapes.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseSafetensorsHeader } from '../workers/engine/safetensors';
import { modelDir } from './helpers';
import { parse as parseYaml } from 'yaml';
import { QA } from './train-helpers';

// The arguments the recipe may use: LLaMA-Factory's ModelArguments, DataArguments and FinetuningArguments
// (src/llamafactory/hparams/) and the transformers Seq2SeqTrainingArguments its TrainingArguments extends.
const LLAMA_FACTORY_KEYS = [
  'model_name_or_path', 'stage', 'finetuning_type', 'lora_rank', 'lora_alpha', 'lora_dropout', 'lora_target', 'use_rslora', 'dataset', 'dataset_dir', 'template', 'cutoff_len', 'train_on_prompt', 'val_size', 'plot_loss',
  'do_train', 'output_dir', 'logging_steps', 'save_strategy', 'report_to', 'per_device_train_batch_size', 'gradient_accumulation_steps', 'learning_rate', 'num_train_epochs', 'max_steps', 'lr_scheduler_type', 'warmup_ratio', 'weight_decay', 'max_grad_norm', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'seed', 'bf16', 'eval_strategy', 'eval_steps', 'per_device_eval_batch_size',
];

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', ...args], { maxBuffer: 1 << 24 });

describe('cli train', () => {
  it('trains on an int4 base (QLoRA-style); the folder records it and its adapter applies to the float32 base', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webtune-cli-'));
    const data = join(dir, 'qa.jsonl');
    writeFileSync(data, QA.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n');
    const out = join(dir, 'adapter');
    const { stdout } = await cli('train', '--model', modelDir('llama-tied-gqa-f32'), '--data', data, '--out', out, '--epochs', '30', '--batch-size', '8', '--lr', '0.01', '--dropout', '0', '--val-split', '0', '--weights', 'int4', '--json');
    const objs = stdout.trim().split('\n').map((l) => JSON.parse(l));
    const done = objs[objs.length - 1];
    expect(done).toMatchObject({ done: true, weights: 'int4' });
    expect(done.train_loss).toBeLessThan(0.2 * objs[0].loss);
    expect(done.peak_bytes).toBeGreaterThan(done.weight_bytes);
    expect(JSON.parse(readFileSync(join(out, 'webtune_run.json'), 'utf8')).weights).toBe('int4');
    const g = JSON.parse((await cli('generate', '--model', modelDir('llama-tied-gqa-f32'), '--adapter', out, '--prompt', QA[0][0], '--max-new-tokens', '8', '--weights', 'f32', '--json')).stdout.trim().split('\n').pop()!);
    expect(g.weights).toBe('f32');
    expect(g.weight_bytes).toBeGreaterThan(6 * done.weight_bytes); // 4 bytes a parameter against 0.625 (+ float32 norms)
  });

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

    expect(readdirSync(out).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'checkpoints', 'webtune_run.json']);
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

    // The tuned model merged into one folder answers as base + adapter did, with no adapter at all.
    const merged = join(dir, 'merged');
    await cli('export', 'merged', '--model', modelDir('llama-tied-gqa-f32'), '--adapter', out, '--out', merged);
    for (const [q, a] of QA.slice(0, 2)) {
      const g = await cli('generate', '--model', merged, '--prompt', q, '--max-new-tokens', '48', '--json');
      expect(JSON.parse(g.stdout.trim().split('\n').pop()!).text).toBe(a);
    }

    // The same run as a LLaMA-Factory recipe, made from the adapter folder alone.
    const recipe = join(dir, 'recipe');
    await cli('export', 'llama-factory', '--adapter', out, '--data', data, '--out', recipe, '--name', 'qa');
    const elsewhere = join(dir, 'recipe-hub');
    await cli('export', 'llama-factory', '--model', 'owner/base-model', '--adapter', out, '--data', data, '--out', elsewhere, '--name', 'qa');
    expect(parseYaml(readFileSync(join(elsewhere, 'qa.yaml'), 'utf8'))).toMatchObject({ model_name_or_path: 'owner/base-model', lora_rank: 8 });
    expect(readdirSync(recipe).sort()).toEqual(['dataset_info.json', 'qa.jsonl', 'qa.yaml']);
    const yaml = parseYaml(readFileSync(join(recipe, 'qa.yaml'), 'utf8')) as Record<string, unknown>;
    expect(yaml).toMatchObject({
      model_name_or_path: modelDir('llama-tied-gqa-f32'), stage: 'sft', finetuning_type: 'lora', lora_rank: 8, lora_alpha: 16, lora_dropout: 0, lora_target: 'all',
      dataset: 'qa', template: 'chatml', cutoff_len: 512, learning_rate: 0.01, num_train_epochs: 60, per_device_train_batch_size: 8, gradient_accumulation_steps: 1,
      val_size: 0, seed: 42, lr_scheduler_type: 'cosine', warmup_ratio: 0.03, max_grad_norm: 1, train_on_prompt: false,
    });
    for (const key of Object.keys(yaml)) expect(LLAMA_FACTORY_KEYS, key).toContain(key);
    // LLaMA-Factory reads YAML 1.1 (PyYAML): each number must be an int or a float in that grammar, or it is a string.
    const yamlText = readFileSync(join(recipe, 'qa.yaml'), 'utf8');
    for (const [, key, value] of yamlText.matchAll(/^(\w+): (.+)$/gm)) {
      if (typeof yaml[key] === 'number') expect(value, key).toMatch(/^-?(\d+|\d*\.\d*([eE][-+]\d+)?)$/);
    }
    const info = JSON.parse(readFileSync(join(recipe, 'dataset_info.json'), 'utf8'));
    expect(info.qa).toMatchObject({ file_name: 'qa.jsonl', formatting: 'sharegpt', columns: { messages: 'messages' }, tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' } });
    const rows = readFileSync(join(recipe, 'qa.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toEqual(QA.map(([q, a]) => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }))); // the bad line left out
  });

  it('trains DPO on LLaMA-Factory ranking data: ln 2 at the first step, TRL\'s reward keys, the pairs ranked right, a dpo recipe', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webtune-cli-dpo-'));
    const data = join(dir, 'prefs.json');
    const pairs = QA.slice(0, 4).map(([q, a]) => ({ conversations: [{ from: 'human', value: q }], chosen: { from: 'gpt', value: a }, rejected: { from: 'gpt', value: 'I do not know, {{name}}.' } }));
    writeFileSync(data, JSON.stringify(pairs, null, 2));
    const out = join(dir, 'adapter');
    const { stdout, stderr } = await cli('train', '--model', modelDir('llama-tied-gqa-f32'), '--data', data, '--out', out, '--epochs', '25', '--lr', '0.01', '--val-split', '0', '--beta', '0.2', '--fill', 'name=friend', '--json');
    expect(stderr).not.toContain('placeholder'); // filled
    const objs = stdout.trim().split('\n').map((l) => JSON.parse(l));
    const stepsLogged = objs.filter((o) => 'loss' in o);
    expect(stepsLogged.length).toBe(25);
    expect(stepsLogged[0].loss).toBeCloseTo(Math.LN2, 5);
    expect(stepsLogged[0]).toMatchObject({ 'rewards/chosen': 0, 'rewards/rejected': 0, 'rewards/accuracies': 0, 'rewards/margins': 0 });
    const last = stepsLogged[stepsLogged.length - 1];
    expect(last['rewards/accuracies']).toBe(1);
    expect(last['rewards/margins']).toBeGreaterThan(1);
    expect(JSON.parse(readFileSync(join(out, 'webtune_run.json'), 'utf8')).train).toMatchObject({ method: 'dpo', beta: 0.2 });
    const recipe = join(dir, 'recipe');
    await cli('export', 'llama-factory', '--adapter', out, '--data', data, '--out', recipe, '--name', 'prefs', '--fill', 'name=friend');
    const yaml = parseYaml(readFileSync(join(recipe, 'prefs.yaml'), 'utf8')) as Record<string, unknown>;
    expect(yaml).toMatchObject({ stage: 'dpo', pref_beta: 0.2, pref_loss: 'sigmoid' });
    for (const key of Object.keys(yaml)) expect([...LLAMA_FACTORY_KEYS, 'pref_beta', 'pref_loss', 'dpo_label_smoothing', 'pref_ftx'], key).toContain(key);
    expect(JSON.parse(readFileSync(join(recipe, 'prefs.jsonl'), 'utf8').split('\n')[0]).rejected.content).toBe('I do not know, friend.');
  });
});
