// Backend numerics in the browser: the demo model's training loss and every LoRA gradient on WebGPU and on
// WASM equal those of tfjs's plain JS cpu backend, with activation checkpointing on and off (and for Gemma 3). (Node's unit
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
  const run = (b: string, ckpt: boolean, zeroB: boolean, model?: string, blockBytes?: number, weights = 'f32') =>
    page.evaluate(
      ([b, ckpt, zeroB, model, blockBytes, weights]) => (globalThis as unknown as { numerics: (b: string, c: boolean, z: boolean, m?: string, v?: number, w?: string) => Promise<Result> }).numerics(b, ckpt, zeroB, model, blockBytes, weights),
      [b, ckpt, zeroB, model, blockBytes, weights] as const,
    );
  // The demo (Llama) in every combination; Gemma 3 (q/k norms, four (1 + w) norms, GELU, a sliding window
  // shorter than the sequence) with a random B, with and without checkpointing, and with its vocabulary in
  // blocks of 100 rows (as a GPU whose binding limit is below the embedding runs it) against the cpu unsplit;
  // and with its frozen weights packed in 16 bits and in int4 (against the cpu holding them the same way).
  const combos: [boolean, boolean, string | undefined, number | undefined, string][] = [
    [false, true, undefined, undefined, 'f32'],
    [true, true, undefined, undefined, 'f32'],
    [false, false, undefined, undefined, 'f32'],
    [true, false, undefined, undefined, 'f32'],
    [false, false, 'gemma3-window-bf16', undefined, 'f32'],
    [true, false, 'gemma3-window-bf16', undefined, 'f32'],
    [true, false, 'gemma3-window-bf16', 100 * 64 * 4, 'f32'],
    [true, false, 'gemma3-window-bf16', undefined, '16bit'],
    [false, false, 'gemma3-window-bf16', 100 * 64 * 4, 'int4'],
  ];
  for (const [checkpointing, zeroB, model, blockBytes, weights] of combos) {
    const reference = await run('cpu', false, zeroB, model, undefined, weights);
    let gradNorm = 0;
    for (const g of Object.values(reference.grads)) for (const v of g) gradNorm += v * v;
    expect(Math.sqrt(gradNorm)).toBeGreaterThan(1e-3); // a real gradient, not zeros
    const got = await run(backend, checkpointing, zeroB, model, blockBytes, weights);
    // int8/int4 on WASM: a few rows' products take x rounded to 16 bits (ops/packed-matmul-simd.ts), so the loss
    // is held to 1e-5 of itself there; everywhere else to float32's summation order (3 decimals).
    const lossSlack = backend === 'wasm' && (weights === 'int8' || weights === 'int4') ? 1e-5 * Math.abs(reference.loss) : 5e-4;
    expect(Math.abs(got.loss - reference.loss), `loss, weights ${weights}`).toBeLessThan(lossSlack);
    expect(Object.keys(got.grads).sort()).toEqual(Object.keys(reference.grads).sort());
    for (const [name, ref] of Object.entries(reference.grads)) {
      const g = got.grads[name];
      const scale = Math.max(1e-6, ...ref.map(Math.abs));
      const worst = Math.max(...ref.map((r, i) => Math.abs(r - g[i]) / scale));
      expect(worst, `${model ?? 'demo'}${blockBytes ? ' (vocabulary in blocks)' : ''} weights ${weights} ${name} (checkpointing ${checkpointing}, B = 0: ${zeroB}): worst difference ${worst} of the largest |gradient| ${scale}`).toBeLessThan(2e-3);
    }
  }
});

