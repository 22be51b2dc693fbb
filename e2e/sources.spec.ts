// Model sources in the browser: a URL download is cached (the second load needs no network), a local
// folder loads through the folder picker, and `auto` explains its backend choice.
import { expect, test } from '@playwright/test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ask } from './helpers';


test('a downloaded model is cached: after a reload, loading it again fetches nothing', async ({ page, context, baseURL }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  const DEMO_URL = `${baseURL}/models/demo`;
  const modelRequests: string[] = [];
  context.on('request', (r) => {
    if (r.url().startsWith(DEMO_URL)) modelRequests.push(r.url());
  });
  await page.goto(`/?backend=${backend}`);
  await page.getByLabel('Hugging Face repo id or model URL').fill(DEMO_URL);
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  expect(modelRequests.some((u) => u.endsWith('/model.safetensors'))).toBe(true);

  await page.reload();
  modelRequests.length = 0;
  await page.getByLabel('Hugging Face repo id or model URL').fill(DEMO_URL);
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  // Files that exist come from Cache Storage; only absent optional files (404s are not cached) are asked again.
  expect(modelRequests.filter((u) => /\/(config\.json|tokenizer\.json|tokenizer_config\.json|model\.safetensors)$/.test(u))).toEqual([]);

  // The cache is listed with its size, and deleting it makes the next load download again.
  await page.getByText(/Models kept for offline use/).click();
  const cached = page.getByRole('list', { name: 'Cached models' });
  await expect(cached).toContainText(/models\/demo · 1\.\d MB in 5 files/);
  // A kept model loads from its Load button, from the cache.
  await page.reload();
  modelRequests.length = 0;
  await page.getByText(/Models kept for offline use/).click();
  await cached.getByRole('button', { name: /^Load / }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  expect(modelRequests.filter((u) => /\/(config\.json|tokenizer\.json|tokenizer_config\.json|model\.safetensors)$/.test(u))).toEqual([]);
  await page.getByText(/Models kept for offline use/).click();
  await cached.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByText('None yet')).toBeVisible();
  modelRequests.length = 0;
  await page.getByLabel('Hugging Face repo id or model URL').fill(DEMO_URL);
  await page.getByRole('button', { name: 'Download' }).click();
  await expect(page.getByRole('region', { name: 'Loaded model' })).toBeVisible();
  expect(modelRequests.some((u) => u.endsWith('/model.safetensors'))).toBe(true);
});

test('a local model folder loads through the folder picker', async ({ page }, testInfo) => {
  const backend = testInfo.project.metadata.backend as string;
  await page.goto(`/?backend=${backend}`);
  // Auto holds a small model in float32 (the fastest) and says why. 16-bit holds a bf16 model's own values (WebGPU
  // and WASM unpack them inside each product) and answers exactly as float32: the same greedy reply; int4 is a
  // rounded model, and says so.
  const weights = page.getByLabel('Frozen weights');
  await expect(weights).toHaveValue('auto');
  const format = page.getByTestId('weights-format');
  const loaded = page.getByRole('region', { name: 'Loaded model' });
  await page.getByLabel('Choose a model folder').setInputFiles(join('.models', 'qwen2-bias-bf16'));
  await expect(loaded).toContainText('Qwen2ForCausalLM');
  await expect(loaded).toContainText('qwen2-bias-bf16');
  await expect(format).toHaveText('float32');
  await expect(loaded).toContainText(backend === 'wasm' ? 'fits WASM' : 'float32 is the fastest');
  const reply = async () => {
    await ask(page, 'What is the capital of France?', 6);
    const r = page.getByTestId('reply').last();
    await expect(page.getByText(/tokens · .* tok\/s/).last()).toBeVisible({ timeout: 60_000 });
    return r.textContent();
  };
  const inFloat32 = await reply();
  await weights.selectOption('16bit');
  await page.getByLabel('Choose a model folder').setInputFiles(join('.models', 'qwen2-bias-bf16'));
  await expect(format).toHaveText('16-bit');
  expect(await reply()).toBe(inFloat32);
  await weights.selectOption('int4');
  await page.getByLabel('Choose a model folder').setInputFiles(join('.models', 'qwen2-bias-bf16'));
  await expect(format).toHaveText('int4');
  await expect(loaded).toContainText('rounded to 4 bits');
  expect((await reply())?.length).toBeGreaterThan(0);
});

