// Frozen weights held packed (LoadOptions.weights: 16bit, int8, int4): the kernels against plain loops and against
// dequantize-then-matmul, on cpu and WASM; quantization's error bounds; a 16-bit checkpoint's exact logits and
// greedy ids; int8/int4 models close to float32, in their bytes per parameter; training on an int4 base learns,
// with the tensor count flat across steps.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { generated, OUT } from '../scripts/wasm-kernels';
import * as tf from '../workers/engine/tf';
import { Engine } from '../workers/engine/engine';
import { selectBackend } from '../workers/engine/backend';
import { fullLogits, generateIds } from '../workers/engine/generate';
import { f16ToF32Bits } from '../workers/engine/safetensors';
import { dequantize } from '../workers/engine/ops/dequantize';
import { packedMatMul, packedMatMulT, PACKED_MATMUL_T } from '../workers/engine/ops/packed-matmul';
import { packedMatMulOnHeap, roundRows, simdBackwardFits, simdFits, xRoundingBound } from '../workers/engine/ops/packed-matmul-simd';
import { hasSimdModule, simdKernelsOn } from '../workers/engine/ops/simd-module';
import { POOL_MIN_WORK, simdPoolOn } from '../workers/engine/ops/simd-pool';
import { wasmHeap, type WasmHeap } from '../workers/engine/ops/backend-io';
import { PackedMatrix, PACKED_PRODUCT_MAX_ROWS } from '../workers/engine/quant/packed-matrix';
import { bf16FromF32, decodeRow, packingFor, quantize, type PackFormat, type Packing } from '../workers/engine/quant/format';
import { parameterCount } from '../workers/engine/config';
import { DirModelFiles } from '../workers/node/dir-files';
import { setupNodeHost } from '../workers/node/host';
import { BYTES_PER_PARAMETER, chooseWeightFormat, resolveWeightFormat, type WeightChoice } from '../workers/shared/weights';
import { modelDir } from './helpers';
import { writeMergedFolder } from '../workers/engine/export/merged';
import type { FolderSink } from '../workers/engine/export/sink';
import { chats, makeTrainer } from './train-helpers';

const PROMPT = [1, 20, 77, 140, 3, 250, 99, 12, 2, 45, 300, 7];

async function load(name: string, backend: 'wasm' | 'cpu', weights: WeightChoice): Promise<Engine> {
  setupNodeHost();
  const engine = new Engine();
  await engine.loadFiles(new DirModelFiles(modelDir(name)), { backend, weights });
  return engine;
}

async function logits(engine: Engine): Promise<Float32Array> {
  const t = fullLogits(engine.current.model, PROMPT);
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

/** `epochs` full-batch steps on 4 chats: each step's loss, and the tensor count at every event. */
async function train(engine: Engine, epochs: number, learningRate: number): Promise<{ losses: number[]; counts: number[] }> {
  const t = makeTrainer(engine, chats().slice(0, 4), { epochs, batchSize: 4, valSplit: 0, learningRate }, { dropout: 0 });
  const losses: number[] = [];
  const counts: number[] = [];
  await t.run((e) => {
    if (e.type === 'steps') for (const p of e.points) losses.push(p.loss);
    counts.push(tf.memory().numTensors);
  });
  t.dispose();
  return { losses, counts };
}

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** x [N, K] · Wᵀ for W [R, K], in doubles. */
function plainProduct(x: Float32Array, N: number, w: Float32Array, R: number, K: number): Float64Array {
  const out = new Float64Array(N * R);
  for (let n = 0; n < N; n++) for (let r = 0; r < R; r++) {
    let acc = 0;
    for (let k = 0; k < K; k++) acc += x[n * K + k] * w[r * K + k];
    out[n * R + r] = acc;
  }
  return out;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** The largest |a − b| beyond what `allowed` grants each element. */
const maxDiffBeyond = (a: ArrayLike<number>, b: ArrayLike<number>, allowed: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]) - allowed[i]), 0);

describe('the WASM kernels’ module', () => {
  it('is what its WAT source assembles to (npm run build:wasm)', async () => {
    expect(readFileSync(OUT, 'utf8')).toBe(await generated());
  });
});

