// Served by the vite dev server for e2e/numerics.spec.ts (never part of the app build). Computes the training
// loss and every LoRA gradient of the demo model (or a tiny variant) on a backend, with and without activation checkpointing, so
// the test can compare WebGPU and WASM against the plain JS cpu backend in the same page.
import { selectBackend, type BackendName } from '../../workers/engine/backend';
import { configureBrowserWasm } from '../../workers/browser/wasm-urls';
import { AdamW } from '../../workers/engine/train/optimizer';
import { DEFAULT_TRAIN, validateTrain } from '../../workers/engine/train/config';
import { Engine } from '../../workers/engine/engine';
import { KVCache } from '../../workers/engine/llama';
import { LORA_TARGETS, LoraAdapter } from '../../workers/engine/lora';
import { chunkedLmLoss } from '../../workers/engine/train/lm-loss';
import * as tf from '../../workers/engine/tf';
import { PackedMatrix, PACKED_PRODUCT_MAX_ROWS } from '../../workers/engine/quant/packed-matrix';
import { simdProductForManyRows, xRoundingBound } from '../../workers/engine/ops/packed-matmul-simd';
import { simdPoolOn } from '../../workers/engine/ops/simd-pool';
import { wasmHeap } from '../../workers/engine/ops/backend-io';
import { packingFor, type PackFormat } from '../../workers/engine/quant/format';
import { f32ToF16 } from '../../workers/engine/safetensors';
import type { WeightFormat } from '../../workers/shared/weights';
import { RMS_NORM, rmsNorm, rmsNormOps } from '../../workers/engine/ops/rms-norm';
import { kernelRuns, WASM_LOOP_MAX_ELEMENTS } from '../../workers/engine/ops/webgpu-program';
import { rotaryKernel, rotaryRuns } from '../../workers/engine/ops/rotary';
import { attention, attentionOps, attentionRuns, WASM_ATTENTION_MAX_ROWS } from '../../workers/engine/ops/attention';
import { hasRowLinear, rowLinear, rowLinearOps, type RowLinearOptions } from '../../workers/engine/ops/row-linear';
import { capStorageBuffers } from '../../workers/engine/ops/row-linear-webgpu';
import { GATED_ACT, gatedAct, gatedActOps } from '../../workers/engine/ops/gated-act';
import { adamwKernels, hasFusedAdamW } from '../../workers/engine/ops/adamw';
import { lmCrossEntropy, lmCrossEntropyOps, lmCrossEntropyRuns } from '../../workers/engine/ops/lm-cross-entropy';
import { matmulStats, summedRows } from '../../workers/engine/ops/wasm-matmul';

configureBrowserWasm();

// Two sequences with padding-free targets; weights mask the prompt part as training does.
const IDS = [
  [1, 20, 77, 140, 3, 250, 99, 12, 2, 41, 7, 300],
  [1, 55, 9, 18, 200, 31, 4, 88, 2, 17, 64, 5],
];
const WEIGHTS = [0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1];

