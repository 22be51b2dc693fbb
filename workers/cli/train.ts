// `train`: LoRA-tune a model on a chat JSONL file and write a PEFT adapter folder.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Engine } from '../engine/engine';
import { DiskFullError, InvalidRequestError } from '../engine/errors';
import { LORA_TARGETS, type LoraTarget } from '../engine/lora';
import type { TrainConfig } from '../engine/train/config';
import { decodeCheckpoint } from '../engine/train/checkpoint';
import { runSettings } from '../engine/export/llama-factory';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, RUN_SETTINGS } from '../engine/peft';
import { DirCheckpointStore, sweepOrphans, writeFilesAtomic } from '../node/dir-checkpoints';
import { resolveModelArg } from '../node/dir-files';
import { setupNodeHost } from '../node/host';
import { trackPeakBytes } from '../engine/memory-peak';
import { DEFAULT_LORA, DEFAULT_TRAIN, defaultLearningRate, DPO_LEARNING_RATE, TRAIN_METHODS } from '../shared/defaults';
import type { PreferenceMetrics, TrainMethod } from '../shared/types';
import { THREADS_HELP, WEIGHTS_HELP, weightsArg, backendArg, fillArg, number, parse, templateArg, threadsArg } from './args';
import { readDatasetFile } from './validate';

