// The page against a local stand-in of the Hub and its CDN (tests/hub-server.ts): a Hub address and an access
// token set in the page load a gated model; the token is sent to that Hub only, never to the CDN it
// redirects the weights to; without a token the page says the model is gated and what to do.
import { expect, test } from '@playwright/test';
import { HUB_TOKEN, startStandInHub, type StandInHub } from '../tests/hub-server';

let hub: StandInHub;
test.beforeAll(async () => {
  hub = await startStandInHub();
});
test.afterAll(() => hub.close());

test('a gated model through a mirror with a token; the token never leaves for another origin', async ({ page }, testInfo) => {
  test.skip(testInfo.project.metadata.backend !== 'wasm', 'Hub access does not depend on the compute backend: run once, on the faster WASM');
  await page.goto('/?backend=wasm');
  const repo = page.getByLabel('Hugging Face repo id or model URL');
  await page.getByText('Hub address and access token').click();
  await page.getByLabel('Hub address', { exact: true }).fill(hub.endpoint);

  // No token: refused, with the reason and the remedy.
  await repo.fill('webtune-gated/gemma3-window-bf16');
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByText(/the model is gated\. .*accept its licence/)).toBeVisible();

  await page.getByLabel(/Access token/).fill(HUB_TOKEN);
  const before = hub.seen.length;
  await page.getByRole('button', { name: 'Download' }).click();
  const loaded = page.getByRole('region', { name: 'Loaded model' });
  await expect(loaded).toContainText('Gemma3ForCausalLM');
  const seen = hub.seen.slice(before);
  expect(seen.filter((s) => s.server === 'hub').every((s) => s.authorization === `Bearer ${HUB_TOKEN}`)).toBe(true);
  const cdn = seen.filter((s) => s.server === 'cdn');
  expect(cdn.map((s) => s.path.split('?')[0])).toEqual(['/blob/gated/gemma3-window-bf16/model.safetensors']);
  expect(cdn.every((s) => s.authorization === undefined)).toBe(true);

  // Kept on this device for the next visit.
  await page.reload();
  await page.getByText('Hub address and access token').click();
  await expect(page.getByLabel(/Access token/)).toHaveValue(HUB_TOKEN);
  await expect(page.getByLabel('Hub address', { exact: true })).toHaveValue(hub.endpoint);
});
