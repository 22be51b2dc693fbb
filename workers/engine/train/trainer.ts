// The LoRA training loop: seeded batches, one forward and one backward per micro-batch, gradient
// accumulation, clipping, AdamW, evaluation, early stopping, checkpoints, pause/resume/cancel. The method
// (cfg.method) decides what a unit of data is and what is minimized: an example and its answers' cross-entropy
// (sft), or a preference pair — its two sequences side by side in one batch — and DPO's loss (dpo).
// Metrics stay on the device until a progress report is due; then they are read back together.
// `run` is a loop over four phases sharing one RunState: step, report, evaluate, checkpoint.
import * as tf from '../tf';
import { InvalidRequestError, WebtuneError } from '../errors';
import { isQuotaError } from '../source';
import type { LlamaModel } from '../llama';
import type { LoraAdapter } from '../lora';
import { Rng } from '../sampling';
import { checkpointsToPrune, checkResumable, decodeCheckpoint, encodeCheckpoint, restoreTraining, trainingTensors, type CheckpointMeta, type CheckpointStore, type RunIdentity, type TrainState } from './checkpoint';
import { learningRateAt, type TrainConfig } from './config';
import { collate, epochBatches, trainedCount, type Batch, type TokenizedExample, type TokenizedPair } from './examples';
import { dpoSums, dpoTerms, sequenceLogProbs } from './dpo';
import { chunkedLmEval, chunkedLmLoss, chunkRowsFor } from './lm-loss';
import { AdamW } from './optimizer';
import { sumTensors } from '../ops/sum-tensors';
import type { EvalResult, StepPoint, TrainEvent, TrainSummary } from '../../shared/types';

export type { EvalResult, StepPoint, TrainEvent, TrainSummary };

/** The loss or gradient became NaN or infinite. The adapter is as of the last good step. */
export class NonFiniteError extends WebtuneError {
  override name = 'NonFiniteError';
}

/** Pause, resume and cancel, set from outside while `run` awaits. */
export class TrainControl {
  paused = false;
  cancelled = false;
  /** Set when the work must end with an error (the GPU device was lost); the loop throws it. */
  failure: Error | null = null;
  private wake: (() => void) | null = null;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    this.wake?.();
  }
  cancel(): void {
    this.cancelled = true;
    this.wake?.();
  }
  fail(e: Error): void {
    this.failure = e;
    this.wake?.();
  }
  /** Throw the failure, if any: called before each step and before each checkpoint write. */
  check(): void {
    if (this.failure) throw this.failure;
  }
  async waitWhilePaused(): Promise<void> {
    while (this.paused && !this.cancelled && !this.failure) await new Promise<void>((r) => (this.wake = r));
    this.wake = null;
  }
}

export interface TrainerOptions {
  runId: string;
  baseModel: string;
  store?: CheckpointStore;
  identity?: RunIdentity; // recorded in every checkpoint; a resume from a checkpoint of another run is refused
  progressIntervalMs?: number; // at most this often a 'steps' report (default 250)
  logEvery?: number; // also report every N steps (default: time-based only)
}

/** What one call of `run` carries between its phases. */
interface RunState {
  readonly started: number;
  readonly startStep: number; // the step this call began at (a resumed run's checkpoint step): ETA counts from it
  readonly onEvent: (e: TrainEvent) => void;
  readonly control: TrainControl;
  pending: { step: number; lr: number; metrics: tf.Tensor1D }[]; // steps not yet read back: [loss, |g|] (+ DPO's 4 rewards)
  lastReport: number;
  tokens: number; // seen since tokenClock (reset after a pause, so tokens/s is of training time only)
  tokenClock: number;
  lastEval: EvalResult | null;
  best: string | null; // the "best" checkpoint's name, once saved
}

const yieldToEvents = () => new Promise<void>((r) => setTimeout(r, 0));

function seedFor(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
  return new Rng(h).next() * 2 ** 31;
}

/** What the trainer steps over: one example (sft), or a pair's chosen and rejected sequences (dpo). */
type Unit = readonly TokenizedExample[];
const unitsOf = (xs: readonly (TokenizedExample | TokenizedPair)[]): Unit[] => xs.map((x) => ('chosen' in x ? [x.chosen, x.rejected] : [x]));