describe('the SIMD product on a shared memory (tfjs-backend-wasm’s threaded build, as in a cross-origin isolated page)', () => {
  it('links to it and equals a plain loop over the dequantized rows', () => {
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536, shared: true });
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    for (const format of ['int8', 'int4', 'bf16'] as const) {
      const [N, R, K] = [2, 5, 64];
      const packing = packingFor(format, K)!;
      const wv = randn(R * K, 3);
      const { words, scales } = quantize(wv, R, K, packing);
      const w = new Float32Array(R * K);
      for (let r = 0; r < R; r++) decodeRow(words, scales, r, K, packing, w, r * K, 1);
      const xv = randn(N * K, 4);
      // x, words, scales and out laid out one after another in the shared heap
      const [xAt, wAt] = [64, 64 + xv.byteLength];
      const sAt = wAt + words.byteLength;
      const outAt = sAt + (scales?.byteLength ?? 0);
      new Float32Array(memory.buffer, xAt, xv.length).set(xv);
      new Int32Array(memory.buffer, wAt, words.length).set(words);
      if (scales) new Float32Array(memory.buffer, sAt, scales.length).set(scales);
      const shapes = { x: { shape: [N, K] }, words: { shape: [R, words.length / R] } } as unknown as Parameters<typeof packedMatMulOnHeap>[3];
      // the work space (x rounded to int16) after the output
      const heap: WasmHeap = { memory, at: () => 0, withScratch: (_bytes, use) => use((outAt + 4 * N * R + 15) & ~15) };
      expect(packedMatMulOnHeap({ x: xAt, words: wAt, scales: scales ? sAt : undefined }, outAt, packing, shapes, heap), format).toBe(true);
      const plain = plainProduct(xv, N, w, R, K);
      const got = new Float32Array(memory.buffer, outAt, N * R);
      expect(maxDiffBeyond(got, plain, xRoundingBound(format, xv, N, w, R, K)), format).toBeLessThan(1e-5 * maxAbs(plain));
    }
  });
});

