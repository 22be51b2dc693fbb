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
  // Record every distinct text the reply shows: a streamed reply shows several before the last.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { replyTexts: string[] }).replyTexts = seen;
    new MutationObserver(() => {
      const el = document.querySelector('[data-testid="reply"]');
      const text = el?.textContent ?? '';
      if (el && seen[seen.length - 1] !== text) seen.push(text);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('textbox', { name: 'Message' }).fill('What is the capital of France?');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByText(/\d+ tokens · .* tok\/s/)).toBeVisible({ timeout: 120_000 });
  const texts = await page.evaluate(() => (window as unknown as { replyTexts: string[] }).replyTexts);
  const final = (await page.getByTestId('reply').textContent()) ?? '';
  expect(final.length).toBeGreaterThan(0);
  expect(texts.filter((t) => t.length > 0 && t !== final).length).toBeGreaterThan(0); // partial texts came first
  for (const t of texts) expect(final.startsWith(t), JSON.stringify({ t, final })).toBe(true); // each was a prefix of the answer
  await page.screenshot({ path: testInfo.outputPath(`chat-${backend}.png`), fullPage: true });

  // Dark: the same page under prefers-color-scheme: dark has a dark background and light text.
  const luminance = (css: string) => {
    const [r, g, b] = (css.match(/\d+(\.\d+)?/g) ?? ['0', '0', '0']).slice(0, 3).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  const colors = () => page.evaluate(() => ({ bg: getComputedStyle(document.body).backgroundColor, fg: getComputedStyle(document.body).color }));
  const light = await colors();
  expect(luminance(light.bg)).toBeGreaterThan(0.8);
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await colors();
  expect(luminance(dark.bg)).toBeLessThan(0.2);
  expect(luminance(dark.fg)).toBeGreaterThan(0.7);
  await page.screenshot({ path: testInfo.outputPath(`chat-dark-${backend}.png`), fullPage: true });
  expect(errors).toEqual([]);
});

test('a wrong repo id shows a clear error and the page stays usable', async ({ page, baseURL }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`/?backend=${backend}`);
  // A local URL with no model behind it: the error names the file and says what to check.
  await page.getByLabel('Hugging Face repo id or model URL').fill(`${baseURL}/no-such-model`);
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByRole('alert')).toContainText(/config\.json/);
  await expect(page.getByRole('alert')).not.toContainText('Error:'); // a plain heading, not a class name
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();

  // With a model loaded and a conversation going, a failed load keeps both. (A short answer: SwiftShader's WebGPU is slow.)
  await page.getByText('Generation settings').click();
  await page.getByLabel('Max new tokens').fill('8');
  await page.getByRole('textbox', { name: 'Message' }).fill('Hello there');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByText(/tokens · .* tok\/s/).first()).toBeVisible({ timeout: 120_000 });
  await page.getByLabel('Hugging Face repo id or model URL').fill(`${baseURL}/no-such-model`);
  await page.getByRole('button', { name: 'Download' }).click();
  const failed = page.getByRole('alert', { name: 'Load failed' });
  await expect(failed).toContainText(`${baseURL}/no-such-model was not loaded`);
  await expect(failed).toContainText('is still loaded, with its adapter, chat and runs as they were');
  await expect(page.getByRole('region', { name: 'Loading progress' })).toHaveCount(0); // no stale progress after the failure
  await expect(page.getByRole('region', { name: 'Loaded model' })).toContainText('tiny-demo-untrained');
  await expect(page.getByText('Hello there')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Send' })).toBeVisible();

  // A dataset given to the model chooser goes to Data, and the model stays.
  const dt = await page.evaluateHandle(() => {
    const t = new DataTransfer();
    t.items.add(new File([JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }) + '\n'], 'qa.jsonl'));
    return t;
  });
  await page.getByRole('region', { name: 'Drop a model folder here' }).dispatchEvent('drop', { dataTransfer: dt });
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('1 of 1 examples usable');
  await expect(page.getByRole('region', { name: 'Loaded model' })).toContainText('tiny-demo-untrained');
});

test('a base model without a chat template opens in completion mode and continues the text', async ({ page }, testInfo) => {
  test.skip(testInfo.project.metadata.backend !== 'wasm', 'the mode does not depend on the backend: run once, on the faster WASM');
  await page.goto('/?backend=wasm');
  await page.getByLabel('Choose a model folder').setInputFiles('.models/llama-base-notemplate');
  await expect(page.getByRole('region', { name: 'Loaded model' })).toContainText('llama-base-notemplate');
  await expect(page.getByTestId('no-template')).toBeVisible();
  await expect(page.getByRole('radio', { name: 'Chat' })).toBeDisabled();
  await expect(page.getByRole('radio', { name: /Completion/ })).toBeChecked();
  await page.getByText('Generation settings').click();
  await page.getByLabel('Max new tokens').fill('6');
  await page.getByLabel('Message').fill('The capital of France is');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByTestId('reply').locator('..').getByText(/tokens · .* tok\/s/)).toBeVisible();
  await expect(page.getByTestId('chat-error')).toHaveCount(0);
});
