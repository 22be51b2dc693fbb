// A phone (390 × 844) in dark mode: no word broken inside a button, no column crushed to a letter, nothing wider
// than the screen; the evaluation table scrolls sideways in its own region instead.
import { expect, test } from '@playwright/test';
import { shot } from './helpers';

test('a phone layout without broken words or crushed tables', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'layout does not depend on the compute backend; run once');
  test.setTimeout(3 * 60_000);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/?backend=wasm');
  await page.getByRole('button', { name: 'Try it: the demo model with sample chats' }).click();
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('8 of 8');
  const download = page.getByRole('button', { name: 'Download', exact: true });
  const lineHeight = await download.evaluate((b) => parseFloat(getComputedStyle(b).lineHeight) || 1.2 * parseFloat(getComputedStyle(b).fontSize));
  expect((await download.boundingBox())!.height).toBeLessThan(2 * lineHeight + 16); // one line of text plus padding
  await page.getByLabel('Epochs').fill('2');
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByTestId('train-status')).toContainText('done', { timeout: 60_000 });
  await page.getByLabel('Examples to evaluate').selectOption('all');
  await page.getByLabel('Number of examples').fill('2');
  await page.getByRole('button', { name: 'Evaluate', exact: true }).click();
  await expect(page.getByTestId('eval-summary')).toContainText('2 of', { timeout: 60_000 });
  const firstColumn = page.getByRole('table', { name: 'Evaluation' }).locator('th').first();
  expect((await firstColumn.boundingBox())!.width).toBeGreaterThan(60);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  // Nothing sticks out of its card (a wide input once pushed the Model card's buttons past its border).
  const outside = await page.evaluate(() =>
    Array.from(document.querySelectorAll('.card')).flatMap((card) => {
      const edge = card.getBoundingClientRect().right;
      return Array.from(card.querySelectorAll('button, input, select, textarea, p'))
        .filter((el) => el.getBoundingClientRect().width > 0 && !el.closest('.table-wrap') && el.getBoundingClientRect().right > edge + 1)
        .map((el) => `${card.querySelector('h2')?.textContent}: ${el.tagName} "${(el.textContent || (el as HTMLInputElement).value || '').slice(0, 30)}"`);
    }),
  );
  expect(outside).toEqual([]);
  await shot(page, 'phone-dark');
});