export class Trainer {
  readonly optimizer: AdamW;
  readonly state: TrainState = { step: 0, adamT: 0, bestValLoss: null, evalsWithoutImprovement: 0 };
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  private readonly chunkRows: number;
  private readonly lengths: number[];
  private readonly units: Unit[];
  private readonly valUnits: Unit[];
  /** DPO: the reference log-probabilities (adapter off) of each unit's sequences, computed once by prepare(). */
  private reference: { train: Float32Array; val: Float32Array } | null = null;
  private lastTrainLoss: number | null = null;
  private control: TrainControl | null = null;
  private epochOrder: { epoch: number; batches: number[][] } | null = null;
  /** The checkpoint this run continued from: retention never deletes it. */
  private resumedFrom: string | null = null;
  /** The newest checkpoint saved by this run (or the one it resumed from): where to go on from after a failure. */
  private lastSaved: string | null = null;

  constructor(
    readonly model: LlamaModel,
    readonly adapter: LoraAdapter,
    train: readonly (TokenizedExample | TokenizedPair)[],
    val: readonly (TokenizedExample | TokenizedPair)[],
    readonly cfg: TrainConfig,
    readonly opts: TrainerOptions,
  ) {
    if (train.length === 0) throw new InvalidRequestError('There is no training example to learn from.');
    this.units = unitsOf(train);
    this.valUnits = unitsOf(val);
    const per = cfg.method === 'dpo' ? 2 : 1;
    if ([...this.units, ...this.valUnits].some((u) => u.length !== per)) {
      throw new InvalidRequestError(cfg.method === 'dpo' ? 'DPO trains on preference pairs (a chosen and a rejected answer); these examples have single answers. Train them with SFT.' : 'These are preference pairs; train them with the DPO method.');
    }
    this.optimizer = new AdamW(adapter.variables(), cfg);
    const batches = Math.ceil(train.length / cfg.batchSize);
    this.stepsPerEpoch = Math.ceil(batches / cfg.gradAccum);
    this.totalSteps = Math.min(cfg.maxSteps ?? Infinity, cfg.epochs * this.stepsPerEpoch);
    this.chunkRows = chunkRowsFor(model.config.vocabSize);
    this.lengths = this.units.map((u) => Math.max(...u.map((e) => e.ids.length)));
  }

  /** DPO: compute the reference log-probabilities of every pair (train and validation) once; SFT: nothing. Run
   * before trainStep (run() calls it). */
  async prepare(): Promise<void> {
    if (this.cfg.method !== 'dpo' || this.reference) return;
    this.reference = { train: await this.referenceLogProbs(this.units), val: await this.referenceLogProbs(this.valUnits) };
  }

  /** log ref(answer | prompt) of each unit's sequences, in unit order: the base model, adapter off (scale 0). */
  private async referenceLogProbs(units: Unit[]): Promise<Float32Array> {
    const out = new Float32Array(units.length * 2);
    for (let s = 0; s < units.length; s += this.cfg.batchSize) {
      const idx = Array.from({ length: Math.min(this.cfg.batchSize, units.length - s) }, (_, k) => s + k);
      const b = collate(idx.flatMap((i) => units[i]));
      const logp = tf.tidy(() => sequenceLogProbs(this.model, b, { adapter: this.adapter, loraScale: 0 }, this.chunkRows));
      out.set((await logp.data()) as Float32Array, s * 2);
      logp.dispose();
    }
    return out;
  }

  /** The reference log-probabilities of these units' sequences, as their batch orders them. */
  private referenceOf(units: number[], which: 'train' | 'val'): Float32Array {
    if (!this.reference) throw new Error('Trainer.prepare() must run before a DPO step.');
    const all = this.reference[which];
    const out = new Float32Array(units.length * 2);
    units.forEach((u, k) => out.set(all.subarray(u * 2, u * 2 + 2), k * 2));
    return out;
  }