export const TRAIN_HELP = `
train options:
  --model <dir|url|hub-id>   the base model
  --data <file>              .jsonl or .json: OpenAI chat, Alpaca, ShareGPT, prompt/completion, {"text"}, or
                             preference pairs (OpenAI DPO, LLaMA-Factory ranking, TRL prompt/chosen/rejected)
  --format <name>            force the dataset format instead of detecting it
  --fill name=Value          put Value in place of {{name}} in the examples (repeatable)
  --method sft|dpo           sft learns the answers; dpo the preference pairs (default: dpo for preference data)
  --beta B                   DPO: how far the tuned model may move from the base (default ${DEFAULT_TRAIN.beta})
  --label-smoothing E        DPO: the share of pairs taken as mislabelled (default ${DEFAULT_TRAIN.labelSmoothing})
  --out <adapter-dir>        where the PEFT adapter (and checkpoints/) are written
  --epochs N  --max-steps N  --lr X  --batch-size B  --grad-accum K  --max-seq-len L
                             (--lr default: ${DEFAULT_TRAIN.learningRate} for sft, ${DPO_LEARNING_RATE} for dpo)
  --rank R  --alpha A  --dropout D  --targets q_proj,k_proj,...   (LoRA; default all seven)
  --val-split F              held-out fraction (default ${DEFAULT_TRAIN.valSplit})   --seed S (default ${DEFAULT_TRAIN.seed})
  --eval-every N             also evaluate every N steps (default: at each epoch's end)
  --early-stopping N         stop after N evaluations without a better validation loss, keeping the best
                             checkpoint's adapter (default ${DEFAULT_TRAIN.earlyStoppingPatience}; 0 = off)
  --resume <checkpoint>      continue the run in <out>: a checkpoint's name (epoch-3) or its .ckpt path
  --overwrite                replace the run already in <out> (its adapter is replaced only once the new one is written)
  --chat-template T          model (its own, the default), chatml, or none (base models: raw prompt/completion)
${WEIGHTS_HELP}
${THREADS_HELP}
  --backend wasm|cpu|webgpu  --json   one JSON object per step (DPO adds rewards/chosen, rewards/rejected,
                             rewards/accuracies, rewards/margins), then {"done": true, ...}
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
    overwrite: { type: 'boolean' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    weights: { type: 'string' },
    'chat-template': { type: 'string' },
    fill: { type: 'string', multiple: true },
    method: { type: 'string' },
    beta: { type: 'string' },
    'label-smoothing': { type: 'string' },
    'eval-every': { type: 'string' },
    'early-stopping': { type: 'string' },
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
  set('beta', number(v.beta, '--beta'));
  set('evalEvery', number(v['eval-every'], '--eval-every', true));
  set('earlyStoppingPatience', number(v['early-stopping'], '--early-stopping', true));
  set('labelSmoothing', number(v['label-smoothing'], '--label-smoothing'));
  if (v.method !== undefined && !(TRAIN_METHODS as readonly string[]).includes(v.method)) throw new InvalidRequestError(`--method must be ${TRAIN_METHODS.join(' or ')}, got "${v.method}".`);
  const lora = Object.fromEntries(
    Object.entries({ rank: number(v.rank, '--rank', true), alpha: number(v.alpha, '--alpha'), dropout: number(v.dropout, '--dropout'), targets: targets as LoraTarget[] | undefined }).filter(([, x]) => x !== undefined),
  );

  const data = await readDatasetFile(v.data!, v.format, fillArg(v.fill));
  train.method = (v.method as TrainMethod | undefined) ?? (data.report.format === 'preference' ? 'dpo' : 'sft');
  train.learningRate ??= defaultLearningRate(train.method);
  const errors = data.report.errors;
  for (const e of errors) process.stderr.write(`${v.data}:${e.line}: ${e.code}: ${e.message} (line skipped)\n`);
  const examples = data.examples.map((e) => e.example);
  if (examples.length === 0) throw new InvalidRequestError(`${v.data} has no usable example${errors.length ? ` (${errors.length} bad line(s), listed above)` : ''}.`);

  const out = v.out!;
  const runsDir = join(out, 'checkpoints');
  const existing = await existingRun(out);
  if (existing && !v.resume && !v.overwrite) {
    throw new InvalidRequestError(`${out} already holds a run (${existing}). Give --resume <checkpoint> to continue it, --overwrite to replace it (its adapter is kept until the new one is written), or another --out.`);
  }
  // Each run has its own id and folder (checkpoints/<run id>/), so no run overwrites or prunes another's
  // checkpoints; a resumed run keeps its id and folder.
  const resume = v.resume ? await resolveCheckpoint(runsDir, v.resume) : null;
  const runId = resume?.runId ?? `cli-${Date.now().toString(36)}`;
  const ckptDir = resume?.dir ?? join(runsDir, runId);

  setupNodeHost();
  threadsArg(v.threads);
  const memory = trackPeakBytes();
  const engine = new Engine({ checkpoints: () => new DirCheckpointStore(ckptDir, (file, why) => process.stderr.write(`warning: ${file} is not a readable checkpoint (${why}); skipped\n`)) });
  const template = templateArg(v['chat-template']);
  let info = await engine.loadFiles(await resolveModelArg(v.model!), { backend: backendArg(v.backend), weights: weightsArg(v.weights) });
  if (template) info = engine.setChatTemplate(template);
  const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
  for (const w of data.report.warnings) if (w.code === 'unfilled_placeholder') process.stderr.write(`${v.data}:${w.line}: warning: ${w.message}\n`);
  if (!v.json) process.stderr.write(`${info.id} on ${info.backend.name}${info.backend.threads ? ` (${info.backend.threads} thread(s))` : ''}, weights ${info.weights.format} (${info.weights.reason}): ${examples.length} ${train.method === 'dpo' ? 'preference pairs (DPO)' : 'examples'}\n`);
  const result = await engine.train({ examples, lora, train, runId, resumeFrom: resume?.name }, (e) => {
    if (e.type === 'steps') {
      for (const p of e.points) {
        if (v.json) say({ step: p.step, epoch: +p.epoch.toFixed(4), loss: p.loss, lr: p.lr, grad_norm: p.gradNorm, ...(p.accuracy !== undefined ? { mean_token_accuracy: p.accuracy } : {}), ...rewardKeys(p.rewards), total_steps: e.totalSteps, tokens_per_second: Math.round(e.tokensPerSecond) });
        else process.stderr.write(`step ${p.step}/${e.totalSteps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  |g| ${p.gradNorm.toFixed(3)}${p.accuracy !== undefined ? `  token accuracy ${(100 * p.accuracy).toFixed(1)}%` : ''}${p.rewards ? `  margin ${p.rewards.margin.toFixed(3)}  ranked right ${(100 * p.rewards.accuracy).toFixed(0)}%` : ''}  ${Math.round(e.tokensPerSecond)} tok/s\n`);
      }
    } else if (e.type === 'eval') {
      if (v.json) say({ step: e.step, val_loss: e.valLoss, perplexity: e.perplexity, accuracy: e.accuracy, ...rewardKeys(e.rewards, 'eval_') });
      else process.stderr.write(`eval at step ${e.step}: val loss ${e.valLoss.toFixed(4)}, perplexity ${e.perplexity.toFixed(2)}, ${e.rewards ? `pairs ranked right ${(100 * e.accuracy).toFixed(1)}%, margin ${e.rewards.margin.toFixed(3)}` : `accuracy ${(100 * e.accuracy).toFixed(1)}%`}\n`);
    } else if (e.type === 'checkpoint' && !v.json) process.stderr.write(`checkpoint ${e.meta.name} saved\n`);
    else if (e.type === 'warning') process.stderr.write(`warning: ${e.message}\n`);
  });
  await mkdir(out, { recursive: true });
  // All three files whole under temporary names, then renamed over the old ones: a full disk leaves the previous
  // adapter, its config and its settings as they were, never a new weights file beside an old config.
  const files = await engine.exportAdapter();
  const settings = runSettings(engine, info.id, { ...DEFAULT_TRAIN, ...train }, { ...DEFAULT_LORA, ...lora });
  await sweepOrphans(out);
  await writeFilesAtomic([
    [join(out, ADAPTER_WEIGHTS), files[ADAPTER_WEIGHTS]],
    [join(out, ADAPTER_CONFIG), files[ADAPTER_CONFIG]],
    [join(out, RUN_SETTINGS), new TextEncoder().encode(JSON.stringify(settings, null, 2) + '\n')],
  ]).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOSPC') throw e;
    throw new DiskFullError(`The adapter could not be written to ${out}: the disk is full. ${existing ? 'The adapter already there is unchanged. ' : ''}The run's checkpoints are in ${ckptDir}: free some space, then run again with --resume ${ckptDir}/<checkpoint>.ckpt to write it.`);
  });
  if (v.json) say({ done: true, adapter: out, train_loss: result.trainLoss, val_loss: result.valLoss, steps: result.steps, status: result.status, weights: info.weights.format, weight_bytes: info.tensorBytes, peak_bytes: memory.peak });
  else process.stderr.write(`${result.status} after ${result.steps} steps; adapter written to ${out}, checkpoints in ${ckptDir}\n`);
  engine.unload();
  return 0;
}

