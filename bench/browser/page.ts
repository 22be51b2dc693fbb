// The benchmark page (served by the vite dev server; `npm run bench:browser` drives it): starts the
// benchmark worker with the backend from the URL and shows its log; the result lands in window.benchResult.
import type { BrowserBenchResult, BenchRequest } from './worker';
import type { WeightFormat } from '../../workers/shared/weights';

const params = new URLSearchParams(location.search);
const request: BenchRequest = { backend: params.get('backend') === 'webgpu' ? 'webgpu' : 'wasm', full: params.has('full'), threads: params.has('threads') ? Number(params.get('threads')) : null, weights: (params.get('weights') ?? 'f32').split(',') as WeightFormat[] };
const log = document.getElementById('log')!;
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const w = window as unknown as { benchResult?: BrowserBenchResult; benchError?: string };
worker.onmessage = (e: MessageEvent<{ log?: string; result?: BrowserBenchResult; error?: string }>) => {
  if (e.data.log) log.textContent += e.data.log + '\n';
  if (e.data.result) w.benchResult = e.data.result;
  if (e.data.error) w.benchError = log.textContent += `error: ${e.data.error}\n`;
};
worker.postMessage(request);

/** The machine's own parallel limit, measured as the threads are used: the same plain single-threaded JS product
 * (192³, float32) in one worker alone, then in one worker per logical core at once; the ratio of their total
 * rates is what the cores give together (on a shared virtual machine, often less than their count). Each run
 * is 3 s of repeated products. */
async function parallelLimit(): Promise<{ cores: number; alone: number; together: number; ratio: number }> {
  const code = `onmessage = () => { const n = 192, a = new Float32Array(n * n).fill(1.01), b = new Float32Array(n * n).fill(0.99), c = new Float32Array(n * n);
    const t0 = performance.now(); let reps = 0;
    while (performance.now() - t0 < 3000) { for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) { const x = a[i * n + k]; for (let j = 0; j < n; j++) c[i * n + j] += x * b[k * n + j]; } reps++; }
    postMessage((reps * 2 * n * n * n) / ((performance.now() - t0) / 1000) / 1e9); };`;
  const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
  const run = (k: number) => Promise.all(Array.from({ length: k }, () => new Promise<number>((resolve) => {
    const w = new Worker(url);
    w.onmessage = (e) => { resolve(e.data as number); w.terminate(); };
    w.postMessage(0);
  }))).then((rates) => rates.reduce((a, b) => a + b, 0));
  const cores = navigator.hardwareConcurrency;
  // Alone before and after (the better kept: a rate caught in a slow moment would flatter the ratio); together twice.
  const alone = Math.max(await run(1), 0);
  const together = Math.max(await run(cores), await run(cores));
  const aloneAgain = await run(1);
  return { cores, alone: Math.max(alone, aloneAgain), together, ratio: together / Math.max(alone, aloneAgain) };
}
(window as unknown as { parallelLimit: typeof parallelLimit }).parallelLimit = parallelLimit;