  /** The micro-batches of optimizer step `step` (0-based), with the units each holds. */
  microBatches(step: number): { batch: Batch; units: number[] }[] {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const k = step % this.stepsPerEpoch;
    if (this.epochOrder?.epoch !== epoch) this.epochOrder = { epoch, batches: epochBatches(this.units.length, this.cfg.batchSize, this.cfg.seed, epoch, this.lengths) };
    const order = this.epochOrder.batches;
    return order.slice(k * this.cfg.gradAccum, (k + 1) * this.cfg.gradAccum).map((idx) => ({ batch: collate(idx.flatMap((i) => this.units[i])), units: idx }));
  }

  /**
   * One micro-batch's loss divided by `normalizer` (scalar, differentiable in the LoRA weights): Σ weighted token
   * losses (sft, with Σ correct predictions kept in `extras`), or Σ pair losses (dpo), whose sums of DPO metrics are kept in `extras` ([5], see dpoSums).
   */
  private batchLoss(b: Batch, units: number[], normalizer: number, dropoutSeed: number, extras: tf.Tensor1D[]): tf.Scalar {
    const pass = { adapter: this.adapter, dropout: { rate: this.adapter.config.dropout, seed: dropoutSeed }, checkpointing: this.cfg.activationCheckpointing };
    if (this.cfg.method === 'dpo') {
      const terms = dpoTerms(sequenceLogProbs(this.model, b, pass, this.chunkRows), this.referenceOf(units, 'train'), this.cfg.beta, this.cfg.labelSmoothing);
      extras.push(tf.keep(dpoSums(terms)));
      return tf.div(tf.sum(terms.loss), normalizer) as tf.Scalar;
    }
    const hidden = this.model.forward(tf.tensor2d(b.ids, [b.B, b.T], 'int32'), pass); // [B, T, C]
    // Σ correct next-token predictions, for the step's token accuracy beside its loss
    const sum = chunkedLmLoss(hidden.reshape([b.B * b.T, -1]), this.model.head(), b.targets, b.weights, this.chunkRows, this.model.config.finalSoftcap, (c) => extras.push(tf.keep(c.reshape([1]))));
    return tf.div(sum, normalizer) as tf.Scalar;
  }

  /** One optimizer step. Returns kept [loss, gradNorm, token accuracy] (DPO: [loss, gradNorm] then rewards chosen, rejected, accuracy, margin) for
   * later reading, and the tokens it saw. */
  trainStep(step: number): { metrics: tf.Tensor1D; tokens: number } {
    const micro = this.microBatches(step);
    const dpo = this.cfg.method === 'dpo';
    // The step's mean: over trained tokens (sft) or pairs (dpo).
    const normalizer = Math.max(1, micro.reduce((n, { batch, units }) => n + (dpo ? units.length : batch.trained), 0));
    const vars = this.adapter.variables();
    let accum: tf.Tensor[] | null = null;
    let loss: tf.Tensor = tf.scalar(0);
    const extras: tf.Tensor1D[] = [];
    for (const [m, { batch: b, units }] of micro.entries()) {
      const { value, grads } = tf.variableGrads(() => this.batchLoss(b, units, normalizer, seedFor(this.cfg.seed, step, m), extras), vars);
      const g = vars.map((v) => grads[v.name]);
      if (accum === null) accum = g;
      else {
        const sum: tf.Tensor[] = accum.map((a, i) => tf.add(a, g[i]));
        accum.forEach((t) => t.dispose());
        g.forEach((t) => t.dispose());
        accum = sum;
      }
      const l = tf.add(loss, value);
      loss.dispose();
      value.dispose();
      loss = l;
    }
    const lr = learningRateAt(this.cfg, step, this.totalSteps);
    const norm = this.optimizer.step(accum!, lr);
    const metrics = tf.tidy(() => {
      const base = tf.stack([loss, norm]) as tf.Tensor1D;
      if (!dpo) return tf.concat([base, tf.div(sumTensors(extras), normalizer)]) as tf.Tensor1D; // + token accuracy
      // rewards: chosen, rejected, accuracy, margin — each a mean over the step's pairs
      return tf.concat([base, tf.div(sumTensors(extras), normalizer).slice([1], [4])]) as tf.Tensor1D;
    });
    extras.forEach((t) => t.dispose());
    accum!.forEach((t) => t.dispose());
    loss.dispose();
    norm.dispose();
    this.state.step = step + 1;
    this.state.adamT = this.optimizer.t;
    return { metrics, tokens: micro.reduce((n, { batch }) => n + batch.tokens, 0) };
  }

