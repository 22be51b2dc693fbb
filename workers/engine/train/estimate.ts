// How long training would take here: a short real run measures tokens/s on this device for these settings;
// the dataset's tokens × epochs divided by it is the estimate.
import type { Engine } from '../engine';
import { InvalidRequestError } from '../errors';
import { LoraAdapter, validateLora } from '../lora';
import { validateTrain } from './config';
import { tokenizeExample, tokenizePair, type Example } from './examples';
import { Trainer } from './trainer';
import { DEFAULT_LORA, DEFAULT_TRAIN } from '../../shared/defaults';
import type { LoraConfig, TrainConfig, TrainingEstimate } from '../../shared/types';

/**
 * Training tokens/s for these settings, from one warm-up step and two timed ones on the first examples, with
 * a probe adapter of its own: the live adapter is not touched.
 */
export async function measureTrainingSpeed(engine: Engine, examples: Example[], train: Partial<TrainConfig> = {}, lora: Partial<LoraConfig> = {}): Promise<number> {
  const { model, tokenizer, id } = engine.current;
  if (engine.training) throw new InvalidRequestError('A training run is going on; measure speed before or after it.');
  const cfg = validateTrain({ ...DEFAULT_TRAIN, ...train, valSplit: 0, maxSteps: 3, epochs: 1000 });
  const loraCfg = validateLora({ ...DEFAULT_LORA, ...lora });
  const sample = examples.slice(0, cfg.batchSize * cfg.gradAccum * 3).map((e) => ('chosen' in e ? tokenizePair(tokenizer, e, cfg.maxSeqLen) : tokenizeExample(tokenizer, e, cfg.maxSeqLen, cfg.trainOn)));
  if (sample.length === 0) throw new InvalidRequestError('There is no example to measure with.');
  const probe = LoraAdapter.create(model.config, loraCfg, cfg.seed);
  const trainer = new Trainer(model, probe, sample, [], cfg, { runId: 'speed-probe', baseModel: id });
  try {
    await trainer.prepare(); // DPO's reference pass: once per run, not per step
    const step = async (s: number) => {
      const { metrics, tokens } = trainer.trainStep(s % trainer.stepsPerEpoch);
      await metrics.data();
      metrics.dispose();
      return tokens;
    };
    await step(0);
    const t0 = performance.now();
    const tokens = (await step(1)) + (await step(2));
    return (tokens * 1000) / (performance.now() - t0);
  } finally {
    trainer.dispose();
    probe.dispose();
  }
}

/** The estimate for training on `examples`: their tokens (cut at maxSeqLen) × epochs, less the validation split. */
export async function estimateTraining(engine: Engine, examples: Example[], train: Partial<TrainConfig>, lora: Partial<LoraConfig>): Promise<TrainingEstimate> {
  const tokensPerSecond = await measureTrainingSpeed(engine, examples, train, lora);
  const cfg = { ...DEFAULT_TRAIN, ...train };
  const tok = engine.current.tokenizer;
  const length = (e: Example) => {
    if (!('chosen' in e)) return Math.min(cfg.maxSeqLen, tokenizeExample(tok, e, Number.MAX_SAFE_INTEGER, cfg.trainOn).ids.length);
    const p = tokenizePair(tok, e, Number.MAX_SAFE_INTEGER);
    return Math.min(cfg.maxSeqLen, p.chosen.ids.length) + Math.min(cfg.maxSeqLen, p.rejected.ids.length);
  };
  const perEpoch = examples.reduce((n, e) => n + length(e), 0);
  const tokens = perEpoch * (1 - cfg.valSplit) * cfg.epochs;
  // DPO first reads every pair once with the adapter off (the reference): a forward pass alone, about a third of
  // a training step's forward + backward on the same tokens.
  const reference = cfg.method === 'dpo' ? perEpoch / 3 : 0;
  return { tokensPerSecond, tokens: Math.round(tokens), seconds: (tokens + reference) / tokensPerSecond };
}
