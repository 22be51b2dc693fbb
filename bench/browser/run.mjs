// npm run bench:browser [-- --full] [--backends webgpu,wasm]: the benchmark in headless chromium (the system
// chromium, with WebGPU enabled), through a module worker as the app runs its engine. Starts the vite dev
// server, opens bench/browser/index.html per backend, prints each table and one JSON line.
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import os from 'node:os';

const argv = process.argv.slice(2);
const full = argv.includes('--full');
const i = argv.indexOf('--backends');
const backends = i >= 0 ? argv[i + 1].split(',') : ['webgpu', 'wasm'];
const server = await createServer({ server: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' });
await server.listen();
const url = server.resolvedUrls.local[0];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'],
});
const results = [];
try {
  for (const backend of backends) {
    const page = await browser.newPage();
    page.on('console', (m) => m.type() === 'error' && process.stderr.write(`[${backend}] ${m.text()}\n`));
    await page.goto(`${url}bench/browser/index.html?backend=${backend}${full ? '&full' : ''}`);
    let shown = 0;
    for (;;) {
      const state = await page.evaluate(() => ({ log: document.getElementById('log')?.textContent ?? '', result: window.benchResult, error: window.benchError }));
      const lines = state.log.split('\n').filter(Boolean);
      for (const l of lines.slice(shown)) process.stderr.write(`[${backend}] ${l}\n`);
      shown = lines.length;
      if (state.error) throw new Error(`${backend}: ${state.error}`);
      if (state.result) {
        results.push(state.result);
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${results[0]?.host ?? ''}`;
console.log(`\n${machine}; ${new Date().toISOString().slice(0, 10)}`);
for (const r of results) console.log(`\n${r.backend}${r.adapter ? ` (${r.adapter})` : ''}: 1024³ matmul ${r.matmul1024Gflops.toFixed(2)} GFLOP/s\n${r.table}`);
console.log('\n' + JSON.stringify({ machine, host: 'chromium', results: results.map(({ table, ...r }) => r) }));
