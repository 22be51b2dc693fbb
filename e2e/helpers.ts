// Steps the browser tests share: open the app on a backend, load the demo model, add a dataset, set up a
// run the tiny model can learn from, keep a screenshot, and record figures for RELIABILITY.md.
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';

export const QA: [string, string][] = [
  ['What is the capital of France?', 'Paris.'],
  ['What color is the sky?', 'Blue.'],
  ['Who wrote Hamlet?', 'Shakespeare.'],
  ['What do bees make?', 'Honey.'],
];

/** Chat JSONL, one example per [question, answer] pair. */
export function chatJsonl(pairs: [string, string][]): string {
  return pairs.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n';
}

/** axe-core's WCAG 2.1 A/AA rules on the page as it is now; any violation fails, listed with its elements. */
export async function axeScan(page: Page, stage: string): Promise<void> {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const found = r.violations.map((v) => `${stage}: ${v.id} (${v.impact}) × ${v.nodes.length}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  expect(found, found.join('\n')).toEqual([]);
}

/** Unfold the Train panel's settings beyond the basic ones (LoRA shape, schedule, evaluation). */
export async function openMoreSettings(page: Page): Promise<void> {
  const more = page.locator('details.more');
  if ((await more.getAttribute('open')) === null) await more.locator('summary').click();
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: test.info().outputPath(`${name}-${test.info().project.name}.png`), fullPage: true });
}

export async function openApp(page: Page, backend: string): Promise<void> {
  await page.goto(`/?backend=${backend}`);
  await expect(page.getByRole('heading', { name: 'webtune' })).toBeVisible();
}

export async function loadDemo(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
}

export async function addDataset(page: Page, name: string, text: string): Promise<void> {
  await page.getByLabel('Choose a dataset file').setInputFiles({ name, mimeType: 'application/jsonl', buffer: Buffer.from(text) });
}

/** Settings under which the demo model memorises a few answers: one step per epoch, no validation split. */
export async function memoriseSettings(page: Page, epochs: number): Promise<void> {
  await page.getByLabel('Epochs').fill(String(epochs));
  await page.getByLabel('Learning rate').fill('0.01');
  await page.getByLabel('Batch size').fill('4');
  await openMoreSettings(page);
  await page.getByLabel('LoRA dropout').fill('0');
  await page.getByLabel('Warm-up (fraction)').fill('0');
  await page.getByLabel('Validation split').fill('0');
}

/** The step the status line shows now. */
export async function shownStep(page: Page): Promise<number> {
  const text = (await page.getByTestId('train-status').textContent()) ?? '';
  return Number(/step (\d+)/.exec(text)?.[1] ?? 0);
}

export async function ask(page: Page, prompt: string, maxNewTokens = 24): Promise<void> {
  const settings = page.getByLabel('Max new tokens');
  if (!(await settings.isVisible())) await page.getByText('Generation settings').click();
  await settings.fill(String(maxNewTokens));
  await page.getByRole('textbox', { name: 'Message' }).fill(prompt);
  await page.getByRole('button', { name: 'Send' }).click();
}

/**
 * Figures for RELIABILITY.md: each test writes what it planted, what the user saw and what was kept, as
 * JSON under .reliability/ (`npm run reliability` collects them).
 */
export function record(name: string, figures: Record<string, unknown>): void {
  mkdirSync('.reliability', { recursive: true });
  const file = `.reliability/e2e-${name}-${test.info().project.name}.json`;
  writeFileSync(file, JSON.stringify({ name, project: test.info().project.name, ...figures }, null, 2));
}
