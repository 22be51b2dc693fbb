// Grouped-query causal attention up to (not including) o_proj: softmax(cap(q·kᵀ·scale) + mask)·v with the heads
// merged, from q [B, T, H, D] and k, v [B, S, KVH, D] (the layout the projections and the KV cache hold, so no
// transpose is needed before or after). Query t sits at position S − T + t; it sees key s when s ≤ its position
// and, with a window, when position − s < window. One kernel where one is registered (WebGPU:
// ops/attention-webgpu.ts; scores, mask, softmax and values in one pass, nothing [S]-sized written out; WASM:
// registerAttentionLoop below, its products in the SIMD module, for a decoded token's few query rows); tfjs's ops
// elsewhere. The kernel's gradient is the softmax's, written out in tfjs's ops (attentionGrad).
import * as tf from '../tf';
import { registerLoopKernel } from './backend-io';
import { matmul } from './matmul';
import { recording } from './own-tape';
import { simdKernelsOn } from './simd-module';
import { hasKernel } from './webgpu-program';

export const ATTENTION = 'WebtuneAttention';

export interface AttentionAttrs {
  scale: number; // on the scores q·k, before the cap
  softcap: number; // cap·tanh(score / cap) (Gemma 2); 0 = none
  window: number; // a sliding layer's reach in positions; 0 = every earlier position
  /** The k and v rows in use, from the first: S, the positions attended over. A KV cache (llama.ts) allots more rows
   * than it has filled; the rest are not read. All of them when absent. */
  keys?: number;
}

/**
 * Query rows (B·T) up to which WASM takes its own kernel: a decoded token (or a few), where tfjs's ops cost more in
 * bookkeeping and in their batched products' plain loop than the arithmetic (measured: 4× to 13× slower for one row
 * over 128 to 4,096 keys; BENCHMARKS.md, session 15). For more rows (prefill, training) XNNPACK's products in the ops are as fast or faster.
 */
export const WASM_ATTENTION_MAX_ROWS = 8;

/** Whether attention over q [B, T, H, D] runs the kernel here (else tfjs's ops). */
export function attentionRuns(q: tf.Tensor4D, backend = tf.getBackend()): boolean {
  return hasKernel(ATTENTION, backend) && (backend !== 'wasm' || q.shape[0] * q.shape[1] <= WASM_ATTENTION_MAX_ROWS);
}

