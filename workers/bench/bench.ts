// Benchmarks, host-agnostic (Node and the browser worker run the same code). Every model figure is put
// next to the same backend's own limits measured in the same run: matmul FLOP/s and copy bandwidth.
import * as tf from '../engine/tf';
import { parameterCount } from '../engine/config';
import { loadModel, vocabBlockBytesFor } from '../engine/load';
import { canDequantize } from '../engine/ops/dequantize';
import type { WeightFormat } from '../shared/weights';
import { LoraAdapter, DEFAULT_LORA } from '../engine/lora';
import { generateIds } from '../engine/generate';
import { wasmFailed } from '../engine/backend';
import { MemoryModelFiles } from '../engine/source';
import { DEFAULT_TRAIN } from '../engine/train/config';
import { Trainer } from '../engine/train/trainer';
import type { TokenizedExample } from '../engine/train/examples';
import { makeModelFiles, type TinySpec } from '../tiny/tiny-model';
import { countsBetween, type GpuCounter, type GpuCounts } from './gpu-counts';

export interface BackendLimits {
  matmulGflops: number; // best of plain [M,K]×[K,N] at the model's training shape: the backend's fast path
  readGBps: number; // weight bytes per second of a [1,K]×[K,N] product: reading a weight matrix once
}

export interface ModelBench {
  model: string;
  backend: string;
  parameters: number;
  seqLen: number;
  batch: number;
  trainTokensPerSecond: number | null; // null when training did not run (trainError says why)
  trainUtilization: number | null; // (4 × parameters × tokens/s) ÷ matmul FLOP/s
  trainError?: string;
  decodeTokensPerSecond: number;
  decodeLimitTokensPerSecond: number; // weight read rate ÷ bytes of weights read per token
  decodeFraction: number;
  peakTrainBytes: number | null; // tf.memory high-water mark during one training step
  weightBytes: number;
  weights: WeightFormat; // how the frozen weights were held
  /** The base model's mean loss on fixed random sequences (no adapter), and its logits at their last position: a
   * packed format's quality is read against the float32 row of the same model (bench/run.ts). */
  baseLoss: number;
  lastLogits: number[];
  limits: BackendLimits;
  /** WebGPU, when a counter is given: the device's work per training step and per decoded token. */
  gpu?: { layers: number; step: GpuCounts | null; token: GpuCounts; tokenAdapted: GpuCounts };
}

/** Mean next-token loss of the base on `ids` [T], and the logits at the last position. */
async function baseQuality(model: Awaited<ReturnType<typeof loadModel>>['model'], ids: number[]): Promise<{ loss: number; last: number[] }> {
  const [loss, last] = tf.tidy(() => {
    const T = ids.length;
    const logits = model.logits(model.forward(tf.tensor2d(ids, [1, T], 'int32'))).reshape([T, -1]) as tf.Tensor2D; // [T, V]
    const V = logits.shape[1];
    const lse = tf.logSumExp(logits.slice([0, 0], [T - 1, V]), 1); // [T-1]
    const at = tf.tensor1d(ids.slice(1).map((t, i) => i * V + t), 'int32');
    const picked = tf.gather(logits.reshape([-1]), at);
    return [tf.mean(tf.sub(lse, picked)), logits.slice([T - 1, 0], [1, V])];
  });
  const out = { loss: (await loss.data())[0], last: Array.from(await last.data()) };
  tf.dispose([loss, last]);
  return out;
}

async function time(f: () => tf.Tensor, reps: number): Promise<number> {
  const warm = f();
  await warm.data();
  warm.dispose();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = f();
    await r.data();
    best = Math.min(best, performance.now() - t0);
    r.dispose();
  }
  return best / 1000;
}

export async function measureLimits(m: number, k: number, n: number, readK = 576, readN = 49152): Promise<BackendLimits> {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const mm = await time(() => tf.matMul(a, b), 5);
  const x = tf.randomNormal([1, readK]);
  const w = tf.randomNormal([readK, readN]);
  const read = await time(() => tf.matMul(x, w), 5);
  tf.dispose([a, b, x, w]);
  return { matmulGflops: (2 * m * k * n) / mm / 1e9, readGBps: (4 * readK * readN) / read / 1e9 };
}

function randomExamples(n: number, len: number, vocab: number, seed: number): TokenizedExample[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0) % vocab;
  return Array.from({ length: n }, () => {
    const ids = Array.from({ length: len + 1 }, next);
    const trained = new Uint8Array(len + 1).fill(1);
    trained[0] = 0;
    return { ids, trained, truncated: 0 };
  });
}

