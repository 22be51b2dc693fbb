// Storage pressure: the origin's quota is cut to what is already stored (Chromium's own quota enforcement,
// set through the DevTools protocol), so every new write fails with QuotaExceededError — during a model
// download, a dataset add and checkpoint saves. The user is told what happened and what to free; nothing
// already stored is damaged; the app keeps working, and once room is made everything saves again.
import { expect, test, type Page } from '@playwright/test';
import { QA, addDataset, chatJsonl, loadDemo, memoriseSettings, openApp, record, shot } from './helpers';

const usage = (page: Page) => page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);

test('a full quota during download, dataset add and checkpoint save loses nothing', async ({ page, baseURL }, testInfo) => {
  test.skip(testInfo.project.metadata.backend !== 'wasm', 'the fault is in storage, not the backend: run once, on the faster WASM');
  test.setTimeout(6 * 60_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await openApp(page, 'wasm');
  await page.evaluate(() => navigator.serviceWorker.ready); // the app shell's precache is in place
  await loadDemo(page);
  await addDataset(page, 'qa.jsonl', chatJsonl(QA));
  const report = page.getByRole('region', { name: 'Dataset report' });
  await expect(report).toContainText('4 of 4 examples usable');

  const cdp = await page.context().newCDPSession(page);
  const origin = new URL(baseURL!).origin;
  const stored = await usage(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: stored + 1024 });

  // 1. A model download: it still loads, from memory, and the user hears it will not be there offline.
  await page.getByLabel('Hugging Face repo id or model URL').fill(`${baseURL}/models/demo`);
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  const downloadWarning = page.getByRole('alert').filter({ hasText: 'could not be kept for offline use' }).first();
  await expect(downloadWarning).toContainText('storage is full');

  // 2. A dataset add: refused with the reason; the stored one is untouched.
  await addDataset(page, 'more.jsonl', chatJsonl([['Is this stored?', 'No.']]));
  const addError = page.getByRole('alert').filter({ hasText: 'was not stored' });
  await expect(addError).toContainText("more.jsonl was not stored: this site's storage is full");
  await expect(report).toContainText('4 of 4 examples usable');

  // 3. Checkpoint saves: training goes on and says each checkpoint was not saved.
  await memoriseSettings(page, 3);
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByTestId('train-status')).toContainText('done · step 3 / 3', { timeout: 120_000 });
  const checkpointWarning = page.getByTestId('train-error');
  await expect(checkpointWarning).toContainText('was not saved: this site\'s storage is full');
  await shot(page, 'storage-full');
  const messages = { download: await downloadWarning.textContent(), dataset: await addError.textContent(), checkpoint: await checkpointWarning.textContent() };

  // Room again: after a reload the earlier data is all there, and new writes succeed.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  await page.reload();
  await expect(report).toContainText('4 of 4 examples usable');
  await loadDemo(page);
  await addDataset(page, 'more.jsonl', chatJsonl([['Is this stored?', 'Yes.']]));
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('1 of 1 examples usable');
  await page.getByLabel('Dataset', { exact: true }).selectOption({ label: 'qa — 4 examples' });
  await memoriseSettings(page, 2);
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByRole('region', { name: 'Checkpoints' })).toContainText('epoch-2', { timeout: 120_000 });
  expect(errors).toEqual([]);
  record('storage', {
    planted: ['QuotaExceededError on the Cache Storage put of a downloaded model', 'QuotaExceededError on a dataset add', 'QuotaExceededError on every checkpoint save of a run'],
    quotaBytes: stored + 1024,
    messages,
    keptAfterwards: 'the stored dataset (4 of 4 examples), then new writes succeeded',
  });
});
