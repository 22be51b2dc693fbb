// npm run bench: Node on WASM — the tiny demo model and a random-weight model with SmolLM2-135M-Instruct's
// exact shape, at sequence length 256. Prints a table and JSON. (bench/browser.ts runs the same code in
// headless chromium on WebGPU and WASM.) `--models gemma3-270m,qwen3-0.6b` runs other real shapes instead of
// the 135M one (`--seq L --batch B --steps N` for them; default 128 × 1, 1 step). `--half-weights`: the checkpoints
// in BF16 with the linear weights kept in 16 bits (LoadOptions.halfWeights).
import os from 'node:os';
import { selectBackend, wasmFailed } from '../workers/engine/backend';
import { benchModel, formatTable, measureLimits } from '../workers/bench/bench';
import { setupNodeHost } from '../workers/node/host';
import { BENCH_SHAPES, DEMO_SPEC, SMOLLM2_135M_SHAPE } from '../workers/tiny/tiny-model';

setupNodeHost();
const backend = await selectBackend((process.argv[2] as 'wasm' | 'cpu' | undefined) ?? 'wasm');
const quick = process.argv.includes('--quick');
const halfWeights = process.argv.includes('--half-weights'); // BF16 checkpoints, linear weights kept in 16 bits
const log = (s: string) => process.stderr.write(s + '\n');
const limits1024 = await measureLimits(1024, 1024, 1024);
log(`backend ${backend.name}: 1024³ matmul ${limits1024.matmulGflops.toFixed(1)} GFLOP/s, weight read ${limits1024.readGBps.toFixed(1)} GB/s`);
const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const models = flag('--models')?.split(',');
const unknown = models?.find((m) => !BENCH_SHAPES[m]);
if (unknown) throw new Error(`--models: "${unknown}" is not one of ${Object.keys(BENCH_SHAPES).join(', ')}`);
const rows = [await benchModel({ ...DEMO_SPEC, maxPositions: 512 }, { seqLen: 256, batch: 4, trainSteps: 5, decodeTokens: 64, log })];
if (models) {
  const opts = { seqLen: Number(flag('--seq') ?? 128), batch: Number(flag('--batch') ?? 1), trainSteps: Number(flag('--steps') ?? 1), decodeTokens: 16, log, halfWeights };
  for (const m of models) {
    try {
      rows.push(await benchModel(BENCH_SHAPES[m], opts));
    } catch (e) {
      log(`${m}: did not run: ${(e as Error).message}`); // e.g. its float32 weights do not fit WASM's heap
    }
    if (wasmFailed()) {
      log('the WASM heap ran out: the shapes after this one need a run of their own');
      break;
    }
  }
} else if (!quick) rows.push(await benchModel(SMOLLM2_135M_SHAPE, { seqLen: 256, batch: 4, trainSteps: 3, decodeTokens: 16, log, halfWeights }));
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
console.log(`\n${machine}; ${new Date().toISOString().slice(0, 10)}\n`);
console.log(formatTable(rows));
console.log('\n' + JSON.stringify({ machine, host: 'node', backend: backend.name, matmul1024Gflops: limits1024.matmulGflops, readGBps: limits1024.readGBps, rows }));
