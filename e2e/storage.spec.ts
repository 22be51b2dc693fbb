// Storage pressure: the origin's quota is cut below what is already stored (Chromium's own enforcement, set
// through the DevTools protocol), so Cache Storage writes fail with QuotaExceededError. This Chromium does
// not check small IndexedDB writes against an overridden quota, so there the engine worker's
// IDBObjectStore put/add are made to throw the QuotaExceededError a full disk gives — during a model
// download, a dataset add and checkpoint saves. The user is told what happened and what to free; nothing
// already stored is damaged; the app keeps working, and once room is made everything saves again.
import { expect, test, type Page } from '@playwright/test';
import { QA, addDataset, chatJsonl, loadDemo, memoriseSettings, openApp, record, shot } from './helpers';

const usage = (page: Page) => page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);

type Full = typeof globalThis & { storageFull?: boolean };

/** In the engine worker: while `storageFull` is set, IndexedDB put/add throw QuotaExceededError. */
async function plantIdbQuota(page: Page): Promise<(full: boolean) => Promise<void>> {
  await expect.poll(() => page.workers().length).toBeGreaterThan(0);
  const worker = page.workers()[0];
  await worker.evaluate(() => {
    const store = IDBObjectStore.prototype;
    for (const method of ['put', 'add'] as const) {
      const original = store[method];
      store[method] = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
        if ((globalThis as Full).storageFull) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        return original.apply(this, args);
      };
    }
  });
  return (full) => worker.evaluate((f) => void ((globalThis as Full).storageFull = f), full);
}

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

  const setFull = await plantIdbQuota(page);
  const cdp = await page.context().newCDPSession(page);
  const origin = new URL(baseURL!).origin;
  const stored = await usage(page);
  // Below what is stored: every write must fail (small IndexedDB writes are not checked to the byte).
  const quota = Math.floor(stored / 2);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: quota });
  await setFull(true);

  // 1. A model download: it still loads, from memory, and the user hears it will not be there offline.
  await page.getByLabel('Hugging Face repo id or model URL').fill(`${baseURL}/models/demo`);
  await page.getByRole('button', { name: 'Download', exact: true }).click();
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
  await setFull(false);
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
    planted: ['quota cut below usage (DevTools Storage.overrideQuotaForOrigin): Cache Storage put of each downloaded model file', 'QuotaExceededError thrown by IndexedDB put/add: a dataset add', 'QuotaExceededError thrown by IndexedDB put/add: every checkpoint save of a run'],
    quotaBytes: quota,
    storedBytes: stored,
    messages,
    keptAfterwards: 'the stored dataset (4 of 4 examples), then new writes succeeded',
  });
});

test('asking the browser to keep the data says what it answered', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'storage does not depend on the compute backend; run once');
  await page.goto('/?backend=wasm');
  const ask = page.getByRole('button', { name: 'Ask to keep it' });
  const persisted = await page.evaluate(() => navigator.storage.persisted());
  test.skip(persisted, 'this browser profile already keeps the data');
  await ask.click();
  const answer = await page.evaluate(() => navigator.storage.persisted());
  await expect(page.getByTestId('persist-answer')).toContainText(answer ? 'The browser agreed' : 'The browser declined for now');
});