/** DPO's metrics under TRL's names (eval_rewards/… for evaluation, as TRL logs them); nothing for SFT. */
function rewardKeys(r: PreferenceMetrics | undefined, prefix = ''): Record<string, number> {
  if (!r) return {};
  return { [`${prefix}rewards/chosen`]: r.chosen, [`${prefix}rewards/rejected`]: r.rejected, [`${prefix}rewards/accuracies`]: r.accuracy, [`${prefix}rewards/margins`]: r.margin };
}

/** Every checkpoint under checkpoints/: in run folders (checkpoints/<run id>/) and, from older versions, loose. */
async function listCheckpoints(runsDir: string): Promise<{ name: string; dir: string; path: string }[]> {
  const found: { name: string; dir: string; path: string }[] = [];
  const entries = await readdir(runsDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isFile() && e.name.endsWith('.ckpt')) found.push({ name: e.name.slice(0, -5), dir: runsDir, path: join(runsDir, e.name) });
    if (!e.isDirectory()) continue;
    const dir = join(runsDir, e.name);
    for (const f of await readdir(dir).catch(() => [] as string[])) if (f.endsWith('.ckpt')) found.push({ name: f.slice(0, -5), dir, path: join(dir, f) });
  }
  return found;
}

/** What an --out folder already holds of a run, in words, or null when it holds none. */
async function existingRun(out: string): Promise<string | null> {
  const adapter = await stat(join(out, ADAPTER_CONFIG)).then(() => true, () => false);
  const ckpts = await listCheckpoints(join(out, 'checkpoints'));
  const parts = [adapter ? ADAPTER_CONFIG : '', ckpts.length ? `${ckpts.length} checkpoint${ckpts.length === 1 ? '' : 's'}` : ''].filter(Boolean);
  return parts.length ? parts.join(', ') : null;
}

/** --resume by name (epoch-3: the newest run that has it) or by path (…/checkpoints/<run>/epoch-3.ckpt); a miss
 * lists what exists. */
async function resolveCheckpoint(runsDir: string, arg: string): Promise<{ name: string; runId: string; dir: string }> {
  const all = await listCheckpoints(runsDir);
  let hit: (typeof all)[number] | undefined;
  if (arg.endsWith('.ckpt') || arg.includes('/')) {
    hit = all.find((c) => resolve(c.path) === resolve(arg));
    if (!hit) throw new InvalidRequestError(`--resume: ${arg} is not a checkpoint under ${runsDir}; a run resumes from its own --out folder. ${all.length ? `There: ${all.map((c) => c.path).join(', ')}.` : 'There are none there.'}`);
  } else {
    const named = all.filter((c) => c.name === arg);
    const mtimes = await Promise.all(named.map((c) => stat(c.path).then((x) => x.mtimeMs)));
    hit = named[mtimes.indexOf(Math.max(...mtimes))];
    if (!hit) {
      const have = [...new Set(all.map((c) => c.name))];
      throw new InvalidRequestError(`--resume: there is no checkpoint "${arg}" in ${runsDir}. ${have.length ? `It has: ${have.join(', ')}.` : 'It has none.'}`);
    }
  }
  try {
    const bytes = await readFile(hit.path);
    return { name: hit.name, dir: hit.dir, runId: decodeCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).meta.runId };
  } catch (e) {
    throw new InvalidRequestError(`--resume: ${hit.path} is not a readable checkpoint (${(e as Error).message}).`);
  }
}
