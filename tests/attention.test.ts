// Causal attention (ops/attention.ts): tfjs's ops against a plain float64 loop, and the fused kernel's gradient
// (attentionGrad, written out by hand) against autograd through those ops and against finite differences of
// the loop. Grouped heads, a decode offset (fewer queries than keys), a sliding window and Gemma 2's cap.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../workers/engine/backend';
import { attention, attentionGrad, attentionOps, attentionRuns, ATTENTION, WASM_ATTENTION_MAX_ROWS, type AttentionAttrs } from '../workers/engine/ops/attention';
import * as tf from '../workers/engine/tf';
import { Rng } from '../workers/engine/sampling';

interface Case {
  B: number;
  T: number;
  S: number;
  H: number;
  KVH: number;
  D: number;
  attrs: AttentionAttrs;
}

const CASES: [string, Case][] = [
  ['grouped heads, causal', { B: 2, T: 5, S: 5, H: 4, KVH: 2, D: 8, attrs: { scale: 0.35, softcap: 0, window: 0 } }],
  ['decode offset (3 queries after 4 cached keys)', { B: 1, T: 3, S: 7, H: 3, KVH: 1, D: 4, attrs: { scale: 0.5, softcap: 0, window: 0 } }],
  ['sliding window of 3 with a soft cap', { B: 1, T: 6, S: 6, H: 2, KVH: 2, D: 4, attrs: { scale: 0.9, softcap: 2, window: 3 } }],
  ['one token, window shorter than the cache', { B: 1, T: 1, S: 9, H: 2, KVH: 1, D: 4, attrs: { scale: 0.5, softcap: 0, window: 4 } }],
];

const values = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => (rng.next() - 0.5) * 3);
};

/** The plain loop: out[b, t, h·D + d] in float64, q [B, T, H, D], k/v [B, S, KVH, D]. */
function reference(c: Case, q: Float64Array, k: Float64Array, v: Float64Array): Float64Array {
  const { B, T, S, H, KVH, D, attrs } = c;
  const out = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / (H / KVH));
        const pos = S - T + t;
        const scores: number[] = [];
        for (let s = 0; s < S; s++) {
          if (s > pos || (attrs.window > 0 && pos - s >= attrs.window)) continue;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[((b * T + t) * H + h) * D + d] * k[((b * S + s) * KVH + kv) * D + d];
          let z = dot * attrs.scale;
          if (attrs.softcap) z = attrs.softcap * Math.tanh(z / attrs.softcap);
          scores.push(s, z);
        }
        let max = -Infinity;
        for (let j = 1; j < scores.length; j += 2) max = Math.max(max, scores[j]);
        let sum = 0;
        for (let j = 1; j < scores.length; j += 2) sum += Math.exp(scores[j] - max);
        for (let j = 0; j < scores.length; j += 2) {
          const w = Math.exp(scores[j + 1] - max) / sum;
          for (let d = 0; d < D; d++) out[((b * T + t) * H + h) * D + d] += w * v[((b * S + scores[j]) * KVH + kv) * D + d];
        }
      }
  return out;
}

