// The page loads, the demo model loads in the worker, and a prompt streams a reply — on WebGPU and on WASM.
import { expect, test } from '@playwright/test';

test('load the demo model and chat with it', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/?backend=${backend}`);
  await expect(page.getByRole('heading', { name: 'webtune' })).toBeVisible();

  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  const loaded = page.getByRole('region', { name: 'Loaded model' });
  await expect(loaded).toBeVisible();
  await expect(page.getByTestId('backend')).toContainText(`Backend: ${backend}`);
  await page.screenshot({ path: testInfo.outputPath(`loaded-${backend}.png`), fullPage: true });

  // Stream a reply: watch the text grow while generation runs, then finish. Sampled, so the untrained
  // model's text varies instead of repeating one token; short, since SwiftShader WebGPU is slow.
  await page.getByText('Generation settings').click();
  await page.getByLabel('Max new tokens').fill('24');
  await page.getByLabel('Temperature (0 = greedy)').fill('1');
  await page.getByRole('textbox', { name: 'Message' }).fill('What is the capital of France?');
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.getByTestId('reply');
  const lengths: number[] = [];
  await expect(async () => {
    lengths.push(((await reply.textContent()) ?? '').length);
    await expect(page.getByRole('button', { name: 'Send' })).toBeVisible({ timeout: 100 });
  }).toPass({ intervals: [50], timeout: 120_000 });
  await expect(page.getByText(/\d+ tokens · .* tok\/s/)).toBeVisible();
  expect(new Set(lengths.filter((n) => n > 0)).size).toBeGreaterThan(1); // it grew in steps: streamed
  expect(((await reply.textContent()) ?? '').length).toBeGreaterThan(0);
  await page.screenshot({ path: testInfo.outputPath(`chat-${backend}.png`), fullPage: true });
  expect(errors).toEqual([]);
});

test('a wrong repo id shows a clear error and the page stays usable', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`/?backend=${backend}`);
  // A local URL with no model behind it: the error names the file and says what to check.
  await page.getByLabel('Hugging Face repo id or model URL').fill('http://127.0.0.1:4173/no-such-model');
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByRole('alert')).toContainText(/config\.json/);
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
});
