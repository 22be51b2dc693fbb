// The benchmark page (served by the vite dev server; `npm run bench:browser` drives it): starts the
// benchmark worker with the backend from the URL and shows its log; the result lands in window.benchResult.
import type { BrowserBenchResult, BenchRequest } from './worker';

const params = new URLSearchParams(location.search);
const request: BenchRequest = { backend: params.get('backend') === 'webgpu' ? 'webgpu' : 'wasm', full: params.has('full') };
const log = document.getElementById('log')!;
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const w = window as unknown as { benchResult?: BrowserBenchResult; benchError?: string };
worker.onmessage = (e: MessageEvent<{ log?: string; result?: BrowserBenchResult; error?: string }>) => {
  if (e.data.log) log.textContent += e.data.log + '\n';
  if (e.data.result) w.benchResult = e.data.result;
  if (e.data.error) w.benchError = log.textContent += `error: ${e.data.error}\n`;
};
worker.postMessage(request);