/** `weights`: how the frozen weights are held; a packed format reads a BF16 checkpoint (as the real models ship). */
/** `context`: the prompt's length before decoding (default 16); decoding then attends over that many positions and more. */
export async function benchModel(spec: TinySpec, opts: { seqLen: number; batch: number; trainSteps: number; decodeTokens: number; context?: number; log?: (s: string) => void; weights?: WeightFormat; gpu?: GpuCounter }): Promise<ModelBench> {
  const log = opts.log ?? (() => {});
  const weights = opts.weights && opts.weights !== 'f32' && canDequantize() ? opts.weights : 'f32';
  log(`${spec.name}: generating random weights${weights !== 'f32' ? ` (BF16, held as ${weights})` : ''}`);
  const files = new MemoryModelFiles(makeModelFiles(weights !== 'f32' ? { ...spec, dtype: 'BF16' } : spec, 7), spec.name);
  const loaded = await loadModel(files, undefined, vocabBlockBytesFor(tf.getBackend()), undefined, weights);
  const { model, config } = loaded;
  const params = parameterCount(config);
  // The limits are measured before and again after the model work, and the better of each is kept: a
  // limit caught in a slow moment would flatter the ratios.
  const shape = [opts.batch * opts.seqLen, config.hiddenSize, config.intermediateSize] as const;
  const limits = await measureLimits(...shape);
  log(`${spec.name}: matmul ${limits.matmulGflops.toFixed(1)} GFLOP/s, weight read ${limits.readGBps.toFixed(1)} GB/s`);

  // Decoding with the KV cache (no adapter), greedy, after a prompt (short by default).
  const prompt = randomExamples(1, opts.context ?? 16, config.vocabSize, 5)[0].ids;
  // Per decoded token, the device's work is the difference between this run and the short one (the prefill cancels).
  const decodeRuns = async (adapter: LoraAdapter | null) => {
    const c0 = opts.gpu?.snapshot();
    const short = await generateIds(model, prompt, [], { maxNewTokens: 4 }, () => {}, () => false, adapter);
    const c1 = opts.gpu?.snapshot();
    const long = await generateIds(model, prompt, [], { maxNewTokens: opts.decodeTokens }, () => {}, () => false, adapter);
    const c2 = opts.gpu?.snapshot();
    return { long, perToken: c0 && c1 && c2 ? countsBetween(countsBetween(c0, c1), countsBetween(c1, c2), long.ids.length - short.ids.length) : null };
  };
  const { long: r, perToken } = await decodeRuns(null);
  // Tokens/s: the median of three runs (a single run's spread on a shared host is ±20%).
  const rates = [(r.ids.length - 1) / (r.decodeMs / 1000)];
  for (let i = 0; i < 2; i++) {
    const again = await generateIds(model, prompt, [], { maxNewTokens: opts.decodeTokens }, () => {}, () => false, null);
    rates.push((again.ids.length - 1) / (again.decodeMs / 1000));
  }
  const decodeTps = rates.sort((a, b) => a - b)[1];
  const weightBytes = model.weightBytes; // as held: 4 bytes a value in float32, fewer packed
  log(`${spec.name}: decode ${decodeTps.toFixed(1)} tokens/s`);
  const quality = await baseQuality(model, randomExamples(1, 64, config.vocabSize, 21)[0].ids);
  log(`${spec.name}: base loss ${quality.loss.toFixed(4)} on 64 fixed random tokens`);

  // Training: the full LoRA step (forward, backward, AdamW) on random tokens of exactly seqLen.
  let trainTps: number | null = null;
  let peak: number | null = null;
  let trainError: string | undefined;
  let heapGone = false;
  let perStep: GpuCounts | null = null;
  const adapter = LoraAdapter.create(config, { ...DEFAULT_LORA, dropout: 0 }, 1);
  // The device's work per token of the tuned model too (the chat's side-by-side decodes both).
  const perTokenAdapted = opts.gpu ? (await decodeRuns(adapter)).perToken : null;
  const cfg = { ...DEFAULT_TRAIN, batchSize: opts.batch, maxSeqLen: opts.seqLen + 1, valSplit: 0, epochs: 1000 };
  const trainer = new Trainer(model, adapter, randomExamples(opts.batch * 4, opts.seqLen, config.vocabSize, 3), [], cfg, { runId: 'bench', baseModel: spec.name });
  try {
    const before = tf.memory().numBytes;
    const profile = await tf.profile(async () => {
      const { metrics } = trainer.trainStep(0); // warm-up, and the memory high-water mark
      await metrics.data();
      metrics.dispose();
    });
    peak = Math.max(profile.peakBytes, before);
    const t0 = performance.now();
    const s0 = opts.gpu?.snapshot();
    for (let s = 1; s <= opts.trainSteps; s++) {
      const { metrics } = trainer.trainStep(s);
      await metrics.data();
      metrics.dispose();
      log(`${spec.name}: train step ${s}/${opts.trainSteps}`);
    }
    trainTps = (opts.trainSteps * opts.batch * opts.seqLen) / ((performance.now() - t0) / 1000);
    const s1 = opts.gpu?.snapshot();
    if (s0 && s1) perStep = countsBetween(s0, s1, opts.trainSteps);
  } catch (e) {
    trainError = (e as Error).message || String(e);
    log(`${spec.name}: training failed: ${trainError}`);
    // The heap gone with the model in it: report what was measured; nothing more can run in this process.
    heapGone = wasmFailed();
    if (heapGone) trainError = `WASM heap exhausted (4 GB at most): ${trainError}`;
  }
  if (!heapGone) {
    trainer.dispose();
    const again = await measureLimits(...shape);
    limits.matmulGflops = Math.max(limits.matmulGflops, again.matmulGflops);
    limits.readGBps = Math.max(limits.readGBps, again.readGBps);
    log(`${spec.name}: limits again: matmul ${again.matmulGflops.toFixed(1)} GFLOP/s, weight read ${again.readGBps.toFixed(1)} GB/s`);
    adapter.dispose();
    model.dispose();
  }
  const decodeLimit = (limits.readGBps * 1e9) / weightBytes; // reading each weight once per token
  return {
    model: spec.name,
    backend: tf.getBackend(),
    parameters: params,
    seqLen: opts.seqLen,
    batch: opts.batch,
    trainTokensPerSecond: trainTps,
    trainUtilization: trainTps === null ? null : (4 * params * trainTps) / (limits.matmulGflops * 1e9),
    trainError,
    decodeTokensPerSecond: decodeTps,
    decodeLimitTokensPerSecond: decodeLimit,
    decodeFraction: decodeTps / decodeLimit,
    peakTrainBytes: peak,
    weightBytes,
    weights,
    baseLoss: quality.loss,
    lastLogits: quality.last,
    limits,
    ...(perToken && perTokenAdapted ? { gpu: { layers: config.numLayers, step: perStep, token: perToken, tokenAdapted: perTokenAdapted } } : {}),
  };
}

