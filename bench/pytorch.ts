// npm run bench:pytorch [-- --steps N --weights f32,int8 --rounds K]: webtune on WASM (Node) against PyTorch on the CPU at
// the same thread counts, in one run: the 135M shape, LoRA r8 on all seven modules, 128 × 4 tokens a step, then
// greedy decoding after a 16-token prompt. PyTorch runs bench/pytorch.py (float32 weights; its own plain Llama) with
// the system's python3 and torch: Debian's `apt-get install python3-torch libopenblas0-openmp` (then the OpenMP
// OpenBLAS chosen with update-alternatives, so torch's threads and the BLAS's are one pool: the pthread build and
// OpenMP together ran two threads slower than one here). For each thread count (1, then all cores), PyTorch's run and
// webtune's alternate; each side's own 1024³ matmul rate is printed beside it. Prints a table and one JSON line.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import type { ModelBench } from '../workers/bench/bench';

const flag = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const steps = flag('--steps', '2');
const formats = flag('--weights', 'f32,int8');
const rounds = Math.max(1, Number(flag('--rounds', '1')) || 1);
const cores = os.availableParallelism();
const counts = [...new Set([1, cores])];

const PYTHONS = ['/usr/bin/python3', 'python3'];
const python = PYTHONS.find((p) => {
  try {
    execFileSync(p, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!python) {
  console.error('bench:pytorch needs a python3 with torch: on Debian, `apt-get install python3-torch libopenblas0-openmp`.');
  process.exit(1);
}

interface Torch { trainTokensPerSecond: number; decodeTokensPerSecond: number; matmul1024Gflops: number; blas: string; torch: string }
/** What bench/run.ts prints of each model row (its JSON line). */
type Row = Pick<ModelBench, 'model' | 'weights' | 'trainTokensPerSecond' | 'decodeTokensPerSecond'>;
interface Web { matmul1024Gflops: number; rows: Row[] }

const torchRun = (threads: number): Torch => {
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const out = execFileSync(python, ['bench/pytorch.py', '--threads', String(threads), '--steps', steps], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop()!) as Torch;
};
const webRun = (threads: number): Web => {
  const args = ['scripts/node-run.mjs', 'bench/run.ts', 'wasm', '--models', 'smollm2-135m', '--seq', '128', '--batch', '4', '--steps', steps, '--weights', formats, '--threads', String(threads)];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  const json = JSON.parse(out.trim().split('\n').pop()!) as Web;
  return { ...json, rows: json.rows.filter((r) => r.model !== 'webtune-demo') };
};

const results: { round: number; threads: number; torch: Torch; web: Web }[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const threads of counts) {
    process.stderr.write(`round ${round}, ${threads} thread(s): PyTorch\n`);
    const torch = torchRun(threads);
    process.stderr.write(`round ${round}, ${threads} thread(s): webtune\n`);
    results.push({ round, threads, torch, web: webRun(threads) });
  }
}

const f = (v: number | null, d = 1) => (v === null ? '—' : v.toFixed(d));
const first = results[0].torch;
console.log(`\n${os.cpus()[0]?.model ?? 'unknown CPU'} × ${cores}, Node ${process.version}; PyTorch ${first.torch} with ${first.blas}\n`);
console.log('| round | threads | 1024³ matmul GFLOP/s, PyTorch / webtune | webtune weights | train tok/s, PyTorch (f32) | webtune | ratio | decode tok/s, PyTorch (f32) | webtune | ratio |');
console.log('|' + ' --- |'.repeat(10));
for (const { round, threads, torch, web } of results) {
  for (const r of web.rows) {
    const train = r.trainTokensPerSecond === null ? null : r.trainTokensPerSecond / torch.trainTokensPerSecond;
    console.log(`| ${round} | ${threads} | ${f(torch.matmul1024Gflops)} / ${f(web.matmul1024Gflops)} | ${r.weights} | ${f(torch.trainTokensPerSecond)} | ${f(r.trainTokensPerSecond)} | ${f(train, 2)}× | ${f(torch.decodeTokensPerSecond)} | ${f(r.decodeTokensPerSecond)} | ${f(r.decodeTokensPerSecond / torch.decodeTokensPerSecond, 2)}× |`);
  }
}
console.log('\n' + JSON.stringify({ host: 'node', cores, steps: Number(steps), results }));