/** A case's q, k, v and an output gradient dy, in float64 and as tensors, from seeds `seed` … `seed` + 3. */
function caseInputs(c: Case, seed: number) {
  const { B, T, S, H, KVH, D } = c;
  const [q64, k64, v64, dy64] = [values(B * T * H * D, seed), values(B * S * KVH * D, seed + 1), values(B * S * KVH * D, seed + 2), values(B * T * H * D, seed + 3)];
  const q = tf.tensor4d(Float32Array.from(q64), [B, T, H, D]);
  const k = tf.tensor4d(Float32Array.from(k64), [B, S, KVH, D]);
  const v = tf.tensor4d(Float32Array.from(v64), [B, S, KVH, D]);
  const dy = tf.tensor3d(Float32Array.from(dy64), [B, T, H * D]);
  return { q64, k64, v64, dy64, q, k, v, dy };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('causal attention', () => {
  for (const [name, c] of CASES) {
    it(`${name}: ops equal the plain loop; the written-out gradient equals autograd and finite differences`, async () => {
      await selectBackend('cpu');
      const { B, T, H, D, attrs } = c;
      const before = tf.memory().numTensors;
      const { q64, k64, v64, dy64, q, k, v, dy } = caseInputs(c, 1);

      const out = tf.tidy(() => attentionOps(q, k, v, attrs));
      expect(out.shape).toEqual([B, T, H * D]);
      expect(maxDiff(await out.data(), reference(c, q64, k64, v64))).toBeLessThan(1e-5);

      const auto = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(attentionOps(a as tf.Tensor4D, b as tf.Tensor4D, d as tf.Tensor4D, attrs), dy)))([q, k, v]));
      const hand = attentionGrad(q, k, v, dy, attrs);
      for (let i = 0; i < 3; i++) {
        expect(hand[i].shape).toEqual(auto[i].shape);
        expect(maxDiff(await hand[i].data(), await auto[i].data())).toBeLessThan(1e-5);
      }

      // Central differences of Σ(reference · dy) in float64, for a few entries of each input.
      const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => reference(c, qq, kk, vv).reduce((s, x, i) => s + x * dy64[i], 0);
      const inputs = [q64, k64, v64];
      const eps = 1e-5;
      for (let i = 0; i < 3; i++) {
        const got = await hand[i].data();
        for (const at of [0, 3, inputs[i].length - 1]) {
          const plus = inputs.map((x, j) => (j === i ? x.map((y, n) => (n === at ? y + eps : y)) : x));
          const minus = inputs.map((x, j) => (j === i ? x.map((y, n) => (n === at ? y - eps : y)) : x));
          const fd = (loss(plus[0], plus[1], plus[2]) - loss(minus[0], minus[1], minus[2])) / (2 * eps);
          expect(Math.abs(got[at] - fd)).toBeLessThan(1e-4 * Math.max(1, Math.abs(fd)));
        }
      }
      tf.dispose([q, k, v, dy, out, ...auto, ...hand]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

// WASM's own kernel for a decoded token's few query rows (ops/attention.ts, registerAttentionLoop): the SIMD module's
// scores and values with the softmax between them where D is a multiple of 4, the plain loop otherwise; each against
// the float64 loop above, with a window that starts mid-cache, Gemma 2's cap, grouped heads and Gemma 3's head size.
const DECODE_CASES: [string, Case][] = [
  ['one token over 37 keys, grouped heads (SIMD)', { B: 1, T: 1, S: 37, H: 9, KVH: 3, D: 64, attrs: { scale: 0.125, softcap: 0, window: 0 } }],
  ['two sequences of 3 tokens, window 5, cap 2 (SIMD)', { B: 2, T: 3, S: 11, H: 4, KVH: 2, D: 8, attrs: { scale: 0.4, softcap: 2, window: 5 } }],
  ['one token over 300 keys, head size 256 (SIMD)', { B: 1, T: 1, S: 300, H: 2, KVH: 1, D: 256, attrs: { scale: 0.0625, softcap: 0, window: 0 } }],
  ['head size 6, not whole vectors (plain loop)', { B: 1, T: 2, S: 9, H: 4, KVH: 2, D: 6, attrs: { scale: 0.4, softcap: 3, window: 4 } }],
];

describe('causal attention, WASM kernel for few query rows', () => {
  for (const [name, c] of DECODE_CASES) {
    it(`${name}: equals the float64 loop, runs instead of the ops, and its gradient is the written-out one`, async () => {
      await selectBackend('wasm');
      const { attrs } = c;
      const before = tf.memory().numTensors;
      const { q64, k64, v64, q, k, v, dy } = caseInputs(c, 5);
      expect(attentionRuns(q)).toBe(true);
      const ran: string[] = [];
      const out = await tf.profile(() => attention(q, k, v, attrs)).then((p) => (ran.push(...p.kernelNames), p.result as tf.Tensor));
      expect(ran).toEqual([ATTENTION]); // one kernel, not the ops
      expect(maxDiff(await out.data(), reference(c, q64, k64, v64))).toBeLessThan(2e-6 * Math.max(1, ...(await out.data()).map(Math.abs)));
      const viaKernel = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(attention(a as tf.Tensor4D, b as tf.Tensor4D, d as tf.Tensor4D, attrs), dy)))([q, k, v]));
      const hand = attentionGrad(q, k, v, dy, attrs);
      for (let i = 0; i < 3; i++) expect(maxDiff(await viaKernel[i].data(), await hand[i].data())).toBeLessThan(1e-6);
      tf.dispose([q, k, v, dy, out, ...viaKernel, ...hand]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
  it('leaves many query rows (prefill, training) to the ops', async () => {
    await selectBackend('wasm');
    const q = tf.zeros([1, WASM_ATTENTION_MAX_ROWS + 1, 2, 4]) as tf.Tensor4D;
    expect(attentionRuns(q)).toBe(false);
    q.dispose();
  });
});
