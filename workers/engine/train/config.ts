// Training settings: separate from the model's architecture and the LoRA shape, each default with its reason.
import { InvalidRequestError } from '../errors';
import type { TrainOn } from './examples';

export type Schedule = 'cosine' | 'linear' | 'constant';

export interface TrainConfig {
  epochs: number; // 3: OpenAI's default for small fine-tuning sets
  maxSteps: number | null; // null: run every epoch; a number caps the optimizer steps
  learningRate: number; // 2e-4: the usual LoRA peak rate (PEFT and LLaMA-Factory examples)
  batchSize: number; // 4: fits SmolLM2-135M at 256 tokens in a browser tab
  gradAccum: number; // 1: raise it to grow the effective batch without more memory
  maxSeqLen: number; // 512: covers most chat examples; longer ones are truncated and counted
  warmupRatio: number; // 0.03: a short linear warm-up, as in HF Trainer recipes
  schedule: Schedule; // cosine: decays smoothly to zero by the last step
  weightDecay: number; // 0: PEFT's LoRA recipes do not decay adapters by default
  maxGradNorm: number; // 1.0: HF Trainer's clipping default
  beta1: number; // 0.9: Adam's default
  beta2: number; // 0.999: Adam's default
  epsilon: number; // 1e-8: Adam's default
  valSplit: number; // 0.1: a tenth held out to watch for over-fitting
  evalEvery: number; // 0: evaluate at each epoch's end only; N > 0 also every N steps
  earlyStoppingPatience: number; // 0: off; N stops after N evaluations without a better validation loss
  trainOn: TrainOn; // assistant: learn the answers, not the prompts
  seed: number; // 42: data order, split, LoRA init and dropout all follow it
  activationCheckpointing: boolean; // true: recompute each block in backward; far less memory for ~⅓ more compute
}

export const DEFAULT_TRAIN: TrainConfig = {
  epochs: 3,
  maxSteps: null,
  learningRate: 2e-4,
  batchSize: 4,
  gradAccum: 1,
  maxSeqLen: 512,
  warmupRatio: 0.03,
  schedule: 'cosine',
  weightDecay: 0,
  maxGradNorm: 1.0,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  valSplit: 0.1,
  evalEvery: 0,
  earlyStoppingPatience: 0,
  trainOn: 'assistant',
  seed: 42,
  activationCheckpointing: true,
};

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
