// Training settings: their checks and the learning-rate schedule (the type and defaults are in workers/shared/).
import { InvalidRequestError } from '../errors';
import { DEFAULT_TRAIN, TRAIN_METHODS } from '../../shared/defaults';
import type { Schedule, TrainConfig } from '../../shared/types';

export { DEFAULT_TRAIN };
export type { Schedule, TrainConfig };


export function validateTrain(c: TrainConfig): TrainConfig {
  const int = (v: number, name: string, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new InvalidRequestError(`${name} must be a whole number ≥ ${min}, got ${v}.`);
  };
  int(c.epochs, 'epochs', 1);
  if (c.maxSteps !== null) int(c.maxSteps, 'maxSteps', 1);
  int(c.batchSize, 'batch size', 1);
  int(c.gradAccum, 'gradient accumulation', 1);
  int(c.maxSeqLen, 'max sequence length', 2);
  int(c.evalEvery, 'evaluation interval', 0);
  int(c.earlyStoppingPatience, 'early-stopping patience', 0);
  if (!(c.learningRate > 0 && c.learningRate < 1)) throw new InvalidRequestError(`learning rate must be in (0, 1), got ${c.learningRate}.`);
  if (!(c.warmupRatio >= 0 && c.warmupRatio < 1)) throw new InvalidRequestError(`warm-up ratio must be in [0, 1), got ${c.warmupRatio}.`);
  if (!(c.valSplit >= 0 && c.valSplit < 1)) throw new InvalidRequestError(`validation split must be in [0, 1), got ${c.valSplit}.`);
  if (!(c.weightDecay >= 0)) throw new InvalidRequestError(`weight decay must be ≥ 0, got ${c.weightDecay}.`);
  if (!(c.maxGradNorm > 0)) throw new InvalidRequestError(`gradient clipping norm must be > 0, got ${c.maxGradNorm}.`);
  if (!(TRAIN_METHODS as readonly string[]).includes(c.method)) throw new InvalidRequestError(`method must be ${TRAIN_METHODS.join(' or ')}, got ${c.method}.`);
  if (!(c.beta > 0)) throw new InvalidRequestError(`DPO's beta must be > 0, got ${c.beta}.`);
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 0.5)) throw new InvalidRequestError(`DPO's label smoothing must be in [0, 0.5), got ${c.labelSmoothing}.`);
  if (!['cosine', 'linear', 'constant'].includes(c.schedule)) throw new InvalidRequestError(`schedule must be cosine, linear or constant, got ${c.schedule}.`);
  return c;
}

/** Learning rate at optimizer step `step` (0-based) of `total`: linear warm-up, then the schedule. */
export function learningRateAt(c: TrainConfig, step: number, total: number): number {
  const warmup = Math.ceil(c.warmupRatio * total);
  if (step < warmup) return (c.learningRate * (step + 1)) / (warmup + 1);
  if (c.schedule === 'constant') return c.learningRate;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (c.schedule === 'linear') return c.learningRate * Math.max(0, 1 - progress);
  return c.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
}