describe('quantization (plain loops)', () => {
  beforeAll(async () => {
    setupNodeHost();
    await selectBackend('cpu');
  });

  it('rounds float32 to bf16 to nearest, ties to even', () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (const [bits, want] of [[0x3f808000, 0x3f80], [0x3f818000, 0x3f82], [0x3f808001, 0x3f81], [0x3f807fff, 0x3f80], [0x7f7fffff, 0x7f80]]) {
      u[0] = bits;
      expect(bf16FromF32(f[0]), bits.toString(16)).toBe(want);
    }
  });

  it.each(['int8', 'int4'] as const)('%s: every value within half a step of its group, the absmax exact', (format) => {
    const R = 24;
    const K = 128;
    const w = randn(R * K, 3).map((v, i) => (i % 97 === 0 ? v * 30 : v)); // outliers in some groups
    const p = packingFor(format, K)!;
    const m = PackedMatrix.fromValues(w, R, K, p);
    const back = m.dense().dataSync();
    const { scales } = quantize(w, R, K, p);
    const groups = K / p.group;
    let worst = 0;
    for (let r = 0; r < R; r++) for (let g = 0; g < groups; g++) {
      const s = scales![r * groups + g];
      let amaxAt = r * K + g * p.group;
      for (let k = g * p.group; k < (g + 1) * p.group; k++) {
        const i = r * K + k;
        worst = Math.max(worst, Math.abs(back[i] - w[i]) / s);
        if (Math.abs(w[i]) > Math.abs(w[amaxAt])) amaxAt = i;
      }
      expect(back[amaxAt]).toBeCloseTo(w[amaxAt], 5);
    }
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-5);
    expect(worst).toBeGreaterThan(0.4); // the bound is reached, not a loose one
    m.dispose();
  });
});

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`the packed kernels on ${backend}`, () => {
    beforeAll(async () => {
      setupNodeHost();
      await new Engine().loadFiles(new DirModelFiles(modelDir('llama-tied-gqa-f32')), { backend, weights: 'f32' });
    });

    it('dequantize gives every f16 and bf16 bit pattern its exact float32 value, in order, and transposed', async () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      for (const format of ['f16', 'bf16'] as const) {
        const m = PackedMatrix.fromHalves(all, 256, 256, format);
        const want = (h: number) => (format === 'bf16' ? h << 16 : f16ToF32Bits(h)) >>> 0;
        const plain = new Uint32Array(((await m.dense().data()) as Float32Array).buffer);
        const t = new Uint32Array(((await m.dense(true).data()) as Float32Array).buffer);
        let wrong = 0;
        for (let h = 0; h < 65536; h++) if (plain[h] !== want(h) || t[(h % 256) * 256 + (h >> 8)] !== want(h)) wrong++;
        expect(wrong, format).toBe(0);
        m.dispose();
      }
    });

    // On WASM a whole matrix is unpacked in the SIMD module (split across the pool's threads), transposed 4 × 4 where
    // asked: every value the plain loop's float32 bits. A row count not a multiple of 4 transposes in the loop.
    it.runIf(backend === 'wasm')('unpacks whole matrices in the SIMD module, on every thread, to the plain loop\'s bits, plain and transposed', async () => {
      const pool = simdPoolOn(wasmHeap(tf.backend())!.memory);
      for (let i = 0; i < 500 && !pool!.ready; i++) await new Promise((r) => setTimeout(r, 10));
      const cases: [Packing, number, number][] = [
        [{ format: 'int8', group: 64 }, 200, 512],
        [{ format: 'int8', group: 576 }, 64, 576],
        [{ format: 'int4', group: 32 }, 124, 288],
        [{ format: 'int4', group: 64 }, 202, 256],
        [{ format: 'bf16', group: 8 }, 96, 392],
      ];
      for (const [packing, R, K] of cases) {
        const m = PackedMatrix.fromValues(randn(R * K, R), R, K, packing);
        const words = (await m.words.data()) as Int32Array;
        const scales = m.scales ? ((await m.scales.data()) as Float32Array) : null;
        const want = new Float32Array(R * K);
        const wantT = new Float32Array(R * K);
        for (let r = 0; r < R; r++) {
          decodeRow(words, scales, r, K, packing, want, r * K, 1);
          decodeRow(words, scales, r, K, packing, wantT, r, R);
        }
        const split = pool!.stats.products;
        const [got, gotT] = [m.dense(false), m.dense(true)];
        expect(pool!.stats.products - split, `${packing.format} ${R}×${K}: split across threads`).toBe(R % 4 === 0 ? 3 : 1); // unpacked, and transposed
        expect(new Uint32Array(((await got.data()) as Float32Array).buffer)).toEqual(new Uint32Array(want.buffer));
        expect(new Uint32Array(((await gotT.data()) as Float32Array).buffer)).toEqual(new Uint32Array(wantT.buffer));
        tf.dispose([got, gotT]);
        m.dispose();
      }
    });

    it.each(['bf16', 'int8', 'int4'] as const)('%s: the packed product equals dequantize-then-matmul and a plain loop, for 1…9 rows', async (format: PackFormat) => {
      const [R, K] = [40, 96];
      const m = PackedMatrix.fromValues(randn(R * K, 11), R, K, packingFor(format, K)!);
      const w = (await m.dense().data()) as Float32Array;
      for (const N of [1, 3, PACKED_PRODUCT_MAX_ROWS, PACKED_PRODUCT_MAX_ROWS + 1]) {
        const xv = randn(N * K, N);
        const x = tf.tensor2d(xv, [N, K]);
        const fused = packedMatMul(x, m.words, m.scales, m.packing);
        const viaDense = tf.matMul(x, dequantize(m.words, m.scales, m.packing, true));
        const chosen = m.forward(x); // what the model calls: fused up to PACKED_PRODUCT_MAX_ROWS rows
        const plain = plainProduct(xv, N, w, R, K);
        const tol = 1e-5 * maxAbs(plain);
        // on WASM, the SIMD module's int8/int4 products also round x to int16 (xRoundingBound)
        const allowed = backend === 'wasm' ? xRoundingBound(format, xv, N, w, R, K) : new Float64Array(N * R);
        for (const t of [fused, viaDense, chosen]) expect(maxDiffBeyond((await t.data()) as Float32Array, plain, allowed)).toBeLessThan(tol);
        tf.dispose([x, fused, viaDense, chosen]);
      }
      m.dispose();
    });

    it.each(['int8', 'int4'] as const)('%s: the product’s gradient in x equals finite differences', async (format) => {
      const [N, R, K] = [2, 8, 64];
      const m = PackedMatrix.fromValues(randn(R * K, 5), R, K, packingFor(format, K)!);
      const x = randn(N * K, 9);
      const g = randn(N * R, 13); // upstream gradient: L = Σ g ⊙ (x·Wᵀ)
      const loss = (xs: Float32Array) => tf.tidy(() => tf.sum(tf.mul(m.forward(tf.tensor2d(xs, [N, K])), tf.tensor2d(g, [N, R]))).dataSync()[0]);
      const grad = tf.tidy(() => tf.grad((xt: tf.Tensor) => tf.sum(tf.mul(m.forward(xt as tf.Tensor2D), tf.tensor2d(g, [N, R]))))(tf.tensor2d(x, [N, K])).dataSync());
      const h = 1e-2;
      for (const i of [0, 7, 31, 64, 100, N * K - 1]) {
        const up = x.slice();
        const down = x.slice();
        up[i] += h;
        down[i] -= h;
        expect(grad[i]).toBeCloseTo((loss(up) - loss(down)) / (2 * h), 2);
      }
      m.dispose();
    });

    // The WASM SIMD module (ops/packed-matmul-simd.wat) called directly on the backend's heap, so a silent fall back
    // to the plain loop cannot pass: int4 in groups of 32 and 64, int8 per row and per group of 16, bf16; 1–5 x rows.
    // The backward product dy · W for int8 on WASM (int8t in the SIMD module: no float32 W, no XNNPACK packing), against
    // dequantize-then-matmul and a plain loop in float64: per-channel and grouped scales, one row and several, a product
    // split across the pool's threads by columns, and an odd R, which the module declines (W is unpacked instead, and
    // the kernel's plain loop is checked on it).
    it.runIf(backend === 'wasm')('int8: the backward product dy·W equals dequantize-then-matmul, split across threads or not', async () => {
      const pool = simdPoolOn(wasmHeap(tf.backend())!.memory);
      const cases: [Packing, number, number, number][] = [
        [{ format: 'int8', group: 96 }, 5, 40, 96],
        [{ format: 'int8', group: 32 }, 1, 40, 96],
        [{ format: 'int8', group: 64 }, 11, 302, 1024],
        [{ format: 'int8', group: 48 }, 3, 41, 48], // R odd: the loop
      ];
      for (const [packing, N, R, K] of cases) {
        const m = PackedMatrix.fromValues(randn(R * K, R + 3), R, K, packing);
        const w = (await m.dense().data()) as Float32Array;
        const dyv = randn(N * R, N + 5);
        const dy = tf.tensor2d(dyv, [N, R]);
        const split = pool?.stats.products ?? 0;
        let out: tf.Tensor | undefined;
        const { kernelNames } = await tf.profile(() => (out = m.backward(dy)));
        const inModule = simdBackwardFits(packing, R, K);
        expect(kernelNames.includes(PACKED_MATMUL_T), 'the packed kernel where it serves, else W unpacked').toBe(inModule);
        // where the module declines, the kernel's own plain loop (called directly) is checked instead
        const got = (await (inModule ? out! : packedMatMulT(dy, m.words, m.scales, m.packing)).data()) as Float32Array;
        if (pool && N * R * K >= POOL_MIN_WORK) expect(pool.stats.products, `${N}×${R}·${K}: split across threads`).toBeGreaterThan(split);
        const viaDense = (await tf.matMul(dy, dequantize(m.words, m.scales, m.packing)).data()) as Float32Array;
        const plain = new Float64Array(N * K);
        for (let n = 0; n < N; n++) for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) plain[n * K + k] += dyv[n * R + r] * w[r * K + k];
        const tol = 1e-5 * maxAbs(plain);
        let worst = 0;
        for (let i = 0; i < N * K; i++) worst = Math.max(worst, Math.abs(got[i] - plain[i]), Math.abs(viaDense[i] - plain[i]));
        expect(worst, `${packing.format}/${packing.group} ${N}×${R}·${K}`).toBeLessThan(tol);
        dy.dispose();
        m.dispose();
      }
    });

    it.runIf(backend === 'wasm')('the SIMD product runs on the WASM heap and equals a plain loop over the dequantized rows', async () => {
      expect(hasSimdModule()).toBe(true);
      const b = tf.backend() as unknown as { makeOutput(s: number[], d: 'float32'): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): Float32Array; disposeData(id: object): void };
      const heap = wasmHeap(tf.backend())!;
      const at = heap.at;
      const cases: [Packing, number, number][] = [
        [{ format: 'int4', group: 32 }, 7, 96],
        [{ format: 'int4', group: 64 }, 33, 128],
        [{ format: 'int8', group: 160 }, 5, 160],
        [{ format: 'int8', group: 16 }, 3, 48],
        [{ format: 'bf16', group: 8 }, 9, 8],
        [{ format: 'bf16', group: 200 }, 2, 200],
      ];
      for (const [packing, R, K] of cases) {
        const m = PackedMatrix.fromValues(randn(R * K, R + K), R, K, packing);
        const w = (await m.dense().data()) as Float32Array;
        for (const N of [1, 2, 5]) {
          const xv = randn(N * K, N);
          const x = tf.tensor2d(xv, [N, K]);
          const out = b.makeOutput([N, R], 'float32');
          const shapes = { x, words: m.words, scales: m.scales ?? undefined };
          const ran = packedMatMulOnHeap({ x: at(x), words: at(m.words), scales: m.scales ? at(m.scales) : undefined }, at(out), packing, shapes, heap);
          expect(ran, `${packing.format}/${packing.group} ${N}×${K}·${R}`).toBe(true);
          const plain = plainProduct(xv, N, w, R, K);
          const allowed = xRoundingBound(packing.format, xv, N, w, R, K);
          expect(maxDiffBeyond(b.typedArrayFromHeap(out), plain, allowed), `${packing.format}/${packing.group} ${N}×${K}·${R}`).toBeLessThan(1e-5 * maxAbs(plain));
          b.disposeData(out.dataId);
          x.dispose();
        }
        m.dispose();
      }
      // int8 per row over 4096 elements, every product at its largest: an i32 lane would overflow (1024 × 127 × 32767)
      // without the module moving its integer sum to float32 every 1024 elements.
      {
        const [R, K] = [2, 4096];
        const m = PackedMatrix.fromValues(new Float32Array(R * K).fill(0.5), R, K, { format: 'int8', group: K });
        const x = tf.tensor2d(new Float32Array(K).fill(-3), [1, K]);
        const out = b.makeOutput([1, R], 'float32');
        expect(packedMatMulOnHeap({ x: at(x), words: at(m.words), scales: at(m.scales!) }, at(out), m.packing, { x, words: m.words, scales: m.scales! }, heap)).toBe(true);
        expect(Array.from(b.typedArrayFromHeap(out))).toEqual([-1.5 * K, -1.5 * K]);
        b.disposeData(out.dataId);
        x.dispose();
        m.dispose();
      }
      // Split across the SIMD pool's threads (ops/simd-pool.ts; Node's tests run WASM threaded): each part writes its
      // own columns, so the split product equals one call of the module over all rows, bit for bit, at any x row count.
      {
        const pool = simdPoolOn(heap.memory);
        if (getThreadsCount() > 1) {
          expect(pool, 'a threaded heap has a pool').not.toBeNull();
          for (let i = 0; i < 500 && !pool!.ready; i++) await new Promise((r) => setTimeout(r, 10));
          expect(pool!.ready, 'the helpers started').toBe(true);
          const own = simdKernelsOn(heap.memory)!;
          const cases: [Packing, number, number][] = [
            [{ format: 'int8', group: 64 }, 301, 1024],
            [{ format: 'int4', group: 32 }, 257, 1024],
            [{ format: 'bf16', group: 8 }, 129, 512],
          ];
          for (const [packing, R, K] of cases) {
            const m = PackedMatrix.fromValues(randn(R * K, 7), R, K, packing);
            for (const N of [1, 3]) {
              expect(N * R * K).toBeGreaterThanOrEqual(POOL_MIN_WORK);
              const xv = randn(N * K, N + 1);
              const x = tf.tensor2d(xv, [N, K]);
              const [split, whole] = [b.makeOutput([N, R], 'float32'), b.makeOutput([N, R], 'float32')];
              const inputs = { x: at(x), words: at(m.words), scales: m.scales ? at(m.scales) : undefined };
              const shapes = { x, words: m.words, scales: m.scales ?? undefined };
              // until a helper has run a part at least once (a helper slow to wake leaves its part to this thread)
              const before = pool!.stats.helperParts;
              for (let i = 0; i < 200 && pool!.stats.helperParts === before; i++) {
                expect(packedMatMulOnHeap(inputs, at(split), packing, shapes, heap)).toBe(true);
              }
              expect(pool!.stats.helperParts, `${packing.format}: a helper ran a part`).toBeGreaterThan(before);
              // the same product in one call of the module, x rounded as the kernel rounds it: int8's in the module
              // (round16), int4's in JS (its nibble order); bf16 reads x as it is
              const xs = new Float32Array(N);
              const xq = packing.format === 'int4' ? new Int16Array(N * K) : null;
              if (xq) expect(roundRows(xv, N, K, true, xq, xs)).toBe(true);
              heap.withScratch(4 * N + 2 * N * K + 16, (scratch) => {
                const xAt = packing.format === 'bf16' ? at(x) : scratch + 16 + 4 * N;
                if (xq) {
                  new Float32Array(heap.memory.buffer, scratch, N).set(xs);
                  new Int16Array(heap.memory.buffer, xAt, N * K).set(xq);
                }
                if (packing.format === 'int8') own.round16(at(x), N, K, xAt, scratch);
                own[packing.format as 'int8'](xAt, N, at(m.words), m.scales ? at(m.scales) : 0, R, K, packing.group, at(whole), scratch, R);
              });
              expect(Array.from(b.typedArrayFromHeap(split)), `${packing.format} ${N}×${K}·${R}`).toEqual(Array.from(b.typedArrayFromHeap(whole)));
              for (const t of [split, whole]) b.disposeData(t.dataId);
              x.dispose();
            }
            m.dispose();
          }
        }
      }
      // int8's x rounded in the module (round16): JS's rounding (roundRows) to within one step at a tie (nearest-even
      // against half-up, float32 against float64), the same scales, a row of zeros all zeros; a row not finite declines
      // to the plain loop, which gives float32's NaN in that row only.
      {
        const [N, K] = [6, 64];
        const xv = randn(N * K, 17);
        xv.fill(0, 2 * K, 3 * K);
        for (let k = 0; k < K; k += 8) xv[4 * K + k] = 1000 * (k + 0.5); // exact ties of x · 32767 / absmax are rare; big values make near ones
        const [q, xs] = [new Int16Array(N * K), new Float32Array(N)];
        expect(roundRows(xv, N, K, false, q, xs)).toBe(true);
        const x = tf.tensor2d(xv, [N, K]);
        heap.withScratch(4 * N + 2 * N * K + 16, (scratch) => {
          simdKernelsOn(heap.memory)!.round16(at(x), N, K, scratch + 16 + 4 * N, scratch);
          const [gotQ, gotS] = [new Int16Array(heap.memory.buffer, scratch + 16 + 4 * N, N * K), new Float32Array(heap.memory.buffer, scratch, N)];
          for (let i = 0; i < N * K; i++) expect(Math.abs(gotQ[i] - q[i]), `q[${i}]`).toBeLessThanOrEqual(1);
          for (let n = 0; n < N; n++) expect(gotS[n]).toBeCloseTo(xs[n], 12);
          expect(Array.from(gotQ.subarray(2 * K, 3 * K)).every((v) => v === 0)).toBe(true);
          expect(gotS[2]).toBe(0);
        });
        const m = PackedMatrix.fromValues(randn(8 * K, 3), 8, K, { format: 'int8', group: K });
        const bad = xv.slice();
        bad[K + 5] = NaN;
        const xBad = tf.tensor2d(bad, [N, K]);
        const out = b.makeOutput([N, 8], 'float32');
        expect(packedMatMulOnHeap({ x: at(xBad), words: at(m.words), scales: at(m.scales!) }, at(out), m.packing, { x: xBad, words: m.words, scales: m.scales! }, heap), 'a NaN row declines').toBe(false);
        b.disposeData(out.dataId);
        const y = (await m.forward(xBad).data()) as Float32Array;
        expect(Array.from(y.subarray(8, 16)).every(Number.isNaN)).toBe(true);
        expect([...y.subarray(0, 8), ...y.subarray(16)].every(Number.isFinite)).toBe(true);
        tf.dispose([x, xBad]);
        m.dispose();
      }
      // What it does not serve, it declines (the plain loop then runs): f16, and K that does not fill whole vectors.
      expect(simdFits({ format: 'f16', group: 64 }, 64)).toBe(false);
      expect(simdFits({ format: 'int8', group: 72 }, 72)).toBe(false);
      expect(simdFits({ format: 'int4', group: 32 }, 96)).toBe(true);
    });

    it('gathers rows of a packed matrix as the dense rows', async () => {
      const [R, K] = [30, 64];
      const m = PackedMatrix.fromValues(randn(R * K, 2), R, K, packingFor('int4', K)!);
      const ids = [29, 0, 7, 7, 15];
      const got = m.gatherRows(tf.tensor1d(ids, 'int32'));
      const want = tf.gather(m.dense(), tf.tensor1d(ids, 'int32'));
      expect(Array.from(await got.data())).toEqual(Array.from(await want.data()));
      tf.dispose([got, want]);
      m.dispose();
    });
  });

  describe.each(['qwen2-bias-bf16', 'qwen3-headdim-bf16', 'gemma3-window-bf16', 'llama-untied-mha-f16', 'qwen2-untied-sharded-f16'])(`%s on ${backend}, weights in 16 bits`, (name) => {
    let full: Engine;
    let half: Engine;
    beforeAll(async () => {
      full = await load(name, backend, 'f32');
      half = await load(name, backend, '16bit');
    });
    afterAll(() => {
      full.unload();
      half.unload();
    });

    it('computes the same logits and greedy ids as the float32 weights, exactly', async () => {
      expect(Array.from(await logits(half))).toEqual(Array.from(await logits(full)));
      const greedy = async (e: Engine) => (await generateIds(e.current.model, PROMPT, [], { maxNewTokens: 6, temperature: 0 }, () => {}, () => false)).ids;
      expect(await greedy(half)).toEqual(await greedy(full));
    });

    it('holds the projections, embedding and head in 2 bytes a parameter (≤ 2.1 with everything counted)', () => {
      expect(half.info()!.weights.format).toBe('16bit');
      expect(half.current.model.weightBytes / parameterCount(half.current.config)).toBeLessThanOrEqual(2.1);
      expect(full.current.model.weightBytes / parameterCount(full.current.config)).toBe(4);
    });

    // Training on the plain JS cpu backend takes ten times as long and proves nothing the logits do not.
    it.runIf(backend === 'wasm')('trains to the same losses, with the tensor count flat across steps', async () => {
      const a = await train(full, 3, 1e-2);
      const b = await train(half, 3, 1e-2);
      expect(b.losses).toHaveLength(3);
      expect(b.losses).toEqual(a.losses);
      expect(new Set(b.counts.slice(1)).size).toBeLessThanOrEqual(2); // no tensor left behind per step
    });
  });

  describe.each(['int8', 'int4'] as const)(`llama-tied-gqa-f32 on ${backend}, weights in %s`, (format) => {
    let full: Engine;
    let packed: Engine;
    beforeAll(async () => {
      full = await load('llama-tied-gqa-f32', backend, 'f32');
      packed = await load('llama-tied-gqa-f32', backend, format);
    });
    afterAll(() => {
      full.unload();
      packed.unload();
    });

    // Random weights: int4's rounding error is ≈ 9% of a weight's RMS (a step of absmax / 7 in groups of 32).
    it(`stays within ${format === 'int8' ? 2 : 30}% of the float32 logits (RMS), in at most ${format === 'int8' ? 1.2 : 0.7} bytes a parameter`, async () => {
      const a = await logits(full);
      const b = await logits(packed);
      const rms = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0) / v.length);
      const err = rms(Array.from(a, (x, i) => x - b[i])) / rms(a);
      expect(err).toBeGreaterThan(0); // rounded: not the float32 path by mistake
      expect(err).toBeLessThan(format === 'int8' ? 0.02 : 0.3);
      expect(packed.current.model.packedFormats).toEqual([format]);
      expect(packed.current.model.weightBytes / parameterCount(packed.current.config)).toBeLessThanOrEqual(format === 'int8' ? 1.2 : 0.7);
      expect(BYTES_PER_PARAMETER[format]).toBeLessThanOrEqual(format === 'int8' ? 1.2 : 0.7);
    });

    it('refuses a merged export, whose base values it would round, and says what to do', async () => {
      await expect(writeMergedFolder(packed.current, null, { file: () => Promise.reject(new Error('nothing may be written')) } as unknown as FolderSink)).rejects.toThrow(/loaded with its weights in (int8|int4).*Load it again with the weights in float32 or 16-bit/);
    });

    it.runIf(backend === 'wasm' && format === 'int4')('learns on an int4 base: the loss falls by half, the tensor count flat', async () => {
      const { losses, counts } = await train(packed, 12, 2e-2);
      expect(losses).toHaveLength(12);
      expect(losses[11]).toBeLessThan(losses[0] / 2);
      expect(new Set(counts.slice(1)).size).toBeLessThanOrEqual(2);
    });
  });
}

