// npm run bench:threads [-- <bench options>]: WASM in Node on one thread and on all, next to the machine's own
// parallel limit, all in one run. The limit is measured as the threads are used: the same plain single-threaded JS
// product (192³, float32) in one worker thread alone, then in one per logical core at once; the ratio of their total
// rates is what the cores give together (on a shared virtual machine often less than their count). The benchmark
// itself (bench/run.ts, given the options after --) runs twice, each in a process of its own, since the thread count
// is fixed when the backend starts: --threads 1, then --threads <cores>. `--rounds K` repeats the whole comparison,
// each round against its own limit, and gives the median round. Prints a table and one JSON line.
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
// --rounds K (default 1): the whole comparison K times over, each round with its own limit. On a shared machine whose
// speed drifts over minutes, a round's ratios are read against the limit measured beside them, and the median round
// is the figure.
const roundsAt = process.argv.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Math.max(1, Number(process.argv[roundsAt + 1]) || 1) : 1;
const benchArgs = process.argv.slice(2).filter((_, i, a) => a[i] !== '--rounds' && a[i - 1] !== '--rounds');

/** The cores' limit: alone before and after (the better kept: a rate caught in a slow moment would flatter the ratio); together twice. */
async function parallelLimit(): Promise<Round['parallelLimit']> {
  const alone1 = await together(1);
  const all = Math.max(await together(cores), await together(cores));
  const alone = Math.max(alone1, await together(1));
  process.stderr.write(`parallel limit: ${alone.toFixed(2)} GFLOP/s alone, ${all.toFixed(2)} on ${cores} cores at once: ${(all / alone).toFixed(2)}×\n`);
  return { alone, together: all, ratio: all / alone };
}

interface Row { model: string; weights: string; trainTokensPerSecond: number | null; decodeTokensPerSecond: number }
const run = (threads: number): Row[] => {
  const out = execFileSync(process.execPath, ['scripts/node-run.mjs', 'bench/run.ts', 'wasm', ...benchArgs, '--threads', String(threads)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  return JSON.parse(out.trim().split('\n').pop()!).rows as Row[];
};
const ratio = (a: number | null, b: number | null) => (a && b ? b / a : null);
/** A speed-up's share of the limit's own gain: (speed-up − 1) / (limit − 1). */
const ofGain = (v: number | null, limit: number) => (v === null ? null : (v - 1) / (limit - 1));

interface Round {
  parallelLimit: { alone: number; together: number; ratio: number };
  rows: { model: string; weights: string; train1: number | null; trainN: number | null; train: number | null; trainOfGain: number | null; decode1: number; decodeN: number; decode: number | null; decodeOfGain: number | null }[];
}
const measured: Round[] = [];
for (let k = 0; k < rounds; k++) {
  const limit = await parallelLimit();
  const one = run(1);
  const many = run(cores);
  const rows = one.map((r, i) => {
    const m = many[i];
    const [train, decode] = [ratio(r.trainTokensPerSecond, m.trainTokensPerSecond), ratio(r.decodeTokensPerSecond, m.decodeTokensPerSecond)];
    return { model: r.model, weights: r.weights, train1: r.trainTokensPerSecond, trainN: m.trainTokensPerSecond, train, trainOfGain: ofGain(train, limit.ratio), decode1: r.decodeTokensPerSecond, decodeN: m.decodeTokensPerSecond, decode, decodeOfGain: ofGain(decode, limit.ratio) };
  });
  measured.push({ parallelLimit: limit, rows });
}

const f = (v: number | null, d = 1) => (v === null ? '—' : v.toFixed(d));
const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(0)}%`);
const median = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
};
console.log(`\n${os.cpus()[0]?.model ?? 'unknown CPU'} × ${cores}, Node ${process.version}; ${rounds} round(s)\n`);
console.log(`| round | parallel limit | model | weights | train tok/s, 1 thread | ${cores} threads | speed-up | of the limit's gain | decode tok/s, 1 thread | ${cores} threads | speed-up | of the limit's gain |`);
console.log('|' + ' --- |'.repeat(12));
measured.forEach(({ parallelLimit: p, rows }, k) => {
  for (const r of rows) console.log(`| ${k + 1} | ${p.ratio.toFixed(2)}× | ${r.model} | ${r.weights} | ${f(r.train1)} | ${f(r.trainN)} | ${f(r.train, 2)}× | ${pct(r.trainOfGain)} | ${f(r.decode1)} | ${f(r.decodeN)} | ${f(r.decode, 2)}× | ${pct(r.decodeOfGain)} |`);
});
const summary = measured[0].rows.map((r, i) => ({
  model: r.model,
  weights: r.weights,
  trainOfGain: median(measured.map((m) => m.rows[i].trainOfGain)),
  decodeOfGain: median(measured.map((m) => m.rows[i].decodeOfGain)),
}));
if (rounds > 1) {
  console.log(`\nMedian over the rounds, each read against its own limit (median ${median(measured.map((m) => m.parallelLimit.ratio))!.toFixed(2)}×):`);
  for (const r of summary) console.log(`- ${r.model} ${r.weights}: training ${pct(r.trainOfGain)} of the limit's gain, decode ${pct(r.decodeOfGain)}`);
}
console.log('\n' + JSON.stringify({ host: 'node', cores, rounds: measured, summary }));
