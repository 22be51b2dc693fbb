// Accessibility: axe-core scans the page at every step of the studio (empty, a model loaded, a dataset with its
// report and preview, a trained run with its charts, checkpoints, chat and evaluation), in light and in dark.
import { expect, test } from '@playwright/test';
import { axeScan as scan, QA } from './helpers';

for (const scheme of ['light', 'dark'] as const) {
  test(`no axe-core violation at any step (${scheme})`, async ({ page }, testInfo) => {
    test.skip(testInfo.project.name !== 'wasm', 'the markup does not depend on the compute backend; run once');
    test.setTimeout(5 * 60_000);
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto('/?backend=wasm');
    await expect(page.getByRole('heading', { name: 'webtune' })).toBeVisible();
    await scan(page, 'empty');
    await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
    await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
    await scan(page, 'model loaded');
    const lines = QA.slice(0, 4).map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }));
    await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'qa.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from([...lines, '{oops'].join('\n')) });
    await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('4 of 5 examples usable');
    await page.getByText('Preview: examples as the model sees them').click();
    await expect(page.getByRole('article').first()).toBeVisible();
    await scan(page, 'dataset');
    await page.getByLabel('Epochs').fill('2');
    await page.getByLabel('Validation split').fill('0.25');
    await page.getByRole('button', { name: 'Start training' }).click();
    await expect(page.getByTestId('train-status')).toContainText('done', { timeout: 120_000 });
    await page.getByRole('textbox', { name: 'Message' }).fill(QA[0][0]);
    await page.getByRole('button', { name: 'Send' }).click();
    await expect(page.getByText(/tokens · .* tok\/s/).nth(1)).toBeVisible({ timeout: 120_000 });
    await page.getByLabel('Examples to evaluate').selectOption('all');
    await page.getByLabel('Number of examples').fill('2');
    await page.getByRole('button', { name: 'Evaluate', exact: true }).click();
    await expect(page.getByTestId('eval-summary')).toContainText('2 of', { timeout: 120_000 });
    await scan(page, 'trained, chat, evaluation');
  });
}
