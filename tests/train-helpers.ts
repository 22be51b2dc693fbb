import { DEFAULT_TRAIN, type TrainConfig } from '../workers/engine/train/config';
import { tokenizeExample, type Example } from '../workers/engine/train/examples';
import { LoraAdapter, LORA_TARGETS, type LoraConfig } from '../workers/engine/lora';
import { Trainer, type TrainerOptions } from '../workers/engine/train/trainer';
import type { Engine } from '../workers/engine/engine';

export const QA: [string, string][] = [
  ['What is the capital of France?', 'Paris is the capital of France.'],
  ['What color is the sky?', 'The sky is blue.'],
  ['How many legs does a spider have?', 'A spider has eight legs.'],
  ['Who wrote Hamlet?', 'Shakespeare wrote Hamlet.'],
  ['What do bees make?', 'Bees make honey.'],
  ['What is 2 plus 2?', 'Two plus two is four.'],
  ['Where do penguins live?', 'Penguins live in Antarctica.'],
  ['What is frozen water called?', 'Frozen water is ice.'],
];

export const chats = (pairs = QA): Example[] => pairs.map(([q, a]) => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }));

export function makeTrainer(engine: Engine, examples: Example[], train: Partial<TrainConfig>, lora: Partial<LoraConfig> = {}, opts: Partial<TrainerOptions> = {}, val: Example[] = []): Trainer {
  const { model, tokenizer, id } = engine.current;
  const cfg = { ...DEFAULT_TRAIN, ...train };
  const loraCfg: LoraConfig = { rank: 8, alpha: 16, dropout: 0, targets: [...LORA_TARGETS], rslora: false, ...lora };
  const adapter = LoraAdapter.create(model.config, loraCfg, cfg.seed);
  engine.setAdapter(adapter);
  const tok = (e: Example) => tokenizeExample(tokenizer, e, cfg.maxSeqLen, cfg.trainOn);
  return new Trainer(model, adapter, examples.map(tok), val.map(tok), cfg, { runId: 'test', baseModel: id, ...opts });
}