test('decoding with the KV cache on this backend gives the cpu backend’s logits at every step: Llama, Gemma 3 (window, q/k norms, 1 + w), Qwen2 (biases), with and without an adapter, and with packed weights', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`${devURL}/e2e/pages/numerics.html`);
  await page.waitForFunction(() => 'decodeLogits' in globalThis, undefined, { timeout: 120_000 });
  const run = (b: string, model: string | undefined, adapted: boolean, weights: string) =>
    page.evaluate(([b, model, adapted, weights]) => (globalThis as unknown as { decodeLogits: (b: string, m?: string, a?: boolean, w?: string) => Promise<number[][]> }).decodeLogits(b, model, adapted, weights), [b, model, adapted, weights] as const);
  // With packed weights (the cpu holding them packed alike), WebGPU's row kernel reads them from their words: the
  // pair of MLP products in one kernel without an adapter; with one, the gate's kernel, then up's given the gate.
  // WASM's int8 rounds x to 16 bits.
  const cases = [[undefined, 'f32'], ['gemma3-window-bf16', 'f32'], ['qwen2-bias-bf16', 'f32'], ['qwen2-bias-bf16', 'int8'], ['gemma3-window-bf16', 'int4'], ['llama-untied-mha-f16', '16bit']] as const;
  for (const [model, weights] of cases) {
    for (const adapted of [false, true]) {
      const [want, got] = [await run('cpu', model, adapted, weights), await run(backend, model, adapted, weights)];
      expect(got.length).toBe(8);
      want.forEach((row, step) => {
        const scale = Math.max(...row.map(Math.abs));
        const worst = Math.max(...row.map((r, i) => Math.abs(r - got[step][i])));
        expect(worst / scale, `${model ?? 'demo'} (${weights})${adapted ? ' with an adapter' : ''}, step ${step}`).toBeLessThan(1e-4);
      });
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

test('packed frozen weights dequantize on this backend to the cpu backend’s float32 bits, every format, plain and transposed; their decode and training products and the gradient equal the cpu’s', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`${devURL}/e2e/pages/numerics.html`);
  await page.waitForFunction(() => 'dequantized' in globalThis, undefined, { timeout: 120_000 });
  type Out = { bits: Record<string, number[]>; products: Record<string, number[]>; allowed: Record<string, number[]>; helperParts: number | null };
  const run = (b: string) => page.evaluate((b) => (globalThis as unknown as { dequantized: (b: string) => Promise<Out> }).dequantized(b), b);
  const { bits: reference, products: refProducts } = await run('cpu');
  const { bits: got, products, allowed, helperParts } = await run(backend);
  expect(Object.keys(got)).toEqual(Object.keys(reference));
  // WASM, threaded in this cross-origin isolated page, splits the largest products across helper threads it starts
  // itself (ops/simd-pool.ts): they started here, and ran parts of the products compared below.
  if (backend === 'wasm' && (await page.evaluate(() => crossOriginIsolated && navigator.hardwareConcurrency > 1))) expect(helperParts).toBeGreaterThan(0);
  // The products from packed words (a decoded token's, training's tiles on WebGPU, and its gradient dy·W) equal the
  // cpu's (which unpacks, then multiplies, for many rows) up to summation order, and, for
  // int8 and int4 on WASM, up to x's rounding to int16 (`allowed`, the most it can move each result).
  expect(Object.keys(products)).toEqual(Object.keys(refProducts));
  for (const [name, ref] of Object.entries(refProducts)) {
    const scale = Math.max(...ref.map(Math.abs));
    const slack = backend === 'wasm' ? allowed[name] : ref.map(() => 0);
    const worst = Math.max(...ref.map((r, i) => Math.abs(r - products[name][i]) - slack[i]));
    expect(worst / scale, `${name} on ${backend}`).toBeLessThan(1e-5);
  }
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const value = (bits: number) => ((u32[0] = bits), f32[0]);
  for (const [name, ref] of Object.entries(reference)) {
    const bits = got[name];
    // A GPU may flush float32 subnormals to zero on store, and NaNs may come back with another payload.
    const wrong = ref.filter((r, i) => {
      if (r === bits[i]) return false;
      const v = value(r);
      if (Number.isNaN(v)) return !Number.isNaN(value(bits[i]));
      return !(Math.abs(v) < 2 ** -126 && (bits[i] & 0x7fffffff) === 0);
    }).length;
    expect(wrong, `${name} on ${backend}`).toBe(0);
  }
});

test('each fused kernel equals the tfjs ops it replaces on this backend, output and gradient (WebGPU runs the kernel; WASM its loops for few values, else the ops)', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`${devURL}/e2e/pages/numerics.html`);
  await page.waitForFunction(() => 'fusedKernels' in globalThis, undefined, { timeout: 120_000 });
  type Check = { name: string; fused: boolean; loop: boolean; forward: number; gradient: number };
  const checks = await page.evaluate((b) => (globalThis as unknown as { fusedKernels: (b: string) => Promise<Check[]> }).fusedKernels(b), backend);
  expect(checks.length).toBe(backend === 'wasm' ? 88 : 85); // WASM adds its BatchMatMul in the SIMD module
  for (const c of checks) {
    // WebGPU runs every kernel; WASM its own kernels for a decoded token's norms, rotations, activations and attention.
    expect(c.fused, `${c.name}: the kernel ran on ${backend}`).toBe(backend === 'webgpu' || (backend === 'wasm' && c.loop));
    expect(c.forward, `${c.name} output`).toBeLessThan(1e-5);
    expect(c.gradient, `${c.name} gradient`).toBeLessThan(1e-4);
  }
});