/** The device's work per training step and per decoded token, in total and per layer. */
export function formatGpuTable(rows: ModelBench[]): string {
  const cell = (c: GpuCounts | null, layers: number) =>
    c === null ? 'did not run | | | |' : `${c.dispatches.toFixed(0)} (${(c.dispatches / layers).toFixed(1)}) | ${c.submits.toFixed(1)} | ${c.buffers.toFixed(1)} (${(c.bufferBytes / 2 ** 20).toFixed(1)} MiB) | ${c.reads.toFixed(1)}`;
  return [
    '| model | weights | seq×batch | step: dispatches (per layer) | submits | new buffers | GPU→CPU reads | token: dispatches (per layer) | submits | new buffers | GPU→CPU reads | token with the adapter: dispatches (per layer) | submits | new buffers | GPU→CPU reads |',
    '|' + ' --- |'.repeat(15),
    ...rows.filter((r) => r.gpu).map((r) => `| ${r.model} | ${r.weights} | ${r.seqLen}×${r.batch} | ${cell(r.gpu!.step, r.gpu!.layers)} | ${cell(r.gpu!.token, r.gpu!.layers)} | ${cell(r.gpu!.tokenAdapted, r.gpu!.layers)} |`),
  ].join('\n');
}

/** A packed row's quality against the float32 row of the same model in the same run: the base loss's relative
 * change and the RMS of the last position's logit change over the logits' RMS. Null without a float32 row. */
export function qualityVsF32(r: ModelBench, rows: ModelBench[]): { loss: number; logits: number } | null {
  const ref = rows.find((x) => x.model === r.model && x.weights === 'f32');
  if (!ref || ref === r) return null;
  const rms = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
  return { loss: (r.baseLoss - ref.baseLoss) / ref.baseLoss, logits: rms(r.lastLogits.map((x, i) => x - ref.lastLogits[i])) / rms(ref.lastLogits) };
}

export function formatTable(rows: ModelBench[]): string {
  const head = '| model | backend | weights | params | seq×batch | matmul GFLOP/s | train tok/s | FLOPs util. | weight read GB/s | decode tok/s | decode limit | fraction | peak train memory | weights held | bytes/param | base loss vs f32 | logits vs f32 |';
  const sep = '|' + ' --- |'.repeat(17);
  const mb = (b: number | null) => (b === null ? '—' : `${(b / 2 ** 20).toFixed(0)} MiB`);
  const f = (v: number | null, d = 1) => (v === null ? 'did not run' : v.toFixed(d));
  const pct = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)}%`;
  return [
    head,
    sep,
    ...rows.map((r) => {
      const q = qualityVsF32(r, rows);
      return `| ${r.model} | ${r.backend} | ${r.weights} | ${(r.parameters / 1e6).toFixed(2)}M | ${r.seqLen}×${r.batch} | ${r.limits.matmulGflops.toFixed(1)} | ${f(r.trainTokensPerSecond)} | ${r.trainUtilization === null ? '—' : (100 * r.trainUtilization).toFixed(1) + '%'} | ${r.limits.readGBps.toFixed(1)} | ${r.decodeTokensPerSecond.toFixed(1)} | ${r.decodeLimitTokensPerSecond.toFixed(1)} | ${(100 * r.decodeFraction).toFixed(0)}% | ${mb(r.peakTrainBytes)} | ${mb(r.weightBytes)} | ${(r.weightBytes / r.parameters).toFixed(3)} | ${q ? pct(q.loss) : '—'} | ${q ? (100 * q.logits).toFixed(2) + '%' : '—'} |`;
    }),
  ].join('\n');
}
