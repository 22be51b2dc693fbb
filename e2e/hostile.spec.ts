// Hostile text: HTML and script payloads in a dataset (content, file name, a broken line), a typed model
// URL, a chat prompt and the tuned model's own output (it is trained to answer with a payload) are shown
// as inert text. Nothing runs, no element is injected, and the Content-Security-Policy is never even hit.
import { expect, test } from '@playwright/test';
import { addDataset, ask, chatJsonl, loadDemo, memoriseSettings, openApp, record, shot } from './helpers';

const IMG = '<img src=x onerror="window.pwned=(window.pwned||0)+1">';
const SCRIPT = '<script>window.pwned=(window.pwned||0)+1</script>';
const LINK = '<a href="javascript:window.pwned=1">click</a>';
const RTL = '\u202Eevil\u202C \u200B\u200D zero-width';
const PAIRS: [string, string][] = [
  ['Show me a picture', IMG],
  [`Run this ${SCRIPT}`, 'Blue.'],
  [`A link ${LINK}`, 'Shakespeare.'],
  [`Mixed ${RTL}`, 'Honey.'],
];

test('payloads in data, names, prompts and model output stay inert text', async ({ page }, testInfo) => {
  test.skip(testInfo.project.metadata.backend !== 'wasm', 'rendering does not depend on the backend: run once, on the faster WASM');
  test.setTimeout(8 * 60_000);
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.addInitScript(() => {
    const w = window as unknown as { cspViolations: string[] };
    w.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await openApp(page, 'wasm');
  await loadDemo(page);

  // A typed "model URL" that is a script: refused as a source, shown as text.
  await page.getByLabel('Hugging Face repo id or model URL').fill(`javascript:alert(1)//${IMG}`);
  await page.getByRole('button', { name: 'Download', exact: true }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'javascript:alert(1)' }).first()).toBeVisible();
  await loadDemo(page);

  // The dataset: payloads in messages, a long line, a broken line quoting a payload, and a hostile file name.
  const long = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(200_000) + IMG }, { role: 'assistant', content: 'ok' }] });
  const text = chatJsonl(PAIRS) + long + '\n' + `{"messages": ${IMG}\n`;
  await addDataset(page, `${IMG}.jsonl`, text);
  const report = page.getByRole('region', { name: 'Dataset report' });
  await expect(report).toContainText('5 of 6 examples usable');
  await expect(page.getByRole('list', { name: 'Errors' })).toContainText('line 6 invalid_json');
  await page.getByText('Preview: examples as the model sees them').click();
  await expect(page.getByRole('article', { name: 'Example on line 1' })).toContainText(IMG);
  await expect(page.getByRole('article', { name: 'Example on line 2' })).toContainText(SCRIPT);
  await expect(page.getByRole('article', { name: 'Example on line 3' })).toContainText(LINK);

  // The tuned model learns to answer with a payload; its answer must arrive as text.
  await page.getByLabel('Dataset', { exact: true }).selectOption({ index: 0 });
  await memoriseSettings(page, 40);
  await page.getByLabel('Max length (tokens)').fill('96'); // the 200 kB line is truncated, not trained whole
  const cdp = await page.context().newCDPSession(page);
  const heapMiB = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    return Math.round(((await cdp.send('Runtime.getHeapUsage')).usedSize / 2 ** 20) * 10) / 10;
  };
  const heap = [await heapMiB()];
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByTestId('train-status')).toContainText('done · step', { timeout: 300_000 });
  heap.push(await heapMiB());
  await ask(page, PAIRS[0][0], 80);
  await expect(page.getByTestId('reply-tuned')).toHaveText(IMG, { timeout: 120_000 });
  await ask(page, `${SCRIPT}${LINK}`, 8);
  await expect(page.getByText(`${SCRIPT}${LINK}`)).toBeVisible();
  await shot(page, 'hostile');
  heap.push(await heapMiB());
  // The page keeps only the UI: the dataset, weights and tensors live in the worker. Bound: 64 MiB.
  const HEAP_BOUND_MIB = 64;
  for (const h of heap) expect(h).toBeLessThan(HEAP_BOUND_MIB);
  record('heap', { steps: 40, samplesMiB: heap.join(' → '), boundMiB: HEAP_BOUND_MIB });

  const state = await page.evaluate(() => ({
    pwned: (window as unknown as { pwned?: number }).pwned ?? 0,
    injectedImages: document.querySelectorAll('img[src="x"]').length,
    injectedScripts: Array.from(document.querySelectorAll("script")).filter((s) => !s.src).length,
    javascriptLinks: document.querySelectorAll('a[href^="javascript:"]').length,
    violations: (window as unknown as { cspViolations: string[] }).cspViolations,
  }));
  expect(state).toEqual({ pwned: 0, injectedImages: 0, injectedScripts: 0, javascriptLinks: 0, violations: [] });
  expect(dialogs).toEqual([]);
  record('hostile', {
    payloads: [IMG, SCRIPT, LINK, JSON.stringify(RTL), 'a 200,000-character line', `file name ${IMG}.jsonl`, `model URL javascript:alert(1)//…`],
    shownAsText: ['dataset report and preview', 'error list', 'chat prompt', 'tuned model output reproducing the payload'],
    ...state,
    dialogs: dialogs.length,
  });
});
