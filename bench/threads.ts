// npm run bench:threads [-- <bench options>]: WASM in Node on one thread and on all, next to the machine's own
// parallel limit, all in one run. The limit is measured as the threads are used: the same plain single-threaded JS
// product (192³, float32) in one worker thread alone, then in one per logical core at once; the ratio of their total
// rates is what the cores give together (on a shared virtual machine often less than their count). The benchmark
// itself (bench/run.ts, given the options after --) runs twice, each in a process of its own, since the thread count
// is fixed when the backend starts: --threads 1, then --threads <cores>. Prints a table and one JSON line.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';

const PRODUCT = `const { parentPort } = require('node:worker_threads');
  const n = 192, a = new Float32Array(n * n).fill(1.01), b = new Float32Array(n * n).fill(0.99), c = new Float32Array(n * n);
  const t0 = performance.now(); let reps = 0;
  while (performance.now() - t0 < 3000) { for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) { const x = a[i * n + k]; for (let j = 0; j < n; j++) c[i * n + j] += x * b[k * n + j]; } reps++; }
  parentPort.postMessage((reps * 2 * n * n * n) / ((performance.now() - t0) / 1000) / 1e9);`;

/** GFLOP/s of `k` workers at once, summed. */
const together = (k: number) =>
  Promise.all(Array.from({ length: k }, () => new Promise<number>((resolve, reject) => {
    const w = new Worker(PRODUCT, { eval: true });
    w.once('message', (rate: number) => void w.terminate().then(() => resolve(rate)));
    w.once('error', reject);
  }))).then((rates) => rates.reduce((a, b) => a + b, 0));

const cores = os.availableParallelism();
// Alone before and after (the better kept: a rate caught in a slow moment would flatter the ratio); together twice.
const alone1 = await together(1);
const all = Math.max(await together(cores), await together(cores));
const alone = Math.max(alone1, await together(1));
const limit = all / alone;
process.stderr.write(`parallel limit: ${alone.toFixed(2)} GFLOP/s alone, ${all.toFixed(2)} on ${cores} cores at once: ${limit.toFixed(2)}×\n`);

interface Row { model: string; weights: string; trainTokensPerSecond: number | null; decodeTokensPerSecond: number }
const run = (threads: number): Row[] => {
  const out = execFileSync(process.execPath, ['scripts/node-run.mjs', 'bench/run.ts', 'wasm', ...process.argv.slice(2), '--threads', String(threads)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  return JSON.parse(out.trim().split('\n').pop()!).rows as Row[];
};
const one = run(1);
const many = run(cores);
const ratio = (a: number | null, b: number | null) => (a && b ? b / a : null);
const rows = one.map((r, i) => {
  const m = many[i];
  const [train, decode] = [ratio(r.trainTokensPerSecond, m.trainTokensPerSecond), ratio(r.decodeTokensPerSecond, m.decodeTokensPerSecond)];
  return { model: r.model, weights: r.weights, train1: r.trainTokensPerSecond, trainN: m.trainTokensPerSecond, train, decode1: r.decodeTokensPerSecond, decodeN: m.decodeTokensPerSecond, decode };
});
const f = (v: number | null, d = 1) => (v === null ? '—' : v.toFixed(d));
const ofLimit = (v: number | null) => (v === null ? '—' : `${(100 * (v - 1) / (limit - 1)).toFixed(0)}%`);
console.log(`\n${os.cpus()[0]?.model ?? 'unknown CPU'} × ${cores}, Node ${process.version}; parallel limit ${limit.toFixed(2)}× (${alone.toFixed(2)} → ${all.toFixed(2)} GFLOP/s)\n`);
console.log(`| model | weights | train tok/s, 1 thread | ${cores} threads | speed-up | of the limit's gain | decode tok/s, 1 thread | ${cores} threads | speed-up | of the limit's gain |`);
console.log('|' + ' --- |'.repeat(10));
for (const r of rows) console.log(`| ${r.model} | ${r.weights} | ${f(r.train1)} | ${f(r.trainN)} | ${f(r.train, 2)}× | ${ofLimit(r.train)} | ${f(r.decode1)} | ${f(r.decodeN)} | ${f(r.decode, 2)}× | ${ofLimit(r.decode)} |`);
console.log('\n' + JSON.stringify({ host: 'node', cores, parallelLimit: { alone, together: all, ratio: limit }, rows }));