/**
 * [B, T, H·D]: the fused kernel where it runs (attentionRuns), else `attentionOps`. The kernel reads the first `keys`
 * rows of a KV cache's k and v where they lie; the ops, and a gradient, take them sliced.
 */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, attrs: AttentionAttrs): tf.Tensor3D {
  const { keys = k.shape[1], ...rest } = attrs;
  const runs = attentionRuns(q);
  if (keys < k.shape[1] && (!runs || recording())) {
    const [B, , KVH, D] = k.shape;
    return attention(q, k.slice([0, 0, 0, 0], [B, keys, KVH, D]), v.slice([0, 0, 0, 0], [B, keys, KVH, D]), rest);
  }
  if (!runs) return attentionOps(q, k, v, rest);
  return tf.engine().runKernel(ATTENTION, { q, k, v }, { ...rest, keys } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}

// The pieces both the ops and the gradient use: the heads regrouped so that query head h meets key/value head
// floor(h / G) by a reshape ([B, H, T, D] is [B, KVH, G·T, D]), and the probabilities P [B, KVH, G·T, S].
function probabilities(q: tf.Tensor4D, k: tf.Tensor4D, attrs: AttentionAttrs) {
  const [B, T, H, D] = q.shape;
  const [, S, KVH] = k.shape;
  const G = H / KVH;
  const qg = q.transpose([0, 2, 1, 3]).reshape([B, KVH, G * T, D]); // [B, KVH, G·T, D]
  const kh = k.transpose([0, 2, 1, 3]); // [B, KVH, S, D]
  let c = tf.mul(matmul(qg, kh, false, true), attrs.scale); // [B, KVH, G·T, S]
  c = softcap(c, attrs.softcap);
  const mask = attentionMask(G, T, S, attrs.window);
  const p = tf.softmax(mask ? tf.add(c, mask) : c);
  return { qg, kh, c, p, G };
}

/** The attention in tfjs's ops: what backends without the kernel run, and what the kernel is checked against. */
export function attentionOps(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, attrs: AttentionAttrs): tf.Tensor3D {
  const [B, T, H, D] = q.shape;
  const { p } = probabilities(q, k, attrs);
  const att = matmul(p, v.transpose([0, 2, 1, 3])); // [B, KVH, G·T, D]
  return att.reshape([B, H, T, D]).transpose([0, 2, 1, 3]).reshape([B, T, H * D]) as tf.Tensor3D; // [B, T, H·D]
}

/**
 * Gradients of Σ(attention(q, k, v) · dy) for q, k and v, with P recomputed. With O = P·V and P = softmax(Z):
 * dV = Pᵀ·dO, dP = dO·Vᵀ, dZ = P ⊙ (dP − rowsum(dP ⊙ P)), through the cap's derivative 1 − (c/cap)² and the
 * scale; dQ = dZ·K, dK = dZᵀ·Q. Masked entries have P = 0, so they pass nothing back.
 */
export function attentionGrad(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, dy: tf.Tensor, attrs: AttentionAttrs): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  return tf.tidy(() => {
    const [B, T, H, D] = q.shape;
    const [, S, KVH] = k.shape;
    const { qg, kh, c, p, G } = probabilities(q, k, attrs);
    const dO = dy.reshape([B, T, H, D]).transpose([0, 2, 1, 3]).reshape([B, KVH, G * T, D]); // [B, KVH, G·T, D]
    const dV = matmul(p, dO, true, false); // [B, KVH, S, D]
    const dP = matmul(dO, v.transpose([0, 2, 1, 3]), false, true); // [B, KVH, G·T, S]
    let dZ = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
    if (attrs.softcap) dZ = tf.mul(dZ, tf.sub(1, tf.square(tf.div(c, attrs.softcap))));
    dZ = tf.mul(dZ, attrs.scale);
    const dQ = matmul(dZ, kh).reshape([B, H, T, D]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, T, H, D]
    const dK = matmul(dZ, qg, true, false).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, S, KVH, D]
    return [dQ, dK, dV.transpose([0, 2, 1, 3]) as tf.Tensor4D];
  });
}

/**
 * Additive mask [G·T, S], or null when every query may see every key: row r is query position
 * S − T + (r mod T); it sees key s when s ≤ that position and, with a window, position − s < window.
 */
function attentionMask(G: number, T: number, S: number, window: number): tf.Tensor2D | null {
  const offset = S - T;
  const slides = window > 0 && S > window;
  if (T === 1 && !slides) return null; // a single new token sees every cached one
  const m = new Float32Array(G * T * S);
  for (let r = 0; r < G * T; r++) {
    const pos = offset + (r % T);
    for (let s = 0; s < S; s++) if (s > pos || (window > 0 && pos - s >= window)) m[r * S + s] = -1e9;
  }
  return tf.tensor2d(m, [G * T, S]);
}

/** cap · tanh(x / cap) (Gemma's soft-capping, of attention scores here and of the final logits in llama.ts); x
 * itself when there is no cap (0 or null). */
export function softcap<T extends tf.Tensor>(x: T, cap: number | null): T {
  return cap ? (tf.mul(tf.tanh(tf.div(x, cap)), cap) as T) : x;
}

export function registerAttentionGradient(): void {
  tf.registerGradient({
    kernelName: ATTENTION,
    inputsToSave: ['q', 'k', 'v'],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v] = saved as tf.Tensor4D[];
      // One computation serves all three inputs (they share P and dZ). It runs here, not in the first closure
      // asked: tfjs runs each closure in its own tidy, which would free the other two results.
      const [dq, dk, dv] = attentionGrad(q, k, v, dy as tf.Tensor, attrs as unknown as AttentionAttrs);
      return { q: () => dq, k: () => dk, v: () => dv };
    },
  });
}

let scores = new Float64Array(256); // the plain loop's scores of one query row, reused (grown) across calls