test('WASM runs on every core: the page is cross-origin isolated and says how many threads', async ({ page }, testInfo) => {
  test.skip(testInfo.project.metadata.backend !== 'wasm', 'WASM threads: the wasm project');
  await page.goto('/?backend=wasm');
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true); // COOP/COEP from the server
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByTestId('backend')).toContainText(cores > 1 ? `${cores} threads` : '1 thread');
});

test('on a static host that sends no isolation headers, the service worker adds them: one reload, then WASM on every core', async ({ page }, testInfo) => {
  test.skip(testInfo.project.metadata.backend !== 'wasm', 'WASM threads: the wasm project');
  // The built app (dist/, as the preview server serves it) from a plain file server: no COOP, no COEP.
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json', '.svg': 'image/svg+xml', '.webmanifest': 'application/manifest+json' };
  const documents: string[] = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = join('dist', path.endsWith('/') ? path + 'index.html' : path);
    if (file.endsWith('.html')) documents.push(path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await page.goto(`${origin}/?backend=wasm`);
    // The first page is not isolated; the worker installs, takes control and the page reloads itself into it.
    await expect.poll(() => page.evaluate(() => crossOriginIsolated).catch(() => false), { timeout: 60_000 }).toBe(true);
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
    await expect(page.getByTestId('backend')).toContainText(cores > 1 ? `${cores} threads` : '1 thread');
    // A later visit is isolated from its first byte, with no reload: the worker answers the navigation.
    await page.goto(`${origin}/?backend=wasm`);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(documents.filter((d) => d === '/')).toHaveLength(1); // the first visit's page only (the precache fetches index.html by name)
  } finally {
    server.close();
  }
});

test('auto explains its choice', async ({ page }) => {
  await page.goto('/?backend=auto');
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  const backend = page.getByTestId('backend');
  await expect(backend).toBeVisible();
  const text = (await backend.textContent()) ?? '';
  // Headless chromium's WebGPU is SwiftShader, a software fallback: auto must prefer WASM and say why.
  expect(text).toMatch(/Backend: (webgpu — hardware WebGPU adapter|wasm — .*(software fallback|no WebGPU))/);
  console.log(`auto chose: ${text}`);
});

test('a server that refuses CORS and one that cannot be reached get different messages', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'network errors do not depend on the compute backend; run once');
  // A plain static server: it answers, with no Access-Control-Allow-Origin header.
  const server = createServer((_, res) => res.end('{}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const open = (server.address() as AddressInfo).port;
  const closed = await new Promise<number>((done) => {
    const s2 = createServer().listen(0, '127.0.0.1', () => {
      const p = (s2.address() as AddressInfo).port;
      s2.close(() => done(p));
    });
  });
  try {
    await page.goto('/?backend=wasm');
    const repo = page.getByLabel('Hugging Face repo id or model URL');
    await repo.fill(`http://127.0.0.1:${open}/model`);
    await page.getByRole('button', { name: 'Download' }).click();
    await expect(page.getByRole('alert')).toContainText(`http://127.0.0.1:${open} answered, but does not let this page read its files`);
    await expect(page.getByRole('alert')).toContainText('Access-Control-Allow-Origin');
    await repo.fill(`http://127.0.0.1:${closed}/model`);
    await page.getByRole('button', { name: 'Download' }).click();
    await expect(page.getByRole('alert')).toContainText(`127.0.0.1:${closed} could not be reached`);
  } finally {
    server.close();
  }
});