  /** Validation loss, perplexity and next-token accuracy over the held-out examples; DPO: over the held-out
   * pairs, the DPO loss, the share ranked right, the chosen answers' perplexity and the rewards. */
  async evaluate(): Promise<EvalResult | null> {
    if (this.valUnits.length === 0) return null;
    if (this.cfg.method === 'dpo') return this.evaluatePairs();
    const val = this.valUnits.map((u) => u[0]);
    const order = val.map((_, i) => i).sort((a, b) => val[a].ids.length - val[b].ids.length);
    let total = tf.zeros([2]);
    let count = 0;
    for (let s = 0; s < order.length; s += this.cfg.batchSize) {
      const b = collate(order.slice(s, s + this.cfg.batchSize).map((i) => val[i]));
      count += b.trained;
      const part = tf.tidy(() => {
        const hidden = this.model.forward(tf.tensor2d(b.ids, [b.B, b.T], 'int32'), { adapter: this.adapter });
        return chunkedLmEval(hidden.reshape([b.B * b.T, -1]) as tf.Tensor2D, this.model.head(), b.targets, b.weights, this.chunkRows, this.model.config.finalSoftcap);
      });
      const next = tf.add(total, part);
      total.dispose();
      part.dispose();
      total = next;
    }
    const [nll, correct] = await total.data();
    total.dispose();
    const valLoss = count > 0 ? nll / count : NaN;
    return { step: this.state.step, valLoss, perplexity: Math.exp(valLoss), accuracy: count > 0 ? correct / count : NaN };
  }

  private async evaluatePairs(): Promise<EvalResult> {
    await this.prepare();
    const P = this.valUnits.length;
    let total = tf.zeros([6]); // the five dpoSums, then Σ −log π of the chosen answers
    for (let s = 0; s < P; s += this.cfg.batchSize) {
      const units = Array.from({ length: Math.min(this.cfg.batchSize, P - s) }, (_, k) => s + k);
      const b = collate(units.flatMap((i) => this.valUnits[i]));
      const part = tf.tidy(() => {
        const logp = sequenceLogProbs(this.model, b, { adapter: this.adapter }, this.chunkRows); // [2P]
        const sums = dpoSums(dpoTerms(logp, this.referenceOf(units, 'val'), this.cfg.beta, this.cfg.labelSmoothing));
        const chosenNll = tf.neg(tf.sum(tf.gather(logp, tf.tensor1d(units.map((_, k) => 2 * k), 'int32'))));
        return tf.concat([sums, chosenNll.reshape([1])]);
      });
      const next = tf.add(total, part);
      total.dispose();
      part.dispose();
      total = next;
    }
    const [loss, chosen, rejected, right, margin, chosenNll] = await total.data();
    total.dispose();
    const chosenTokens = this.valUnits.reduce((n, u) => n + trainedCount(u[0]), 0);
    const rewards = { chosen: chosen / P, rejected: rejected / P, accuracy: right / P, margin: margin / P };
    return { step: this.state.step, valLoss: loss / P, perplexity: Math.exp(chosenNll / Math.max(1, chosenTokens)), accuracy: rewards.accuracy, rewards };
  }

