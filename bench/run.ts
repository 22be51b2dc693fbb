// npm run bench: Node on WASM — the tiny demo model and a random-weight model with SmolLM2-135M-Instruct's
// exact shape, at sequence length 256. Prints a table and JSON. (bench/browser.ts runs the same code in
// headless chromium on WebGPU and WASM.) `--models gemma3-270m,qwen3-0.6b` runs other real shapes instead of
// the 135M one (`--seq L --batch B --steps N` for them; default 128 × 1, 1 step; `--context N`: decode after a prompt of N
// tokens, default 16). `--weights f32,16bit,int8,int4`:
// each model once per format (a packed format reads a BF16 checkpoint), with its quality next to float32's.
import os from 'node:os';
import { WEIGHT_FORMATS, type WeightFormat } from '../workers/shared/weights';
import { selectBackend, setWasmThreads, wasmFailed } from '../workers/engine/backend';
import { benchModel, formatTable, measureLimits, qualityVsF32 } from '../workers/bench/bench';
import { setupNodeHost } from '../workers/node/host';
import { BENCH_SHAPES, DEMO_SPEC, SMOLLM2_135M_SHAPE } from '../workers/tiny/tiny-model';

const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
setupNodeHost();
if (flag('--threads')) setWasmThreads(Number(flag('--threads')));
const backend = await selectBackend((process.argv[2] as 'wasm' | 'cpu' | undefined) ?? 'wasm');
const quick = process.argv.includes('--quick');
const log = (s: string) => process.stderr.write(s + '\n');
const limits1024 = await measureLimits(1024, 1024, 1024);
log(`backend ${backend.name}${backend.threads ? ` on ${backend.threads} thread(s)` : ''}: 1024³ matmul ${limits1024.matmulGflops.toFixed(1)} GFLOP/s, weight read ${limits1024.readGBps.toFixed(1)} GB/s`);
const models = flag('--models')?.split(',');
const formats = (flag('--weights') ?? 'f32').split(',') as WeightFormat[];
const badFormat = formats.find((f) => !(WEIGHT_FORMATS as readonly string[]).includes(f));
if (badFormat) throw new Error(`--weights: "${badFormat}" is not one of ${WEIGHT_FORMATS.join(', ')}`);
const unknown = models?.find((m) => !BENCH_SHAPES[m]);
if (unknown) throw new Error(`--models: "${unknown}" is not one of ${Object.keys(BENCH_SHAPES).join(', ')}`);
const rows = [await benchModel({ ...DEMO_SPEC, maxPositions: 512 }, { seqLen: 256, batch: 4, trainSteps: 5, decodeTokens: 64, log })];
if (models) {
  const opts = { seqLen: Number(flag('--seq') ?? 128), batch: Number(flag('--batch') ?? 1), trainSteps: Number(flag('--steps') ?? 1), decodeTokens: 16, context: Number(flag('--context') ?? 16), log };
  outer: for (const m of models) {
    for (const weights of formats) {
      try {
        rows.push(await benchModel(BENCH_SHAPES[m], { ...opts, weights }));
      } catch (e) {
        log(`${m} (${weights}): did not run: ${(e as Error).message}`); // e.g. its float32 weights do not fit WASM's heap
      }
      if (wasmFailed()) {
        log('the WASM heap ran out: the runs after this one need a process of their own');
        break outer;
      }
    }
  }
} else if (!quick) for (const weights of formats) rows.push(await benchModel(SMOLLM2_135M_SHAPE, { seqLen: 256, batch: 4, trainSteps: 3, decodeTokens: 16, log, weights }));
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
console.log(`\n${machine}; WASM on ${backend.threads ?? 1} thread(s); ${new Date().toISOString().slice(0, 10)}\n`);
console.log(formatTable(rows));
const json = rows.map(({ lastLogits: _, ...r }) => ({ ...r, qualityVsF32: qualityVsF32({ ...r, lastLogits: _ }, rows) }));
console.log('\n' + JSON.stringify({ machine, host: 'node', backend: backend.name, threads: backend.threads ?? 1, matmul1024Gflops: limits1024.matmulGflops, readGBps: limits1024.readGBps, rows: json }));