function seeded(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

export interface Result {
  loss: number;
  grads: Record<string, number[]>;
}

/** `variant`: a tiny model under .models/ (served by the dev server), or the demo model when absent;
 * `vocabBlockBytes`: split its embedding and head into row blocks of at most this size. */
async function run(backend: BackendName, checkpointing: boolean, zeroB: boolean, variant?: string, vocabBlockBytes?: number, weights: WeightFormat = 'f32'): Promise<Result> {
  const engine = new Engine({ demoBaseUrl: new URL('/models/demo', location.origin).href });
  await engine.load(variant ? { kind: 'url', url: new URL(`/.models/${variant}`, location.origin).href } : { kind: 'demo' }, { backend, vocabBlockBytes, weights });
  if (engine.info()!.weights.format !== weights) throw new Error(`${backend} held the weights as ${engine.info()!.weights.format}, not ${weights}`);
  const { model } = engine.current;
  const adapter = LoraAdapter.create(model.config, { rank: 4, alpha: 8, dropout: 0, targets: [...LORA_TARGETS], rslora: false }, 7);
  // B = 0 is every run's first step (only B gets a gradient then); a random B tests the A path too.
  adapter.variables().forEach((v, i) => {
    if (v.name.includes('lora_B') && !zeroB) v.assign(tf.tensor(seeded(v.size, 100 + i, 0.05), v.shape));
  });
  const B = IDS.length;
  const T = IDS[0].length - 1;
  const { value, grads } = tf.variableGrads(() => {
    const hidden = model.forward(tf.tensor2d(IDS.flatMap((r) => r.slice(0, -1)), [B, T], 'int32'), { adapter, checkpointing });
    const targets = Int32Array.from(IDS.flatMap((r) => r.slice(1)));
    const weights = Float32Array.from([...WEIGHTS, ...WEIGHTS]);
    return chunkedLmLoss(hidden.reshape([B * T, -1]) as tf.Tensor2D, model.head(), targets, weights, 7, model.config.finalSoftcap);
  }, adapter.variables());
  const out: Result = { loss: (await value.data())[0], grads: {} };
  for (const { name, variable } of adapter.named()) out.grads[name] = Array.from(await grads[variable.name].data());
  value.dispose();
  Object.values(grads).forEach((g) => g.dispose());
  adapter.dispose();
  engine.unload();
  return out;
}

(globalThis as unknown as { numerics: typeof run }).numerics = run;

/** Decoding with the KV cache on a backend: the logits after a 4-token prompt (one pass) and after each of 7 more
 * tokens, one at a time; with `adapted`, a random adapter on q_proj, v_proj and up_proj (the row kernel takes q and v
 * with their adapters, and the MLP's gate and up as two products); `weights`: the frozen weights held packed. */
async function decodeLogits(backend: BackendName, variant?: string, adapted = false, weights: WeightFormat = 'f32'): Promise<number[][]> {
  const engine = new Engine({ demoBaseUrl: new URL('/models/demo', location.origin).href });
  await engine.load(variant ? { kind: 'url', url: new URL(`/.models/${variant}`, location.origin).href } : { kind: 'demo' }, { backend, weights });
  if (engine.current.model.packedFormats.length === 0 && weights !== 'f32') throw new Error(`${weights} was asked for, but the weights are float32`);
  const { model } = engine.current;
  const adapter = adapted ? LoraAdapter.create(model.config, { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'up_proj'], rslora: false }, 7) : null;
  adapter?.variables().forEach((v, i) => v.name.includes('lora_B') && v.assign(tf.tensor(seeded(v.size, 200 + i, 0.05), v.shape)));
  const ids = IDS[0].slice(0, 11);
  const cache = new KVCache(model.config.numLayers, 4); // blocks of 4 positions: it grows twice, at the 5th and the 9th
  const rows: number[][] = [];
  for (const chunk of [ids.slice(0, 4), ...ids.slice(4).map((id) => [id])]) {
    const logits = tf.tidy(() => {
      const hidden = model.forward(tf.tensor2d(chunk, [1, chunk.length], 'int32'), { cache, adapter });
      return model.logits(hidden.slice([0, chunk.length - 1, 0], [1, 1, -1]).reshape([1, -1]));
    });
    rows.push(Array.from(await logits.data()));
    logits.dispose();
  }
  cache.dispose();
  adapter?.dispose();
  engine.unload();
  return rows;
}

(globalThis as unknown as { decodeLogits: typeof decodeLogits }).decodeLogits = decodeLogits;

export interface OptimizerResult {
  norms: number[];
  params: number[][];
}

/** Three AdamW steps over many small parameters (as many as a 30-layer model's LoRA pairs) from fixed gradients. */
async function optimizerSteps(backend: BackendName, count: number): Promise<OptimizerResult> {
  await selectBackend(backend);
  const params = Array.from({ length: count }, (_, i) => tf.variable(tf.tensor2d(seeded(12, 500 + i, 0.1), [3, 4])));
  const opt = new AdamW(params, validateTrain({ ...DEFAULT_TRAIN, weightDecay: 0.01, maxGradNorm: 1 }));
  const norms: number[] = [];
  for (let s = 0; s < 3; s++) {
    const grads = params.map((_, i) => tf.tensor2d(seeded(12, 900 + 31 * s + i, 1), [3, 4]));
    const norm = opt.step(grads, 0.01);
    norms.push((await norm.data())[0]);
    norm.dispose();
    grads.forEach((g) => g.dispose());
  }
  const out = { norms, params: await Promise.all(params.map(async (p) => Array.from(await p.data()))) };
  params.forEach((p) => p.dispose());
  opt.dispose();
  return out;
}

(globalThis as unknown as { optimizerSteps: typeof optimizerSteps }).optimizerSteps = optimizerSteps;

/** Every format's dequantized matrix on a backend, plain, transposed and a few rows looked up, as float32 bit patterns: bf16 and f16 from
 * all 65,536 patterns, int8 and int4 from fixed values (their rounding happens on the CPU, at load). */