  async run(onEvent: (e: TrainEvent) => void, control = new TrainControl()): Promise<TrainSummary> {
    this.control = control;
    const now = performance.now();
    const run: RunState = { started: now, startStep: this.state.step, onEvent, control, pending: [], lastReport: now, tokens: 0, tokenClock: now, lastEval: null, best: null };
    let status: TrainSummary['status'] = 'done';
    try {
      await this.prepare();
      while (this.state.step < this.totalSteps) {
        if (control.paused) await this.pausePhase(run);
        control.check();
        if (control.cancelled) {
          status = 'cancelled';
          break;
        }
        const { evalDue, epochEnd } = await this.stepPhase(run);
        control.check();
        const stop = evalDue && (await this.evaluatePhase(run));
        if (epochEnd && !stop) await this.checkpoint(`epoch-${Math.ceil(this.state.step / this.stepsPerEpoch)}`, run.lastEval?.valLoss ?? null, onEvent);
        if (stop) {
          status = 'early-stopped';
          break;
        }
      }
      await this.reportPhase(run);
    } finally {
      for (const p of run.pending) p.metrics.dispose();
    }
    if (status === 'early-stopped' && run.best && this.opts.store) {
      await this.restore(await this.opts.store.load(run.best)); // keep the best adapter, not the last
    }
    return {
      status,
      steps: this.state.step,
      trainLoss: this.lastTrainLoss,
      valLoss: status === 'early-stopped' ? this.state.bestValLoss : (run.lastEval?.valLoss ?? null),
      bestCheckpoint: run.best,
      seconds: (performance.now() - run.started) / 1000,
    };
  }

  // Step: one optimizer step, its metrics left on the device; a report when one is due.
  private async stepPhase(run: RunState): Promise<{ evalDue: boolean; epochEnd: boolean }> {
    const step = this.state.step;
    const lr = learningRateAt(this.cfg, step, this.totalSteps);
    const { metrics, tokens } = this.trainStep(step);
    run.tokens += tokens;
    run.pending.push({ step, lr, metrics });
    const done = this.state.step;
    const epochEnd = done % this.stepsPerEpoch === 0 || done === this.totalSteps;
    const evalDue = (this.cfg.evalEvery > 0 && done % this.cfg.evalEvery === 0) || epochEnd;
    const logDue = this.opts.logEvery !== undefined && done % this.opts.logEvery === 0;
    if (evalDue || logDue || performance.now() - run.lastReport >= (this.opts.progressIntervalMs ?? 250)) {
      await this.reportPhase(run);
      await yieldToEvents(); // let pause/cancel messages in
    }
    return { evalDue, epochEnd };
  }

  // Pause: report what is pending, wait, and restart the tokens/s clock.
  private async pausePhase(run: RunState): Promise<void> {
    await this.reportPhase(run);
    run.onEvent({ type: 'status', status: 'paused' });
    await run.control.waitWhilePaused();
    run.onEvent({ type: 'status', status: 'running' });
    run.tokenClock = performance.now();
    run.tokens = 0;
  }

