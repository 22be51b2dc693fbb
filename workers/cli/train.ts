// `train`: LoRA-tune a model on a chat JSONL file and write a PEFT adapter folder.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine } from '../engine/engine';
import { InvalidRequestError } from '../engine/errors';
import { LORA_TARGETS, type LoraTarget } from '../engine/lora';
import type { TrainConfig } from '../engine/train/config';
import { DirCheckpointStore } from '../node/dir-checkpoints';
import { resolveModelArg } from '../node/dir-files';
import { setupNodeHost } from '../node/host';
import { backendArg, number, parse, templateArg } from './args';
import { readDatasetFile } from './validate';

export const TRAIN_HELP = `
train options:
  --model <dir|url|hub-id>   the base model
  --data <file>              .jsonl or .json: OpenAI chat, Alpaca, ShareGPT, prompt/completion or {"text"}
  --format <name>            force the dataset format instead of detecting it
  --out <adapter-dir>        where the PEFT adapter (and checkpoints/) are written
  --epochs N  --max-steps N  --lr X  --batch-size B  --grad-accum K  --max-seq-len L
  --rank R  --alpha A  --dropout D  --targets q_proj,k_proj,...   (LoRA; default all seven)
  --val-split F              held-out fraction (default 0.1)   --seed S
  --resume <checkpoint>      continue from <out>/checkpoints/<checkpoint>.ckpt
  --chat-template T          model (its own, the default), chatml, or none (base models: raw prompt/completion)
  --backend wasm|cpu|webgpu  --json   one JSON object per step, then {"done": true, ...}
`;

export async function runTrain(args: string[]): Promise<number> {
  const v = parse(args, {
    model: { type: 'string' },
    data: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    epochs: { type: 'string' },
    'max-steps': { type: 'string' },
    lr: { type: 'string' },
    rank: { type: 'string' },
    alpha: { type: 'string' },
    dropout: { type: 'string' },
    targets: { type: 'string' },
    'batch-size': { type: 'string' },
    'grad-accum': { type: 'string' },
    'max-seq-len': { type: 'string' },
    'val-split': { type: 'string' },
    seed: { type: 'string' },
    resume: { type: 'string' },
    backend: { type: 'string' },
    'chat-template': { type: 'string' },
    json: { type: 'boolean' },
  });
  for (const flag of ['model', 'data', 'out'] as const) if (!v[flag]) throw new InvalidRequestError(`--${flag} is required.`);
  const targets = v.targets?.split(',').map((t) => t.trim()).filter((t) => t !== ''); // a trailing comma is no target
  const badTarget = targets?.find((t) => !(LORA_TARGETS as readonly string[]).includes(t));
  if (badTarget) throw new InvalidRequestError(`--targets: "${badTarget}" is not one of ${LORA_TARGETS.join(', ')}.`);
  const train: Partial<TrainConfig> = {};
  const set = <K extends keyof TrainConfig>(k: K, val: TrainConfig[K] | undefined) => {
    if (val !== undefined) train[k] = val;
  };
  set('epochs', number(v.epochs, '--epochs', true));
  set('maxSteps', number(v['max-steps'], '--max-steps', true));
  set('learningRate', number(v.lr, '--lr'));
  set('batchSize', number(v['batch-size'], '--batch-size', true));
  set('gradAccum', number(v['grad-accum'], '--grad-accum', true));
  set('maxSeqLen', number(v['max-seq-len'], '--max-seq-len', true));
  set('valSplit', number(v['val-split'], '--val-split'));
  set('seed', number(v.seed, '--seed', true));
  const lora = Object.fromEntries(
    Object.entries({ rank: number(v.rank, '--rank', true), alpha: number(v.alpha, '--alpha'), dropout: number(v.dropout, '--dropout'), targets: targets as LoraTarget[] | undefined }).filter(([, x]) => x !== undefined),
  );

  const data = await readDatasetFile(v.data!, v.format);
  const errors = data.report.errors;
  for (const e of errors) process.stderr.write(`${v.data}:${e.line}: ${e.code}: ${e.message} (line skipped)\n`);
  const examples = data.examples.map((e) => e.example);
  if (examples.length === 0) throw new InvalidRequestError(`${v.data} has no usable example${errors.length ? ` (${errors.length} bad line(s), listed above)` : ''}.`);

  setupNodeHost();
  const out = v.out!;
  const engine = new Engine({ checkpoints: () => new DirCheckpointStore(join(out, 'checkpoints')) });
  const template = templateArg(v['chat-template']);
  let info = await engine.loadFiles(await resolveModelArg(v.model!), { backend: backendArg(v.backend) });
  if (template) info = engine.setChatTemplate(template);
  const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
  if (!v.json) process.stderr.write(`${info.id} on ${info.backend.name}: ${examples.length} examples\n`);
  const result = await engine.train({ examples, lora, train, runId: 'cli', resumeFrom: v.resume }, (e) => {
    if (e.type === 'steps') {
      for (const p of e.points) {
        if (v.json) say({ step: p.step, epoch: +p.epoch.toFixed(4), loss: p.loss, lr: p.lr, grad_norm: p.gradNorm, total_steps: e.totalSteps, tokens_per_second: Math.round(e.tokensPerSecond) });
        else process.stderr.write(`step ${p.step}/${e.totalSteps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  |g| ${p.gradNorm.toFixed(3)}  ${Math.round(e.tokensPerSecond)} tok/s\n`);
      }
    } else if (e.type === 'eval') {
      if (v.json) say({ step: e.step, val_loss: e.valLoss, perplexity: e.perplexity, accuracy: e.accuracy });
      else process.stderr.write(`eval at step ${e.step}: val loss ${e.valLoss.toFixed(4)}, perplexity ${e.perplexity.toFixed(2)}, accuracy ${(100 * e.accuracy).toFixed(1)}%\n`);
    } else if (e.type === 'checkpoint' && !v.json) process.stderr.write(`checkpoint ${e.meta.name} saved\n`);
  });
  await mkdir(out, { recursive: true });
  for (const [name, bytes] of Object.entries(await engine.exportAdapter())) await writeFile(join(out, name), bytes);
  if (v.json) say({ done: true, adapter: out, train_loss: result.trainLoss, val_loss: result.valLoss, steps: result.steps, status: result.status });
  else process.stderr.write(`${result.status} after ${result.steps} steps; adapter written to ${out}\n`);
  engine.unload();
  return 0;
}