async function dequantized(backend: BackendName): Promise<{ bits: Record<string, number[]>; products: Record<string, number[]>; allowed: Record<string, number[]>; helperParts: number | null }> {
  await selectBackend(backend);
  const all = new Uint16Array(65536).map((_, i) => i);
  const values = seeded(64 * 96, 77, 1);
  const out: Record<string, number[]> = {};
  const products: Record<string, number[]> = {};
  const allowed: Record<string, number[]> = {};
  for (const format of ['bf16', 'f16', 'int8', 'int4'] as PackFormat[]) {
    const m = format === 'bf16' || format === 'f16' ? PackedMatrix.fromHalves(all, 256, 256, format) : PackedMatrix.fromValues(values, 64, 96, packingFor(format, 96)!);
    for (const transpose of [false, true]) {
      const t = m.dense(transpose);
      out[`${format}${transpose ? ' transposed' : ''}`] = Array.from(new Uint32Array(((await t.data()) as Float32Array).slice().buffer));
      t.dispose();
    }
    const ids = tf.tensor1d([m.rows - 1, 0, 3, 3, 17], 'int32'); // the embedding lookup
    const rows = m.gatherRows(ids);
    out[`${format} rows`] = Array.from(new Uint32Array(((await rows.data()) as Float32Array).slice().buffer));
    tf.dispose([ids, rows]);
    m.dispose();
    // The products the model takes from packed weights, of a matrix of ordinary values (the all-patterns one holds
    // infinities and NaNs): for 1 and 3 rows, a decoded token's (PackedMatMul, straight from the packed words); for
    // 70 rows, training's (PackedGemm's tiles on WebGPU, partial tiles in every dimension; on WASM int8's from the
    // packed words in the SIMD module; elsewhere unpacked, then multiplied), and its gradient dy·W for x (the backward
    // product: on WASM int8's from the packed words too).
    const pv = seeded(100 * 96, 77, 1);
    const p = format === 'f16' ? PackedMatrix.fromHalves(Uint16Array.from(pv, f32ToF16), 100, 96, 'f16') : PackedMatrix.fromValues(pv, 100, 96, packingFor(format, 96)!);
    const dense = p.dense();
    const w = (await dense.data()) as Float32Array;
    dense.dispose();
    for (const n of [1, 3, 70]) {
      const xv = seeded(n * p.cols, 5 + n, 1);
      const x = tf.tensor2d(xv, [n, p.cols]);
      const dy = tf.tensor2d(seeded(n * p.rows, 9 + n, 1), [n, p.rows]);
      const y = p.forward(x);
      const dx = tf.grad((xIn: tf.Tensor) => tf.sum(tf.mul(p.forward(xIn as tf.Tensor2D), dy)))(x);
      products[`${format} × ${n} rows`] = Array.from(await y.data());
      products[`${format} × ${n} rows, gradient`] = Array.from(await dx.data());
      // WASM's few-row product rounds x to int16 (int8, int4), and int8's at any row count: the most that moves each result.
      const rounds = n <= PACKED_PRODUCT_MAX_ROWS || simdProductForManyRows(p.packing, p.cols);
      allowed[`${format} × ${n} rows`] = rounds ? Array.from(xRoundingBound(format, xv, n, w, p.rows, p.cols)) : new Array(n * p.rows).fill(0);
      allowed[`${format} × ${n} rows, gradient`] = new Array(n * p.cols).fill(0);
      tf.dispose([x, dy, y, dx]);
    }
    p.dispose();
  }
  // A decoded token's product large enough to be split across the SIMD module's helper threads (ops/simd-pool.ts),
  // where WASM runs threaded (this page is cross-origin isolated): repeated until a helper has run a part of it.
  const pool = backend === 'wasm' ? simdPoolOn(wasmHeap(tf.backend())!.memory) : null;
  for (let i = 0; pool && !pool.ready && i < 1000; i++) await new Promise((r) => setTimeout(r, 10));
  for (const format of ['int8', 'int4', 'bf16'] as PackFormat[]) {
    const [R, K] = [150, 256];
    const pv = seeded(R * K, 31, 1);
    const p = PackedMatrix.fromValues(pv, R, K, packingFor(format, K)!);
    const dense = p.dense();
    const w = (await dense.data()) as Float32Array;
    dense.dispose();
    for (const n of [1, 3]) {
      const xv = seeded(n * K, 40 + n, 1);
      const x = tf.tensor2d(xv, [n, K]);
      const before = pool?.stats.helperParts ?? 0;
      let y = p.forward(x);
      for (let i = 0; pool && pool.stats.helperParts === before && i < 200; i++) {
        y.dispose();
        y = p.forward(x);
      }
      products[`${format} × ${n} rows, ${R * K} weights`] = Array.from(await y.data());
      allowed[`${format} × ${n} rows, ${R * K} weights`] = Array.from(xRoundingBound(format, xv, n, w, R, K));
      tf.dispose([x, y]);
    }
    p.dispose();
  }
  return { bits: out, products, allowed, helperParts: pool ? pool.stats.helperParts : null };
}

(globalThis as unknown as { dequantized: typeof dequantized }).dequantized = dequantized;

export interface FusedCheck {
  name: string;
  fused: boolean; // the kernel ran (WebGPU; WASM's plain loops for few values), not tfjs's ops
  loop: boolean; // the op has a plain-loop kernel on WASM at this size (RMSNorm, rotary, gated activation)
  forward: number; // worst |fused − ops| over the ops' largest |value|
  gradient: number; // the same for the gradient of Σ(y · dy) with respect to x
}

