// Next-token choice on the CPU from one row of logits: temperature, then top-k, then top-p, as transformers
// orders its logits warpers. Seeded, so the same seed gives the same text on the same backend.

export interface SamplingOptions {
  temperature: number; // 0 = greedy
  topK: number; // 0 = no limit
  topP: number; // 1 = no limit
}

/** mulberry32: a small, fast 32-bit PRNG; state is one integer, so it can be saved and restored. */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function sample(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  if (opts.temperature <= 0 || opts.topK === 1) return argmax(logits);
  const n = logits.length;
  let order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  if (opts.topK > 0 && opts.topK < n) order = order.slice(0, opts.topK);
  const max = logits[order[0]];
  const probs = order.map((i) => Math.exp((logits[i] - max) / opts.temperature));
  const sum = probs.reduce((a, b) => a + b, 0);
  let keep = probs.length;
  if (opts.topP < 1) {
    // Smallest prefix whose mass reaches top_p (at least one token).
    let acc = 0;
    for (let i = 0; i < probs.length; i++) {
      acc += probs[i] / sum;
      if (acc >= opts.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = probs.slice(0, keep);
  const keptSum = kept.reduce((a, b) => a + b, 0);
  let u = rng.next() * keptSum;
  for (let i = 0; i < keep; i++) {
    u -= kept[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}