/** The first and last key that query row t of T sees among S (causal, within the window). */
function visibleKeys(S: number, T: number, t: number, window: number): [number, number] {
  const pos = S - T + t;
  return [window > 0 ? Math.max(0, pos - window + 1) : 0, pos];
}

/**
 * The kernel on WASM: per query row and head, its scores against the keys it sees (scaled, capped), their softmax and
 * the weighted sum of the values. Keys a row never sees (later positions, past the window) are skipped, so nothing
 * is masked. The products run in the SIMD module (simd-kernels.wat) on the heap, the softmax in JS between them;
 * where the module does not serve (no SIMD, D not a multiple of 4), a plain loop in double precision.
 */
export function registerAttentionLoop(): void {
  registerLoopKernel<AttentionAttrs>(
    ATTENTION,
    ({ q }) => [q!.shape[0], q!.shape[1], q!.shape[2] * q!.shape[3]],
    ({ q, k, v }, out, { scale, softcap, window, keys }, shapes) => {
      const [B, T, H, D] = shapes.q!.shape;
      const [, rows, KVH] = shapes.k!.shape; // rows allotted per sequence; the first S in use
      const S = keys ?? rows;
      const G = H / KVH;
      const stride = KVH * D; // k, v [B, S, KVH, D]: one position to the next
      if (scores.length < S) scores = new Float64Array(S);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          const [first, last] = visibleKeys(S, T, t, window);
          for (let h = 0; h < H; h++) {
            const qAt = ((b * T + t) * H + h) * D; // q [B, T, H, D]; out [B, T, H·D] has the same layout
            const kvAt = (b * rows * KVH + Math.floor(h / G)) * D + first * stride;
            const count = last - first + 1;
            for (let j = 0; j < count; j++) {
              let dot = 0;
              for (let d = 0; d < D; d++) dot += q![qAt + d] * k![kvAt + j * stride + d];
              scores[j] = dot * scale;
            }
            softmaxCapped(scores, count, softcap);
            for (let d = 0; d < D; d++) out[qAt + d] = 0;
            for (let j = 0; j < count; j++) for (let d = 0; d < D; d++) out[qAt + d] += scores[j] * v![kvAt + j * stride + d];
          }
        }
    },
    {
      wasmOnly: true,
      onHeap: (at, outAt, { scale, softcap, window, keys }, shapes, heap) => {
        const [B, T, H, D] = shapes.q!.shape;
        const [, rows, KVH] = shapes.k!.shape;
        const S = keys ?? rows;
        const kernels = simdKernelsOn(heap.memory);
        if (!kernels || D % 4 !== 0) return false;
        const G = H / KVH;
        const stride = KVH * D * 4; // bytes from one position to the next
        return heap.withScratch(4 * S, (p) => {
          const probs = new Float32Array(heap.memory.buffer, p, S);
          for (let b = 0; b < B; b++)
            for (let t = 0; t < T; t++) {
              const [first, last] = visibleKeys(S, T, t, window);
              const count = last - first + 1;
              for (let h = 0; h < H; h++) {
                const row = 4 * ((b * T + t) * H + h) * D;
                const kv = 4 * (b * rows * KVH + Math.floor(h / G)) * D + first * stride;
                kernels.scores(at.q! + row, at.k! + kv, stride, D, count, p, scale);
                softmaxCapped(probs, count, softcap);
                kernels.values(p, at.v! + kv, stride, D, count, outAt + row);
              }
            }
          return true;
        });
      },
    },
  );
}

/** The first `count` scores capped (cap · tanh(z / cap), when a cap is set) and turned into their softmax, in place. */
function softmaxCapped(z: Float32Array | Float64Array, count: number, cap: number): void {
  let max = -Infinity;
  for (let j = 0; j < count; j++) {
    if (cap) z[j] = cap * Math.tanh(z[j] / cap);
    if (z[j] > max) max = z[j];
  }
  let sum = 0;
  for (let j = 0; j < count; j++) sum += z[j] = Math.exp(z[j] - max);
  for (let j = 0; j < count; j++) z[j] /= sum;
}
