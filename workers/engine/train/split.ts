// Deterministic train/validation split: the same seed gives the same split.
import { Rng } from '../sampling';
import { shuffle } from './examples';

export function splitIndices(n: number, valFraction: number, seed: number): { train: number[]; val: number[] } {
  const order = Array.from({ length: n }, (_, i) => i);
  shuffle(order, new Rng((seed ^ 0x5bd1e995) >>> 0));
  let nVal = Math.round(n * valFraction);
  if (valFraction > 0 && n >= 2) nVal = Math.max(1, Math.min(n - 1, nVal)); // both sides keep at least one
  const val = order.slice(0, nVal).sort((a, b) => a - b);
  const train = order.slice(nVal).sort((a, b) => a - b);
  return { train, val };
}
