// Datasets in the browser: stored in IndexedDB, listed, renamed, deleted, surviving a reload, and the
// original downloaded back byte for byte. Independent of the compute backend, so it runs once (WASM project).
import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('a dataset is kept byte for byte, survives a reload, can be renamed and deleted', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'dataset storage does not depend on the compute backend; run once');
  const original = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from(
      [
        JSON.stringify({ messages: [{ role: 'user', content: 'Grüße 👋' }, { role: 'assistant', content: 'مرحبا <b>bold?</b>' }] }),
        '',
        JSON.stringify({ instruction: 'Say hi', output: 'hi' }),
        'not json at all',
      ].join('\r\n'),
      'utf8',
    ),
  ]);
  await page.goto('/?backend=wasm');
  await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'mixed.jsonl', mimeType: 'application/jsonl', buffer: original });
  const report = page.getByRole('region', { name: 'Dataset report' });
  await expect(report).toContainText('2 of 3 examples usable');
  await expect(page.getByRole('list', { name: 'Errors' })).toContainText('line 4 invalid_json');

  // The page and `cli validate` report the same findings for the same bytes.
  const file = join(mkdtempSync(join(tmpdir(), 'same-')), 'mixed.jsonl');
  writeFileSync(file, original);
  const cli = JSON.parse(execFileSync(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', 'validate', '--data', file, '--json'], { encoding: 'utf8' }).trim().split('\n').pop()!);
  const fromCli = [...cli.errors, ...cli.warnings].map((f: { line: number; code: string }) => `line ${f.line} ${f.code}`).sort();
  await page.getByText('Warnings').click();
  const fromPage = (await page.getByRole('list', { name: /Errors|Warnings/ }).locator('li').allTextContents()).map((t) => t.split(' ').slice(0, 3).join(' ')).sort();
  expect(fromPage).toEqual(fromCli);
  expect(fromCli).toEqual(['line 3 mixed_formats', 'line 4 invalid_json']);

  // Preview: with a model loaded, the example appears as the model sees it, the answer marked as trained.
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  await page.getByText('Preview: examples as the model sees them').click();
  const first = page.getByRole('article', { name: 'Example on line 1' });
  await expect(first).toContainText('<|im_start|>user\nGrüße 👋<|im_end|>');
  await expect(first.locator('mark').first()).toHaveText('مرحبا <b>bold?</b><|im_end|>');
  await expect(page.locator('b')).toHaveCount(0); // dataset text is never rendered as HTML

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download original' }).click()]);
  expect(download.suggestedFilename()).toBe('mixed.jsonl');
  expect(readFileSync(await download.path()).equals(original)).toBe(true);

  page.once('dialog', (d) => d.accept('greetings'));
  await page.getByRole('button', { name: 'Rename' }).click();
  await expect(page.getByLabel('Dataset', { exact: true })).toContainText('greetings');

  await page.reload();
  await expect(page.getByLabel('Dataset', { exact: true })).toContainText('greetings — 2 examples');
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('2 of 3 examples usable');

  // A forced format applies to the next file: lines of other formats become unknown_format errors.
  await page.getByLabel('Dataset format').selectOption('alpaca');
  await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'forced.jsonl', mimeType: 'application/jsonl', buffer: original });
  await expect(page.getByRole('list', { name: 'Errors' })).toContainText('line 1 unknown_format');

  // A file with no usable example is refused, with the reason.
  await page.getByLabel('Dataset format').selectOption('');
  await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'empty.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{oops\n[1]\n') });
  await expect(page.getByRole('alert')).toContainText('empty.jsonl has no usable example, so it was not added. line 1: invalid_json');
  await expect(page.getByLabel('Dataset reading progress')).toHaveCount(0); // no stale "Reading … 1.4 KB / 1.4 KB" bar
  await expect(page.getByLabel('Dataset', { exact: true }).locator('option')).toHaveCount(2);

  page.on('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('region', { name: 'Dataset report' })).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole('region', { name: 'Dataset report' })).toHaveCount(0);
});

test('every file chooser is reached from the keyboard', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'keyboard access does not depend on the compute backend; run once');
  await page.goto('/?backend=wasm');
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  for (const label of ['Choose a dataset file', 'Import a PEFT adapter', 'Choose a model folder']) {
    await page.getByLabel(label).focus(); // a `hidden` input takes no focus; Tab skipped all three before
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), label).toBe(label);
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).tabIndex), label).toBe(0);
  }
});
