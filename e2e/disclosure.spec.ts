// Progressive disclosure: steps that need a model say so in one line until one is loaded (no wall of disabled
// buttons), evaluation opens once there is data, and the Auto buttons size epochs and the learning rate with their
// rule shown beside the field (and the rule goes once the value is edited by hand). DPO data starts from DPO's rate.
import { expect, test } from '@playwright/test';
import { addDataset, chatJsonl, loadDemo, openApp, QA } from './helpers';

test('steps that do not apply yet are one line; Auto sizes epochs and learning rate with the rule shown', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'the page layout does not depend on the compute backend; run once');
  await openApp(page, 'wasm');
  await expect(page.getByTestId('chat-pending')).toContainText('Load a model in step 1');
  await expect(page.getByTestId('eval-pending')).toContainText('Load a model (step 1) and add a dataset (step 2)');
  await expect(page.getByTestId('export-pending')).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Message' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Evaluate', exact: true })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Export GGUF' })).toHaveCount(0);

  await loadDemo(page);
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeEditable();
  await expect(page.getByTestId('chat-pending')).toHaveCount(0);
  await expect(page.getByTestId('eval-pending')).toContainText('Add a dataset in step 2');
  await expect(page.getByRole('button', { name: 'Export GGUF' })).toBeEnabled();

  // Ten chats with a 10% split: 9 train, so a batch of 4 sees 4: 2e-4 × √(4/8) = 1.4e-4.
  const ten = Array.from({ length: 10 }, (_, i) => QA[i % QA.length]);
  await addDataset(page, 'ten.jsonl', chatJsonl(ten));
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('10 of 10 examples usable');
  await expect(page.getByTestId('eval-pending')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Evaluate', exact: true })).toBeEnabled();
  await expect(page.getByRole('button', { name: 'Export CSV' })).toHaveCount(0); // nothing to export before results

  await page.getByRole('button', { name: 'Auto: size to the dataset' }).click();
  await expect(page.getByLabel('Epochs')).toHaveValue('10');
  await expect(page.getByText('10 examples × 3 epochs is under 100 examples seen, so 10 (100 ÷ 10, at most 25)')).toBeVisible();
  await page.getByRole('button', { name: 'Auto: size to the batch' }).click();
  await expect(page.getByLabel('Learning rate')).toHaveValue('0.00014');
  await expect(page.getByText('2e-4 at a batch of 8 × √(4 ÷ 8) = 1.4e-4')).toBeVisible();
  await page.getByLabel('Batch size').fill('16'); // larger than the 9 training examples: a step sees 9
  await page.getByRole('button', { name: 'Auto: size to the batch' }).click();
  await expect(page.getByLabel('Learning rate')).toHaveValue('0.00021');
  await expect(page.getByText('2e-4 at a batch of 8 × √(9 (the whole training set) ÷ 8) = 2.1e-4')).toBeVisible();
  await page.getByLabel('Learning rate').fill('0.0003');
  await expect(page.getByText('= 2.1e-4')).toHaveCount(0); // the rule no longer describes the field
  await page.getByLabel('Learning rate').fill('0.0002');

  // A preference dataset switches to DPO and, from SFT's default rate, to DPO's; back on chats, back to SFT's.
  const pairs = QA.map(([q, a]) => JSON.stringify({ prompt: q, chosen: a, rejected: 'No idea.' })).join('\n');
  await addDataset(page, 'pairs.jsonl', pairs);
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('format: preference');
  await expect(page.getByLabel('Method')).toHaveValue('dpo');
  await expect(page.getByLabel('Learning rate')).toHaveValue('0.000005');
  await page.getByLabel('Dataset', { exact: true }).selectOption({ label: 'ten — 10 examples' });
  await expect(page.getByLabel('Method')).toHaveValue('sft');
  await expect(page.getByLabel('Learning rate')).toHaveValue('0.0002');
});
