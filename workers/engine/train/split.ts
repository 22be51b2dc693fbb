// Deterministic train/validation split: the same seed gives the same split.
import { Rng } from '../sampling';
import { shuffle } from './examples';
import { validationCount } from '../../shared/defaults';

export function splitIndices(n: number, valFraction: number, seed: number): { train: number[]; val: number[] } {
  const order = Array.from({ length: n }, (_, i) => i);
  shuffle(order, new Rng((seed ^ 0x5bd1e995) >>> 0));
  const nVal = validationCount(n, valFraction);
  const val = order.slice(0, nVal).sort((a, b) => a - b);
  const train = order.slice(nVal).sort((a, b) => a - b);
  return { train, val };
}
