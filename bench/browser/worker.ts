// The benchmark in a module worker, on the backend asked for: the backend's own limits (1024³ matmul,
// weight read rate), then the tiny demo model and, with `full`, SmolLM2-135M-Instruct's exact shape, at
// sequence length 256 — the same code `npm run bench` runs in Node.
import { selectBackend, setWasmThreads } from '../../workers/engine/backend';
import { configureBrowserWasm } from '../../workers/browser/wasm-urls';
import { benchModel, formatGpuTable, formatTable, measureLimits, type ModelBench } from '../../workers/bench/bench';
import { countDevice, type GpuCounter } from '../../workers/bench/gpu-counts';
import * as tf from '../../workers/engine/tf';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { DEMO_SPEC, SMOLLM2_135M_SHAPE } from '../../workers/tiny/tiny-model';
import type { WeightFormat } from '../../workers/shared/weights';

export interface BenchRequest {
  backend: 'webgpu' | 'wasm';
  full: boolean;
  threads: number | null; // WASM threads (null: one per logical core)
  weights: WeightFormat[]; // each model once per format of its frozen weights
}

export interface BrowserBenchResult {
  host: string;
  backend: string;
  adapter?: string;
  threads?: number; // WASM: the threads its products ran on
  matmul1024Gflops: number;
  readGBps: number;
  rows: ModelBench[];
  table: string;
  gpuTable?: string; // WebGPU: dispatches, submits, new buffers and reads per training step and per decoded token
}

configureBrowserWasm();

const post = (m: unknown) => (self as unknown as { postMessage(m: unknown): void }).postMessage(m);

self.onmessage = async (e: MessageEvent<BenchRequest>) => {
  const log = (s: string) => post({ log: s });
  try {
    setWasmThreads(e.data.threads);
    const info = await selectBackend(e.data.backend);
    // Counting starts before any buffer is made, so every read buffer is seen.
    const gpu: GpuCounter | undefined = info.name === 'webgpu' ? countDevice((tf.backend() as WebGPUBackend).device) : undefined;
    const limits = await measureLimits(1024, 1024, 1024);
    log(`${info.name}${info.adapter ? ` (${info.adapter})` : ''}${info.threads ? `, ${info.threads} thread(s)` : ''}: 1024³ matmul ${limits.matmulGflops.toFixed(2)} GFLOP/s, weight read ${limits.readGBps.toFixed(2)} GB/s`);
    const rows: ModelBench[] = [];
    for (const weights of e.data.weights) rows.push(await benchModel({ ...DEMO_SPEC, maxPositions: 512 }, { seqLen: 256, batch: 4, trainSteps: 3, decodeTokens: 32, log, gpu, weights }));
    if (e.data.full) for (const weights of e.data.weights) rows.push(await benchModel(SMOLLM2_135M_SHAPE, { seqLen: 256, batch: 4, trainSteps: 2, decodeTokens: 16, log, gpu, weights }));
    const result: BrowserBenchResult = { host: navigator.userAgent, backend: info.name, adapter: info.adapter, threads: info.threads, matmul1024Gflops: limits.matmulGflops, readGBps: limits.readGBps, rows, table: formatTable(rows), ...(gpu ? { gpuTable: formatGpuTable(rows) } : {}) };
    post({ result });
  } catch (err) {
    post({ error: err instanceof Error ? err.message : String(err) });
  }
};
