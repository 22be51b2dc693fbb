// Preference tuning in the page: a LLaMA-Factory ranking file with a {{placeholder}} is read as pairs, the
// placeholder filled from the page, both answers previewed, trained with DPO (its reward metrics shown live
// and charted), and evaluated with each pair's chosen-vs-rejected margin under base and tuned models.
import { expect, test } from '@playwright/test';
import { QA, axeScan, openMoreSettings, shot } from './helpers';

test('preference pairs → fill a placeholder → DPO → reward margins → evaluate margins', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'the page flow does not depend on the backend (DPO is unit-tested on WASM and cpu; its ops on WebGPU in numerics.spec); run once');
  test.setTimeout(6 * 60_000);
  const pairs = QA.slice(0, 4).map(([q, a]) => ({ conversations: [{ from: 'human', value: q }], chosen: { from: 'gpt', value: a }, rejected: { from: 'gpt', value: 'Ask {{name}}.' } }));
  await page.goto('/?backend=wasm');
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'prefs.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(pairs, null, 2)) });
  const report = page.getByRole('region', { name: 'Dataset report' });
  await expect(report).toContainText('4 of 4 preference pairs usable');
  await expect(report).toContainText('each pair as its two sequences');
  // The report stays inside its card (a long finding once widened the whole Data card past the page's column).
  const card = page.locator('section.card', { has: report });
  expect((await report.boundingBox())!.width).toBeLessThanOrEqual((await card.boundingBox())!.width);

  // The placeholder is named, and filled in from the page.
  const fill = page.getByRole('form', { name: 'Placeholder values' });
  await expect(fill).toContainText('{{name}}');
  await fill.getByRole('textbox').fill('a librarian');
  await fill.getByRole('button', { name: 'Fill in placeholders' }).click();
  await expect(fill).toContainText('Placeholders filled in before training');
  await page.getByText('Preview: examples as the model sees them').click();
  const first = page.getByRole('article', { name: /Example on line/ }).first();
  await expect(first).toContainText('rejected');
  await expect(first).toContainText('Ask a librarian.');

  // Train: the method follows the data.
  await expect(page.getByLabel('Method')).toHaveValue('dpo');
  await expect(page.getByLabel('DPO beta')).toHaveValue('0.1');
  await page.getByLabel('Epochs').fill('12');
  await page.getByLabel('Learning rate').fill('0.01');
  await openMoreSettings(page);
  await page.getByLabel('Warm-up (fraction)').fill('0');
  await page.getByLabel('Validation split').fill('0');
  await page.getByRole('button', { name: 'Start training' }).click();
  const status = page.getByTestId('train-status');
  await expect(status).toContainText('done · step 12 / 12', { timeout: 4 * 60_000 });
  await expect(status).toContainText(/reward margin -?\d+\.\d{3} · \d+% of pairs ranked right/);
  await expect(page.getByRole('img', { name: 'Reward margin of training and held-out pairs by step' })).toBeVisible();

  // Evaluate: each pair's margin under base and tuned.
  await page.getByLabel('Examples to evaluate').selectOption('all');
  await page.getByRole('button', { name: 'Evaluate', exact: true }).click();
  await expect(page.getByTestId('eval-summary')).toContainText(/pairs ranked right \(chosen more likely than rejected\): base \d, tuned 4 of 4/, { timeout: 3 * 60_000 });
  await expect(page.getByRole('table', { name: 'Evaluation' })).toContainText('Margin tuned');
  await shot(page, 'dpo');
  await axeScan(page, 'a DPO run, evaluated');
});
