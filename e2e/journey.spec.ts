// The studio journey: load the demo model, drop a dataset with two bad lines, train, compare base and tuned
// answers, reload and find everything still there. A screenshot of each stage is kept as an artifact.
// Every network request of the journey is recorded: all go to the app's own origin (which also serves the
// model), and no dataset text appears in any of them.
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ggufValues, readGguf } from '../tests/readers/gguf-reader';
import { readSafetensorsBuffer } from '../tests/reference/llama-ref';
import { parse as parseYaml } from 'yaml';
import { QA, openMoreSettings, record, shot } from './helpers';

function dataset(): string {
  const lines = QA.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }));
  lines.splice(1, 0, '{"messages": [ this is not json');
  lines.splice(4, 0, JSON.stringify({ messages: [{ role: 'user', content: 'No answer here' }] }));
  return lines.join('\n') + '\n';
}

test('load → data with bad lines → train → compare → reload', async ({ page, baseURL }, testInfo) => {
  test.setTimeout(20 * 60_000);
  const backend = testInfo.project.metadata.backend as string;
  const requests: { url: string; body: string }[] = [];
  page.context().on('request', (r) => requests.push({ url: r.url(), body: r.postData() ?? '' }));
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/?backend=${backend}`);
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();

  // Data: two bad lines among good ones, each reported on its line.
  await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'qa.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(dataset()) });
  const report = page.getByRole('region', { name: 'Dataset report' });
  await expect(report).toContainText('4 of 6 examples usable');
  const errorList = page.getByRole('list', { name: 'Errors' });
  await expect(errorList).toContainText('line 2 invalid_json');
  await expect(errorList).toContainText('line 5 no_assistant_message');
  await expect(report).toContainText(/tokens \(\d+ trained\)/);
  await shot(page, '1-data');

  // Train: a few dozen steps with settings that let the tiny model memorise four answers.
  await page.getByLabel('Epochs').fill('40');
  await page.getByLabel('Learning rate').fill('0.01');
  await page.getByLabel('Batch size').fill('4');
  await openMoreSettings(page);
  await page.getByLabel('LoRA dropout').fill('0');
  await page.getByLabel('Warm-up (fraction)').fill('0');
  await page.getByLabel('Validation split').fill('0');
  await page.getByRole('button', { name: 'Estimate time' }).click();
  await expect(page.getByTestId('estimate')).toContainText(/About \d+ (s|min) on this device:\s+[\d,]+ tokens at \d+ tokens\/s/, { timeout: 120_000 });
  await page.getByRole('button', { name: 'Start training' }).click();
  const status = page.getByTestId('train-status');
  await expect(status).toContainText(/step \d+ \/ 40/, { timeout: 120_000 });
  await expect(page.getByRole('img', { name: 'Training and validation loss by step' })).toBeVisible();
  await shot(page, '2-training');
  await expect(status).toContainText('done · step 40 / 40', { timeout: 15 * 60_000 });
  const checkpoints = page.getByRole('region', { name: 'Checkpoints' });
  await expect(checkpoints).toContainText('epoch-40');
  await shot(page, '3-trained');

  // Chat: the tuned answer reproduces a trained answer; the base answer does not.
  await page.getByText('Generation settings').click();
  await page.getByLabel('Max new tokens').fill('24');
  await page.getByRole('textbox', { name: 'Message' }).fill(QA[0][0]);
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByTestId('reply-tuned')).toHaveText(QA[0][1], { timeout: 120_000 });
  await expect(page.getByText(/tokens · .* tok\/s/).nth(1)).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('reply')).not.toHaveText(QA[0][1]);
  await shot(page, '4-compare');

  // Evaluate: expected, base and tuned answers side by side with losses; CSV export.
  await page.getByLabel('Examples to evaluate').selectOption('all');
  await page.getByLabel('Number of examples').fill('2');
  await page.getByRole('button', { name: 'Evaluate', exact: true }).click();
  await expect(page.getByTestId('eval-summary')).toContainText('2 of 2 examples', { timeout: 300_000 });
  await expect(page.getByTestId('eval-summary')).toContainText('tuned answers matching exactly: 2');
  await expect(page.getByRole('table', { name: 'Evaluation' }).locator('tbody tr')).toHaveCount(2);
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
  const csvText = readFileSync(await csv.path(), 'utf8');
  expect(csvText.split('\r\n')[0]).toBe('index,prompt,expected,base,tuned,baseLoss,tunedLoss');
  expect(csvText).toContain(`"${QA[0][0]}","${QA[0][1]}"`);
  await shot(page, '4b-evaluate');

  // Step metrics: one CSV row per optimizer step.
  const [metrics] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export step metrics (CSV)' }).click()]);
  const metricRows = readFileSync(await metrics.path(), 'utf8').trim().split('\r\n');
  expect(metricRows[0]).toBe('step,epoch,loss,mean_token_accuracy,lr,grad_norm,val_loss,val_perplexity,val_accuracy');
  expect(metricRows).toHaveLength(41);
  expect(metricRows[40]).toMatch(/^"40","40",/);
  expect(Number((JSON.parse(`[${metricRows[40]}]`) as string[])[3])).toBeGreaterThan(0.9); // the answers, recited token for token
  const [metricsJsonl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export step metrics (JSONL)' }).click()]);
  const jsonl = readFileSync(await metricsJsonl.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  expect(jsonl).toHaveLength(40);
  expect(Object.keys(jsonl[39])).toEqual(['step', 'epoch', 'loss', 'mean_token_accuracy', 'lr', 'grad_norm']); // no evaluation: no val_ keys
  expect(jsonl[39].step).toBe(40);

  // Export: a zip holding PEFT's two files with PEFT's tensor names, and the run's settings.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export adapter (PEFT zip)' }).click()]);
  expect(download.suggestedFilename()).toMatch(/^tiny-demo-untrained-qa-\d{4}-\d{2}-\d{2}\.zip$/); // model · dataset · date
  const zipPath = await download.path();
  const entries = unzipSync(new Uint8Array(readFileSync(zipPath)));
  const names = Object.keys(entries).map((p) => p.split('/').pop()).sort();
  expect(names).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'webtune_run.json']);
  // The run's settings travel with the adapter, so that the folder alone can be handed to LLaMA-Factory.
  const runEntry = Object.entries(entries).find(([p]) => p.endsWith('webtune_run.json'))![1];
  expect(JSON.parse(new TextDecoder().decode(runEntry))).toMatchObject({ train: { epochs: 40, learningRate: 0.01, method: 'sft' }, lora: { rank: 8 } });
  const cfgEntry = Object.entries(entries).find(([p]) => p.endsWith('adapter_config.json'))![1];
  expect(JSON.parse(new TextDecoder().decode(cfgEntry))).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16 });
  const st = Object.entries(entries).find(([p]) => p.endsWith('.safetensors'))![1];
  const headerLen = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + headerLen)));
  expect(Object.keys(header)).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  const zipBytes = readFileSync(zipPath);

  // GGUF: the tuned model as one file for llama.cpp, read back by the tests' own GGUF reader, holding the
  // values the CLI writes from the same base model and the adapter just exported.
  const [gguf] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export GGUF (llama.cpp, Ollama)' }).click()]);
  expect(gguf.suggestedFilename()).toBe('tiny-demo-untrained-tuned-f16.gguf');
  const g = readGguf(readFileSync(await gguf.path()));
  expect(g.metadata.get('general.architecture')).toBe('llama');
  expect((g.metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(343);
  const dir = mkdtempSync(join(tmpdir(), 'webtune-gguf-'));
  for (const [path, bytes] of Object.entries(entries)) writeFileSync(join(dir, path.split('/').pop()!), bytes);
  await promisify(execFile)(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', 'export', 'gguf', '--model', 'public/models/demo', '--adapter', dir, '--out', join(dir, 'cli.gguf')]);
  const cli = readGguf(readFileSync(join(dir, 'cli.gguf')));
  expect([...g.tensors.keys()]).toEqual([...cli.tensors.keys()]);
  for (const name of cli.tensors.keys()) {
    const [a, b] = [ggufValues(g, name).values, ggufValues(cli, name).values];
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
    expect(diff, name).toBeLessThan(2e-3); // the same f16 values, give or take one rounding step
  }
  await expect(page.getByRole('region', { name: 'Model export' })).toContainText('adapter merged in');

  // The merged Hugging Face folder in a zip: the files a model folder needs, weights equal to the CLI's merge.
  await page.getByLabel('Merged weights').selectOption('F32');
  const [mergedZip] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export merged model (.zip)' }).click()]);
  const mergedEntries = unzipSync(new Uint8Array(readFileSync(await mergedZip.path())));
  const byName = new Map(Object.entries(mergedEntries).map(([p, b]) => [p.split('/').pop()!, b]));
  expect([...byName.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  await promisify(execFile)(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', 'export', 'merged', '--model', 'public/models/demo', '--adapter', dir, '--out', join(dir, 'cli-merged')]);
  const [fromPage, fromCli] = [new Map(), new Map()] as Map<string, { shape: number[]; data: Float64Array }>[];
  readSafetensorsBuffer(Buffer.from(byName.get('model.safetensors')!), fromPage);
  readSafetensorsBuffer(readFileSync(join(dir, 'cli-merged', 'model.safetensors')), fromCli);
  expect([...fromPage.keys()].sort()).toEqual([...fromCli.keys()].sort());
  for (const [name, t] of fromCli) {
    const p = fromPage.get(name)!.data;
    expect(Math.max(...t.data.map((v, i) => Math.abs(v - p[i]) / Math.max(1, Math.abs(v)))), name).toBeLessThan(1e-5);
  }

  // The run as a LLaMA-Factory recipe: its settings under LLaMA-Factory's names and the four usable examples.
  const [recipeZip] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export LLaMA-Factory recipe (.zip)' }).click()]);
  const recipe = new Map(Object.entries(unzipSync(new Uint8Array(readFileSync(await recipeZip.path())))).map(([p, b]) => [p.split('/').pop()!, new TextDecoder().decode(b)]));
  expect([...recipe.keys()].sort()).toEqual(['dataset_info.json', 'webtune.jsonl', 'webtune.yaml']);
  expect(parseYaml(recipe.get('webtune.yaml')!)).toMatchObject({ stage: 'sft', finetuning_type: 'lora', lora_rank: 8, lora_alpha: 16, lora_dropout: 0, num_train_epochs: 40, learning_rate: 0.01, per_device_train_batch_size: 4, warmup_ratio: 0, val_size: 0, dataset: 'webtune' });
  expect(recipe.get('webtune.jsonl')!.trim().split('\n')).toHaveLength(4);

  // Reload: the dataset, the run's curve and its checkpoints are still there.
  await page.reload();
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('4 of 6 examples usable');
  await expect(page.getByRole('img', { name: 'Training and validation loss by step' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Checkpoints' })).toContainText('epoch-40');
  await expect(page.getByTestId('train-status')).toContainText('done · step 40 / 40');
  await shot(page, '5-reloaded');

  // Offline: the app shell comes from the service worker, the demo model from its precache, the tuned
  // adapter from the checkpoint in IndexedDB.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.context().setOffline(true);
  await page.reload();
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  // With no tuned model in memory, the page takes the latest run's newest checkpoint (no best: nothing was held out).
  await expect(page.getByTestId('picked-checkpoint')).toContainText('checkpoint epoch-40 of the latest run on this model');
  await page.getByLabel('Tuned model checkpoint').selectOption('epoch-40');
  await page.getByText('Generation settings').click();
  await page.getByLabel('Max new tokens').fill('24');
  await page.getByRole('textbox', { name: 'Message' }).fill(QA[2][0]);
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByTestId('reply-tuned')).toHaveText(QA[2][1], { timeout: 120_000 });
  await shot(page, '6-offline');
  await page.context().setOffline(false);

  // Import: the exported zip, in a fresh page, gives the tuned answers back.
  await page.reload();
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  await page.getByLabel('Import a PEFT adapter').setInputFiles({ name: 'adapter.zip', mimeType: 'application/zip', buffer: zipBytes });
  await expect(page.getByRole('status').filter({ hasText: 'Imported adapter.zip: rank 8' })).toBeVisible();
  await page.getByText('Generation settings').click();
  await page.getByLabel('Max new tokens').fill('24');
  await page.getByRole('textbox', { name: 'Message' }).fill(QA[3][0]);
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByTestId('reply-tuned')).toHaveText(QA[3][1], { timeout: 120_000 });
  expect(errors).toEqual([]);

  // Privacy: every request went to the app's origin; none carried dataset text.
  const origin = new URL(baseURL!).origin;
  const elsewhere = requests.filter((r) => !r.url.startsWith(`${origin}/`) && !/^(data|blob):/.test(r.url));
  expect(elsewhere.map((r) => r.url)).toEqual([]);
  const secrets = [...QA.flat(), 'No answer here'];
  const leaks = requests.filter((r) => secrets.some((t) => r.url.includes(encodeURIComponent(t)) || r.url.includes(t) || r.body.includes(t)));
  expect(leaks.map((r) => r.url)).toEqual([]);
  record('privacy', {
    journey: 'load the demo model, add a dataset, train 40 steps, chat, evaluate, export, reload, offline chat, import',
    requests: requests.length,
    origins: [...new Set(requests.map((r) => new URL(r.url).origin))],
    requestsElsewhere: elsewhere.length,
    requestsCarryingDatasetText: leaks.length,
  });
});
