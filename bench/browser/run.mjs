// npm run bench:browser [-- --full] [--backends webgpu,wasm] [--threads] [--weights f32,int4]: the benchmark in headless chromium (the
// system chromium, with WebGPU enabled), through a module worker as the app runs its engine. Starts the vite dev
// server (cross-origin isolated: WASM runs threaded), opens bench/browser/index.html per backend, prints each table
// and one JSON line. `--threads`: WASM once on one thread and once on all, and the machine's own parallel limit
// (a plain product alone, then one per core at once) measured in the same run. `--weights`: each model once per
// format of its frozen weights (default f32), as `npm run bench` takes it.
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import os from 'node:os';

const argv = process.argv.slice(2);
const full = argv.includes('--full');
const i = argv.indexOf('--backends');
const threads = argv.includes('--threads');
const w = argv.indexOf('--weights');
const weights = w >= 0 ? `&weights=${argv[w + 1]}` : '';
const backends = threads ? ['wasm-1', 'wasm'] : i >= 0 ? argv[i + 1].split(',') : ['webgpu', 'wasm'];
const server = await createServer({ server: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' });
await server.listen();
const url = server.resolvedUrls.local[0];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'],
});
const results = [];
let limit = null;
try {
  for (const backend of backends) {
    const page = await browser.newPage();
    page.on('console', (m) => m.type() === 'error' && process.stderr.write(`[${backend}] ${m.text()}\n`));
    await page.goto(`${url}bench/browser/index.html?backend=${backend.replace('-1', '')}${backend.endsWith('-1') ? '&threads=1' : ''}${full ? '&full' : ''}${weights}`);
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
    if (threads && backend === 'wasm') limit = await page.evaluate(() => window.parallelLimit());
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${results[0]?.host ?? ''}`;
console.log(`\n${machine}; ${new Date().toISOString().slice(0, 10)}`);
for (const r of results) console.log(`\n${r.backend}${r.adapter ? ` (${r.adapter})` : ''}${r.threads ? `, ${r.threads} thread(s)` : ''}: 1024³ matmul ${r.matmul1024Gflops.toFixed(2)} GFLOP/s\n${r.table}${r.gpuTable ? `\n\nThe device's work (counted by wrapping it; the same on any GPU):\n${r.gpuTable}` : ''}`);
if (limit) {
  const [one, all] = results;
  const speedup = (k) => (all.rows[k].trainTokensPerSecond ?? NaN) / (one.rows[k].trainTokensPerSecond ?? NaN);
  console.log(`\nparallel limit: a plain product ${limit.alone.toFixed(2)} GFLOP/s alone, ${limit.together.toFixed(2)} on ${limit.cores} cores at once: ${limit.ratio.toFixed(2)}×`);
  console.log(`1024³ matmul ${one.matmul1024Gflops.toFixed(1)} → ${all.matmul1024Gflops.toFixed(1)} GFLOP/s (${(all.matmul1024Gflops / one.matmul1024Gflops).toFixed(2)}×); training ${all.rows.map((r, k) => `${r.model} ${speedup(k).toFixed(2)}× (${((100 * (speedup(k) - 1)) / (limit.ratio - 1)).toFixed(0)}% of the limit's gain)`).join(', ')}`);
}
console.log('\n' + JSON.stringify({ machine, host: 'chromium', parallelLimit: limit, results: results.map(({ table, gpuTable, rows, ...r }) => ({ ...r, rows: rows.map(({ lastLogits, ...row }) => row) })) }));