/** Each fused kernel against the tfjs ops it replaces, on one backend: its output and its gradient, over shapes
 * that leave workgroup lanes idle, rows past one dispatch dimension (70,000), Gemma's (1 + w), decode offsets, and
 * both activations of the gated MLP out to their tails. */
async function fusedKernels(backend: BackendName): Promise<FusedCheck[]> {
  await selectBackend(backend);
  const out: FusedCheck[] = [];
  // max |a − b| relative to max |b|
  const worst = async (a: tf.Tensor, b: tf.Tensor) => {
    const [av, bv] = [(await a.data()) as Float32Array, (await b.data()) as Float32Array];
    let err = 0;
    let scale = 1e-12;
    for (let i = 0; i < bv.length; i++) {
      err = Math.max(err, Math.abs(av[i] - bv[i]));
      scale = Math.max(scale, Math.abs(bv[i]));
    }
    return err / scale;
  };
  const compare = async (name: string, fused: boolean, x: tf.Tensor, kernel: (t: tf.Tensor) => tf.Tensor, ops: (t: tf.Tensor) => tf.Tensor, loop = false) => {
    const shape = tf.tidy(() => ops(x).shape); // the output's, which dy takes (attention merges the heads)
    const dy = tf.tensor(seeded(tf.util.sizeFromShape(shape), 9, 1), shape);
    const both = (fn: (t: tf.Tensor) => tf.Tensor) => tf.tidy(() => [fn(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fn(t), dy)))(x)]);
    const [y1, g1] = both(kernel);
    const [y0, g0] = both(ops);
    out.push({ name, fused, loop, forward: await worst(y1, y0), gradient: await worst(g1, g0) });
    tf.dispose([dy, y1, g1, y0, g0, x]);
  };
  for (const [rows, C, offset] of [[1, 576, 0], [7, 64, 1], [300, 100, 0], [3, 5, 1], [70000, 8, 0]]) {
    const w = tf.tensor1d(seeded(C, 3 + C, 0.5));
    const x = tf.tensor2d(seeded(rows * C, rows + C, 2), [rows, C]);
    await compare(`RMSNorm ${rows}×${C}${offset ? ' (1 + w)' : ''}`, kernelRuns(RMS_NORM, x.size), x, (t) => rmsNorm(t, w, 1e-6, offset), (t) => rmsNormOps(t, w, 1e-6, offset), x.size <= WASM_LOOP_MAX_ELEMENTS);
    w.dispose();
  }
  for (const [B, n, T, D, offset] of [[2, 3, 5, 8, 0], [1, 2, 1, 64, 37], [1, 9, 40, 64, 0]]) {
    const L = offset + T + 3;
    const angles = (f: (a: number) => number) => tf.tensor2d(Float32Array.from({ length: L * D }, (_, i) => f(Math.floor(i / D) * 0.1 * (1 + ((i % D) % (D / 2))))), [L, D]);
    const [cos, sin] = [angles(Math.cos), angles(Math.sin)];
    const rot = tf.tensor2d(Float32Array.from({ length: D * D }, (_, i) => { const [r, c] = [Math.floor(i / D), i % D]; return r === c + D / 2 ? -1 : c === r + D / 2 ? 1 : 0; }), [D, D]);
    const at = (table: tf.Tensor2D) => table.slice([offset, 0], [T, D]).reshape([T, 1, D]); // x is [B, T, n, D]
    const ops = (t: tf.Tensor) => tf.add(tf.mul(t, at(cos)), tf.mul(tf.matMul(t.reshape([-1, D]), rot).reshape(t.shape), at(sin)));
    const x = tf.tensor4d(seeded(B * n * T * D, B + T + D, 1), [B, T, n, D]);
    await compare(`rotary ${B}×${T}×${n}×${D} at ${offset}`, rotaryRuns(x), x, (t) => (rotaryRuns(t) ? rotaryKernel(t as tf.Tensor4D, cos, sin, offset) : ops(t)), ops, x.size <= WASM_LOOP_MAX_ELEMENTS);
    tf.dispose([cos, sin, rot]);
  }
  // Attention: decoding one token (grouped heads) and a training block, a window with Gemma 2's cap over more keys
  // than one chunk of 64, Gemma 3's head size 256, and a decoded token whose window starts mid-chunk; the output
  // and the gradient for each of q, k and v.
  for (const [B, T, S, H, KVH, D, window, softcap] of [[1, 1, 37, 9, 3, 64, 0, 0], [2, 40, 40, 4, 2, 32, 0, 0], [1, 70, 70, 2, 2, 16, 20, 50], [1, 2, 130, 2, 1, 256, 0, 0], [1, 1, 150, 4, 2, 64, 64, 0]]) {
    const attrs = { scale: 1 / Math.sqrt(D), softcap, window };
    const q = tf.tensor4d(seeded(B * T * H * D, 41 + T, 2), [B, T, H, D]);
    const k = tf.tensor4d(seeded(B * S * KVH * D, 43 + S, 2), [B, S, KVH, D]);
    const v = tf.tensor4d(seeded(B * S * KVH * D, 47 + S, 1), [B, S, KVH, D]);
    const name = `attention ${B}×${T}×${H}×${D} over ${S} keys (${KVH} kv heads${window ? `, window ${window}` : ''}${softcap ? `, cap ${softcap}` : ''})`;
    const as4 = (t: tf.Tensor) => t as tf.Tensor4D;
    const [runs, loop] = [attentionRuns(q), B * T <= WASM_ATTENTION_MAX_ROWS];
    await compare(`${name}, d q`, runs, q.clone(), (t) => attention(as4(t), k, v, attrs), (t) => attentionOps(as4(t), k, v, attrs), loop);
    await compare(`${name}, d k`, runs, k.clone(), (t) => attention(q, as4(t), v, attrs), (t) => attentionOps(q, as4(t), v, attrs), loop);
    await compare(`${name}, d v`, runs, v.clone(), (t) => attention(q, k, as4(t), attrs), (t) => attentionOps(q, k, as4(t), attrs), loop);
    tf.dispose([q, k, v]);
  }
  // A KV cache's k and v (llama.ts): more rows allotted than filled, the kernel reading the first `keys` where they lie
  // (two sequences, so each one's rows start a whole allotment apart; a window over a longer cache). The ops, and the
  // gradient, take the filled rows sliced.
  for (const [B, T, S, rows, H, KVH, D, window] of [[2, 1, 37, 64, 4, 2, 64, 0], [1, 3, 150, 256, 2, 1, 32, 64]]) {
    const attrs = { scale: 1 / Math.sqrt(D), softcap: 0, window };
    const q = tf.tensor4d(seeded(B * T * H * D, 53 + T, 2), [B, T, H, D]);
    const [kAll, vAll] = [59, 61].map((seed) => tf.tensor4d(seeded(B * rows * KVH * D, seed + S, 2), [B, rows, KVH, D]));
    const [k, v] = [kAll, vAll].map((t) => t.slice([0, 0, 0, 0], [B, S, KVH, D]) as tf.Tensor4D);
    const name = `attention ${B}×${T}×${H}×${D} over the first ${S} of ${rows} cached rows (${KVH} kv heads${window ? `, window ${window}` : ''})`;
    const cached = (t: tf.Tensor) => attention(t as tf.Tensor4D, kAll, vAll, { ...attrs, keys: S });
    await compare(`${name}, d q`, attentionRuns(q), q.clone(), cached, (t) => attentionOps(t as tf.Tensor4D, k, v, attrs), B * T <= WASM_ATTENTION_MAX_ROWS);
    tf.dispose([q, kAll, vAll, k, v]);
  }
  // WASM's BatchMatMul in the SIMD module (ops/wasm-matmul.ts): a batch (attention's per-head products), a LoRA
  // factor's gradient (few rows summed over a batch's, an inner side over one 256-row block) and a rank-8 product with
  // a 3-column rest, against the same product as broadcast multiplies and a sum (no BatchMatMul), and their gradients
  // for the first operand.
  if (backend === 'wasm')
    for (const [E, M, K, N] of [[4, 80, 32, 40], [1, 8, 300, 576], [1, 100, 8, 55]]) {
      const a = tf.tensor3d(seeded(E * M * K, 83 + K, 1), [E, M, K]);
      const b = tf.tensor3d(seeded(E * K * N, 89 + N, 1), [E, K, N]);
      const before = matmulStats.simd;
      const product = (t: tf.Tensor) => (E === 1 ? summedRows(() => tf.matMul(t.reshape([M, K]), b.reshape([K, N]))).reshape([E, M, N]) : tf.matMul(t as tf.Tensor3D, b));
      tf.tidy(() => product(a));
      const ran = matmulStats.simd > before;
      await compare(`BatchMatMul ${E}×${M}×${K} · ${K}×${N}`, ran, a, product, (t) => tf.sum(tf.mul(t.expandDims(3), b.expandDims(1)), 2), true);
      b.dispose();
    }
  // The LM head's cross-entropy from its products (training's loss): its row statistics (logsumexp, NLL, argmax hit)
  // against the ops, and its dz against autograd of the ops' NLL: rows that leave workgroup lanes idle, Gemma's cap over
  // a vocabulary of 50,000, and many rows of a small vocabulary.
  for (const [n, V, cap] of [[5, 1000, 0], [3, 50000, 30], [300, 40, 0]]) {
    const z = tf.tensor2d(seeded(n * V, 71 + V, 4), [n, V]);
    const t = tf.tensor1d(Int32Array.from({ length: n }, (_, i) => (i * 7919) % V), 'int32');
    const runs = lmCrossEntropyRuns();
    const got = (runs ? lmCrossEntropy : lmCrossEntropyOps)(z, t, cap, true);
    const want = lmCrossEntropyOps(z, t, cap, false).stats;
    const hot = tf.oneHot(t, V).toFloat();
    const nll = (x: tf.Tensor) => { const l = cap ? tf.mul(tf.tanh(tf.div(x, cap)), cap) : x; return tf.sum(tf.sub(tf.logSumExp(l, 1), tf.sum(tf.mul(l, hot), 1))); }; // Σ NLL
    const auto = tf.grad(nll)(z);
    hot.dispose();
    out.push({ name: `LM-head cross-entropy ${n}×${V}${cap ? `, cap ${cap}` : ''}`, fused: runs, loop: false, forward: await worst(got.stats, want), gradient: await worst(got.dz!, auto) });
    tf.dispose([z, t, got.stats, got.dz!, want, auto]);
  }
  // Row-linear (decoding's products): plain, with the pre-norm (w and 1 + w), bias, residual and an adapter (rank 8
  // and the largest folded in, 128), and the gated MLP's pair of products with either activation, with adapters on
  // both products or on the second only (rank2); column counts that leave lanes idle, 1 to 4 rows. Then W (and W₂)
  // packed in each format, read from their words inside the kernel, against the ops' packed products.
  const rowCases = [[1, 96, 96, 0, 0, 0, '', 0, 0, ''], [3, 100, 70, 1, 1, 0, '', 0, 0, ''], [1, 576, 576, 2, 0, 1, '', 0, 0, ''], [4, 64, 130, 0, 1, 1, '', 0, 0, ''], [2, 96, 192, 1, 0, 0, 'silu', 0, 0, ''], [1, 64, 100, 2, 0, 0, 'gelu_tanh', 0, 0, ''], [1, 96, 70, 1, 1, 1, '', 8, 0, ''], [4, 100, 64, 0, 0, 0, '', 128, 0, ''], [2, 96, 150, 1, 0, 0, 'silu', 8, 16, ''], [4, 64, 100, 2, 0, 0, 'gelu_tanh', 0, 128, ''],
    [1, 96, 70, 1, 1, 0, '', 0, 0, 'int8'], [3, 64, 130, 2, 0, 1, '', 8, 0, 'int4'], [2, 96, 150, 1, 0, 0, 'silu', 0, 0, 'int8'], [1, 64, 100, 2, 0, 0, 'gelu_tanh', 0, 0, 'bf16'], [4, 96, 64, 1, 1, 1, '', 128, 0, 'f16'], [1, 128, 96, 1, 0, 0, 'silu', 0, 0, 'int4']] as const;
  for (const [N, C, O, norm, bias, residual, act, rank, rank2, format] of rowCases) {
    // float32 [C, O], or packed [O, C] (the checkpoint's layout) of values of the same scale
    const weight = (seed: number): tf.Tensor2D | PackedMatrix => {
      if (!format) return tf.tensor2d(seeded(C * O, seed, 0.2), [C, O]);
      const values = seeded(O * C, seed, 0.2);
      return format === 'f16' ? PackedMatrix.fromHalves(Uint16Array.from(values, f32ToF16), O, C, 'f16') : PackedMatrix.fromValues(values, O, C, packingFor(format, C)!);
    };
    const w = weight(C + O);
    const o: RowLinearOptions = {
      ...(norm ? { norm: { w: tf.tensor1d(seeded(C, 5 + C, 0.5)), eps: 1e-6, offset: norm - 1 } } : {}),
      ...(bias ? { bias: tf.tensor1d(seeded(O, 7, 1)) } : {}),
      ...(residual ? { residual: tf.tensor2d(seeded(N * O, 11, 1), [N, O]) } : {}),
      ...(act ? { gated: { w2: weight(13), act, ...(rank2 ? { lora: { A: tf.tensor2d(seeded(rank2 * C, 23, 0.3), [rank2, C]), B: tf.tensor2d(seeded(O * rank2, 29, 0.3), [O, rank2]), scale: 0.75 } } : {}) } } : {}),
      ...(rank ? { lora: { A: tf.tensor2d(seeded(rank * C, 17, 0.3), [rank, C]), B: tf.tensor2d(seeded(O * rank, 19, 0.3), [O, rank]), scale: 1.5 } } : {}),
    };
    const name = `row-linear ${N}×${C}·${C}×${O}${format ? ` (${format})` : ''}${norm ? (norm === 2 ? ', norm (1 + w)' : ', norm') : ''}${bias ? ', bias' : ''}${residual ? ', residual' : ''}${act ? `, gated ${act}` : ''}${rank ? `, adapter of rank ${rank}` : ''}${rank2 ? `, an adapter of rank ${rank2} on the second product` : ''}`;
    const x = () => tf.tensor2d(seeded(N * C, N + C, 2), [N, C]);
    const fused = (xs: tf.Tensor, opts: RowLinearOptions) => (hasRowLinear() ? rowLinear(xs as tf.Tensor2D, w, opts) : rowLinearOps(xs as tf.Tensor2D, w, opts));
    await compare(name, hasRowLinear(), x(), (t) => fused(t, o), (t) => rowLinearOps(t as tf.Tensor2D, w, o));
    if (o.norm && ((o.lora && o.gated?.lora) || (format && o.lora && o.bias && o.residual))) {
      // As a GPU that binds only 8 storage buffers runs it: the norm as its own program first.
      capStorageBuffers(8);
      await compare(`${name}, 8 storage buffers`, hasRowLinear(), x(), (t) => fused(t, o), (t) => rowLinearOps(t as tf.Tensor2D, w, o));
      capStorageBuffers(Infinity);
    }
    if (o.lora) {
      // The adapter's gradients too (training a few rows takes this kernel when there is no dropout).
      const [xs, lora] = [x(), o.lora];
      await compare(`${name}, d A`, hasRowLinear(), lora.A.clone(), (t) => fused(xs, { ...o, lora: { ...lora, A: t } }), (t) => rowLinearOps(xs, w, { ...o, lora: { ...lora, A: t } }));
      await compare(`${name}, d B`, hasRowLinear(), lora.B.clone(), (t) => fused(xs, { ...o, lora: { ...lora, B: t } }), (t) => rowLinearOps(xs, w, { ...o, lora: { ...lora, B: t } }));
      xs.dispose();
    }
    if (o.gated?.lora) {
      const [xs, gated, lora2] = [x(), o.gated, o.gated.lora];
      const withA = (t: tf.Tensor): RowLinearOptions => ({ ...o, gated: { ...gated, lora: { ...lora2, A: t } } });
      const withB = (t: tf.Tensor): RowLinearOptions => ({ ...o, gated: { ...gated, lora: { ...lora2, B: t } } });
      await compare(`${name}, d A₂`, hasRowLinear(), lora2.A.clone(), (t) => fused(xs, withA(t)), (t) => rowLinearOps(xs, w, withA(t)));
      await compare(`${name}, d B₂`, hasRowLinear(), lora2.B.clone(), (t) => fused(xs, withB(t)), (t) => rowLinearOps(xs, w, withB(t)));
      xs.dispose();
    }
    for (const m of [w, o.gated?.w2]) m?.dispose();
    tf.dispose([o.norm?.w, o.bias, o.residual, o.gated?.lora?.A, o.gated?.lora?.B, o.lora?.A, o.lora?.B].filter((t): t is tf.Tensor => !!t));
  }
  // The MLP's up product given its gate (a tuned MLP with packed weights takes its gate from a row kernel of its own):
  // act(gate) · (xn·W + its adapter), output and gradient for x, the gate, A and B; also as a GPU binding only 8
  // storage buffers runs it (the packed case binds exactly 8 with its output).
  for (const [N, C, O, act, format] of [[1, 96, 150, 'silu', 'int8'], [3, 64, 100, 'gelu_tanh', 'int4'], [2, 96, 70, 'silu', '']] as const) {
    const w = format ? PackedMatrix.fromValues(seeded(O * C, C + O, 0.2), O, C, packingFor(format, C)!) : tf.tensor2d(seeded(C * O, C + O, 0.2), [C, O]);
    const gate = tf.tensor2d(seeded(N * O, 37, 3), [N, O]);
    const lora = { A: tf.tensor2d(seeded(8 * C, 17, 0.3), [8, C]), B: tf.tensor2d(seeded(O * 8, 19, 0.3), [O, 8]), scale: 1.5 };
    const normW = tf.tensor1d(seeded(C, 5 + C, 0.5));
    const o = (change: Partial<RowLinearOptions> = {}): RowLinearOptions => ({ norm: { w: normW, eps: 1e-6, offset: 0 }, lora, gate: { value: gate, act }, ...change });
    const name = `row-linear ${N}×${C}·${C}×${O}${format ? ` (${format})` : ''}, norm, adapter of rank 8, given a ${act} gate`;
    const x = () => tf.tensor2d(seeded(N * C, N + C, 2), [N, C]);
    const fused = (xs: tf.Tensor, opts: RowLinearOptions) => (hasRowLinear() ? rowLinear(xs as tf.Tensor2D, w, opts) : rowLinearOps(xs as tf.Tensor2D, w, opts));
    const ops = (xs: tf.Tensor, opts: RowLinearOptions) => rowLinearOps(xs as tf.Tensor2D, w, opts);
    await compare(name, hasRowLinear(), x(), (t) => fused(t, o()), (t) => ops(t, o()));
    capStorageBuffers(8);
    await compare(`${name}, 8 storage buffers`, hasRowLinear(), x(), (t) => fused(t, o()), (t) => ops(t, o()));
    capStorageBuffers(Infinity);
    const xs = x();
    const withGate = (t: tf.Tensor) => o({ gate: { value: t, act } });
    await compare(`${name}, d gate`, hasRowLinear(), gate.clone(), (t) => fused(xs, withGate(t)), (t) => ops(xs, withGate(t)));
    const withA = (t: tf.Tensor) => o({ lora: { ...lora, A: t } });
    const withB = (t: tf.Tensor) => o({ lora: { ...lora, B: t } });
    await compare(`${name}, d A`, hasRowLinear(), lora.A.clone(), (t) => fused(xs, withA(t)), (t) => ops(xs, withA(t)));
    await compare(`${name}, d B`, hasRowLinear(), lora.B.clone(), (t) => fused(xs, withB(t)), (t) => ops(xs, withB(t)));
    w.dispose();
    tf.dispose([xs, gate, lora.A, lora.B, normW]);
  }
  for (const act of ['silu', 'gelu_tanh'] as const) {
    for (const shape of [[1, 1, 1536], [4, 7, 100]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const up = tf.tensor(seeded(n, 31, 1), shape);
      const gate = tf.tensor(seeded(n, 17 + n, 6), shape); // out to ±6: both tails of each activation
      // The gradient for gate (x here) with up fixed, then for up with gate fixed.
      await compare(`${act} gate ${shape.join('×')}`, kernelRuns(GATED_ACT, n), gate.clone(), (t) => gatedAct(t, up, act), (t) => gatedActOps(t, up, act), n <= WASM_LOOP_MAX_ELEMENTS);
      await compare(`${act} up ${shape.join('×')}`, kernelRuns(GATED_ACT, n), up.clone(), (t) => gatedAct(gate, t, act), (t) => gatedActOps(gate, t, act), n <= WASM_LOOP_MAX_ELEMENTS);
      tf.dispose([up, gate]);
    }
  }
  // AdamW against the update computed here in float64, for a finite step and for one the device marked not finite.
  for (const okFlag of [1, 0]) {
    const n = 1000;
    const [pv, mv, vv, gv] = [seeded(n, 1, 1), seeded(n, 2, 0.1), seeded(n, 3, 0.01).map(Math.abs), seeded(n, 4, 2)];
    const a = { beta1: 0.9, beta2: 0.999, c1: 1 - 0.9 ** 3, c2: 1 - 0.999 ** 3, epsilon: 1e-8, lr: 1e-3, decay: 0.01 };
    const clipValue = 0.7;
    const ts = [pv, mv, vv, gv].map((x) => tf.tensor1d(x));
    const [clip, ok] = [tf.scalar(clipValue), tf.scalar(okFlag === 1, 'bool')];
    const got = hasFusedAdamW() ? await Promise.all(adamwKernels(ts[0], ts[1], ts[2], ts[3], clip, ok, a).map(async (t) => { const d = (await t.data()) as Float32Array; t.dispose(); return d; })) : [pv, mv, vv];
    const err = [0, 0, 0];
    const scale = [1e-12, 1e-12, 1e-12];
    for (let i = 0; i < n; i++) {
      const g = gv[i] * clipValue;
      const m = a.beta1 * mv[i] + (1 - a.beta1) * g;
      const v = a.beta2 * vv[i] + (1 - a.beta2) * g * g;
      const p = pv[i] * (1 - a.lr * a.decay) - (a.lr * (m / a.c1)) / (Math.sqrt(v / a.c2) + a.epsilon);
      const want = okFlag ? [p, m, v] : [pv[i], mv[i], vv[i]];
      for (let k = 0; k < 3; k++) {
        err[k] = Math.max(err[k], Math.abs(got[k][i] - want[k]));
        scale[k] = Math.max(scale[k], Math.abs(want[k]));
      }
    }
    const worst = Math.max(...err.map((e, k) => e / scale[k])); // of the parameter, m and v, each against its largest value
    out.push({ name: `AdamW ${okFlag ? 'step' : 'step with a non-finite norm (nothing changes)'}`, fused: hasFusedAdamW(), loop: true, forward: hasFusedAdamW() ? worst : 0, gradient: 0 });
    tf.dispose([...ts, clip, ok]);
  }
  return out;
}

(globalThis as unknown as { fusedKernels: typeof fusedKernels }).fusedKernels = fusedKernels;