  // Report: read the pending steps' metrics back together and send them; a non-finite one ends the run.
  private async reportPhase(run: RunState): Promise<void> {
    if (run.pending.length === 0) return;
    const points: StepPoint[] = [];
    let bad: StepPoint | null = null;
    for (const p of run.pending) {
      const m = await p.metrics.data();
      p.metrics.dispose();
      const [loss, gradNorm] = m;
      const point: StepPoint = { step: p.step + 1, epoch: (p.step + 1) / this.stepsPerEpoch, loss, lr: p.lr, gradNorm };
      if (this.cfg.method === 'dpo') point.rewards = { chosen: m[2], rejected: m[3], accuracy: m[4], margin: m[5] };
      else point.accuracy = m[2];
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) bad ??= point;
      points.push(point);
    }
    run.pending = [];
    const now = performance.now();
    const tps = (run.tokens * 1000) / Math.max(1, now - run.tokenClock);
    const stepsLeft = this.totalSteps - this.state.step;
    // Time per step of this call only: after a resume from step 50, elapsed time over 50 + n steps made the ETA far too short.
    const perStep = (now - run.started) / Math.max(1, points[points.length - 1].step - run.startStep);
    run.onEvent({ type: 'steps', points, totalSteps: this.totalSteps, tokensPerSecond: tps, etaSeconds: (stepsLeft * perStep) / 1000 });
    run.lastReport = now;
    const good = points.filter((p) => Number.isFinite(p.loss));
    if (good.length) this.lastTrainLoss = good[good.length - 1].loss;
    if (bad) {
      throw new NonFiniteError(
        `Training stopped at step ${bad.step}: the ${Number.isFinite(bad.loss) ? 'gradient' : 'loss'} became ${Number.isNaN(bad.loss) || Number.isNaN(bad.gradNorm) ? 'NaN' : 'infinite'}. ` +
          `That step was not applied and saved checkpoints are intact. Lower the learning rate or check the data, then ${this.lastSaved ? `resume from checkpoint ${this.lastSaved}` : 'start again (no checkpoint was saved yet)'}.`,
      );
    }
  }

  // Evaluate: validation metrics, the "best" checkpoint when they improve; true when early stopping is due.
  private async evaluatePhase(run: RunState): Promise<boolean> {
    const r = await this.evaluate();
    if (!r) return false;
    run.lastEval = r;
    run.onEvent({ type: 'eval', ...r });
    const improved = this.state.bestValLoss === null || r.valLoss < this.state.bestValLoss;
    if (improved) {
      this.state.bestValLoss = r.valLoss;
      this.state.evalsWithoutImprovement = 0;
      if (this.cfg.earlyStoppingPatience > 0) run.best = (await this.checkpoint('best', r.valLoss, run.onEvent)).name;
    } else this.state.evalsWithoutImprovement++;
    return this.cfg.earlyStoppingPatience > 0 && this.state.evalsWithoutImprovement >= this.cfg.earlyStoppingPatience;
  }

  /** Serialize adapter, optimizer and state. */
  async serialize(name: string, valLoss: number | null): Promise<{ meta: CheckpointMeta; bytes: Uint8Array }> {
    const tensors = await trainingTensors(this.adapter, this.optimizer);
    const meta: CheckpointMeta = {
      name,
      runId: this.opts.runId,
      step: this.state.step,
      epoch: this.state.step / this.stepsPerEpoch,
      trainLoss: this.lastTrainLoss,
      valLoss,
      createdAt: new Date().toISOString(),
      baseModel: this.opts.baseModel,
      lora: this.adapter.config,
      train: this.cfg,
      state: { ...this.state },
      ...(this.opts.identity ? { identity: this.opts.identity } : {}),
    };
    return { meta, bytes: encodeCheckpoint(meta, tensors) };
  }

  // Checkpoint: save, then prune by the retention policy (the new one first: never fewer good ones than before).
  private async checkpoint(name: string, valLoss: number | null, onEvent: (e: TrainEvent) => void): Promise<CheckpointMeta> {
    const { meta, bytes } = await this.serialize(name, valLoss);
    this.control?.check(); // nothing read back from a lost GPU device is ever saved
    const store = this.opts.store;
    if (!store) return meta;
    try {
      await store.save(meta, bytes);
    } catch (e) {
      if (!isQuotaError(e)) throw e;
      // Storage full: training goes on; the checkpoints already stored are untouched.
      const full = (e as { code?: unknown }).code === 'ENOSPC' ? 'the disk is full' : "this site's storage is full";
      onEvent({ type: 'warning', message: `Checkpoint ${name} was not saved: ${full}. Training continues and earlier checkpoints are intact; free some space (delete cached models, runs, datasets or files) to make room.` });
      return meta;
    }
    onEvent({ type: 'checkpoint', meta });
    if (name !== 'best') this.lastSaved = name;
    const keep = new Set(this.resumedFrom ? [this.resumedFrom] : []);
    for (const old of checkpointsToPrune(await store.list(), this.opts.runId, keep)) await store.delete(old);
    return meta;
  }

  /** Continue from a checkpoint of this run's shape: adapter, moments, step and best loss. */
  async restore(bytes: Uint8Array): Promise<CheckpointMeta> {
    const checkpoint = decodeCheckpoint(bytes);
    const { meta } = checkpoint;
    if (this.opts.identity) checkResumable(meta, this.opts.identity, this.adapter.config, this.cfg);
    restoreTraining(checkpoint, this.adapter, this.optimizer);
    Object.assign(this.state, meta.state);
    this.lastTrainLoss = meta.trainLoss;
    this.resumedFrom ??= meta.name;
    this.lastSaved ??= meta.name;
    return meta;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