describe('a packed vocabulary in row blocks (as WASM and WebGPU keep a large one)', () => {
  it('gives the logits of one float32 matrix exactly (16-bit), and trains', async () => {
    setupNodeHost();
    const whole = await load('qwen2-bias-bf16', 'wasm', 'f32');
    const want = await logits(whole);
    whole.unload();
    const split = new Engine();
    await split.loadFiles(new DirModelFiles(modelDir('qwen2-bias-bf16')), { backend: 'wasm', weights: '16bit', vocabBlockBytes: 4 * 64 * 150 }); // 150 of 400 rows a block
    expect(split.current.model.embed.blockCount).toBe(3);
    expect(Array.from(await logits(split))).toEqual(Array.from(want));
    const { losses } = await train(split, 2, 1e-2);
    expect(losses[1]).toBeLessThan(losses[0]);
    split.unload();
  });
});

describe('auto', () => {
  it('keeps float32 wherever it fits, and packs only what WASM’s heap cannot hold', () => {
    expect(chooseWeightFormat(135e6, 'wasm', true).format).toBe('f32');
    expect(chooseWeightFormat(600e6, 'wasm', true).format).toBe('16bit'); // Qwen3-0.6B: 4.8 GB with XNNPACK's copies
    expect(chooseWeightFormat(1.54e9, 'wasm', true).format).toBe('16bit'); // Qwen2.5-1.5B: 3.1 GB
    expect(chooseWeightFormat(2.5e9, 'wasm', true).format).toBe('int8');
    expect(chooseWeightFormat(4e9, 'wasm', true).format).toBe('int4');
    expect(chooseWeightFormat(1.54e9, 'webgpu', true)).toMatchObject({ format: 'f32', reason: expect.stringContaining('choose 16-bit, int8 or int4') });
    expect(resolveWeightFormat('int4', 1.54e9, 'webgpu', false)).toMatchObject({ format: 'f32', reason: expect.stringContaining('int4 was asked for') });
    expect(chooseWeightFormat(1.54e9, 'cpu', true).format).toBe('f32');
  });
});
