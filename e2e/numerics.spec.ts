// Backend numerics in the browser: the demo model's training loss and every LoRA gradient on WebGPU and on
// WASM equal those of tfjs's plain JS cpu backend, with activation checkpointing on and off. (Node's unit
// tests prove the cpu and WASM numbers against an independent float64 reference and finite differences;
// this carries that proof to the backends only a browser has.)
import { expect, test } from '@playwright/test';
import { devURL } from '../playwright.config';

interface Result {
  loss: number;
  grads: Record<string, number[]>;
}

test('LoRA gradients on this backend equal the cpu backend: B = 0 and not, with and without activation checkpointing', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  test.setTimeout(5 * 60_000);
  await page.goto(`${devURL}/e2e/pages/numerics.html`);
  await page.waitForFunction(() => 'numerics' in globalThis, undefined, { timeout: 120_000 });
  const run = (b: string, ckpt: boolean, zeroB: boolean) =>
    page.evaluate(([b, ckpt, zeroB]) => (globalThis as unknown as { numerics: (b: string, c: boolean, z: boolean) => Promise<Result> }).numerics(b, ckpt, zeroB), [b, ckpt, zeroB] as const);
  for (const [checkpointing, zeroB] of [[false, true], [true, true], [false, false], [true, false]]) {
    const reference = await run('cpu', false, zeroB);
    let gradNorm = 0;
    for (const g of Object.values(reference.grads)) for (const v of g) gradNorm += v * v;
    expect(Math.sqrt(gradNorm)).toBeGreaterThan(1e-3); // a real gradient, not zeros
    const got = await run(backend, checkpointing, zeroB);
    expect(got.loss).toBeCloseTo(reference.loss, 3);
    expect(Object.keys(got.grads).sort()).toEqual(Object.keys(reference.grads).sort());
    for (const [name, ref] of Object.entries(reference.grads)) {
      const g = got.grads[name];
      const scale = Math.max(1e-6, ...ref.map(Math.abs));
      const worst = Math.max(...ref.map((r, i) => Math.abs(r - g[i]) / scale));
      expect(worst, `${name} (checkpointing ${checkpointing}, B = 0: ${zeroB}): worst difference ${worst} of the largest |gradient| ${scale}`).toBeLessThan(2e-3);
    }
  }
});

test('AdamW steps on this backend equal the cpu backend, over as many parameters as a 30-layer adapter has', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`${devURL}/e2e/pages/numerics.html`);
  await page.waitForFunction(() => 'optimizerSteps' in globalThis, undefined, { timeout: 120_000 });
  type Opt = { norms: number[]; params: number[][] };
  const run = (b: string) => page.evaluate((b) => (globalThis as unknown as { optimizerSteps: (b: string, n: number) => Promise<Opt> }).optimizerSteps(b, 420), b);
  const reference = await run('cpu');
  const got = await run(backend);
  for (let s = 0; s < 3; s++) expect(got.norms[s], `norm at step ${s + 1}`).toBeCloseTo(reference.norms[s], 3);
  const worst = Math.max(...reference.params.flatMap((p, i) => p.map((v, j) => Math.abs(v - got.params[i][j]))));
  expect(worst).toBeLessThan(1e-5);
});
