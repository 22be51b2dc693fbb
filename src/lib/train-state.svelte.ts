// A training run driven from the page: settings, live curves, checkpoints, pause/resume/stop.
import { DEFAULT_LORA, DEFAULT_TRAIN, DEMO_RUN } from '../../workers/shared/defaults';
import { csv, downloadBlob } from './download';
import { describeError, type CheckpointMeta, type EngineClient, type LoraConfig, type RunRecord, type TrainConfig, type TrainEvent, type TrainingEstimate } from './engine-client';
import { modelName } from '../../workers/shared/names';

type Point = { step: number; loss: number; accuracy?: number };

export class TrainState {
  train = $state<TrainConfig>({ ...DEFAULT_TRAIN });
  lora = $state<LoraConfig>({ ...DEFAULT_LORA, targets: [...DEFAULT_LORA.targets] });
  status = $state<'idle' | 'running' | 'paused' | 'done' | 'cancelled' | 'early-stopped' | 'failed'>('idle');
  runId = $state<string | null>(null);
  losses = $state<Point[]>([]);
  valLosses = $state<Point[]>([]);
  /** DPO runs: each step's reward margin and share of pairs ranked right, and the held-out pairs'. */
  rewards = $state<(Point & { accuracy: number })[]>([]);
  valRewards = $state<(Point & { accuracy: number })[]>([]);
  step = $state(0);
  totalSteps = $state(0);
  tokensPerSecond = $state(0);
  etaSeconds = $state<number | null>(null);
  checkpoints = $state<CheckpointMeta[]>([]);
  runs = $state<RunRecord[]>([]);
  error = $state<string | null>(null);
  estimate = $state<TrainingEstimate | null>(null);
  estimating = $state(false);
  /** A second stored dataset to validate on; null = hold out the validation split. */
  validationDatasetId = $state<string | null>(null);

  /** Set while the form holds the demo's settings (DEMO_RUN), which the page explains. */
  demoSettings = $state(false);

  active = $derived(this.status === 'running' || this.status === 'paused');
  /** The shown run's name for files: model · dataset · date (e.g. SmolLM2-135M-Instruct-support-2026-12-01). */
  fileName = $derived.by(() => {
    const run = this.runs.find((r) => r.runId === this.runId);
    if (!run) return 'webtune-adapter';
    const model = modelName(run.baseModel);
    const data = run.datasetName.replace(/\.(jsonl|json)$/i, '');
    return `${model}-${data}-${run.createdAt.slice(0, 10)}`.replace(/[^\w.-]+/g, '_');
  });
  /** Runs cut short (a closed tab, a lost GPU, an error) that can go on from their last checkpoint. */
  interrupted = $derived(this.runs.filter((r) => (r.status === 'interrupted' || r.status === 'failed') && r.points.length > 0)); // a run refused before its first step has nothing to go on from

  constructor(private readonly engine: EngineClient) {}

  async refresh(): Promise<void> {
    this.runs = await this.engine.listRuns();
    if (!this.runId && this.runs.length) this.show(this.runs[this.runs.length - 1]);
    if (this.runId) this.checkpoints = await this.engine.listCheckpoints(this.runId);
  }

  /** Every step of the shown run as CSV: loss, learning rate and gradient norm, with the validation figures at the
   * steps that were evaluated (as OpenAI's dashboard and LlamaBoard offer their step metrics). */
  async downloadMetrics(format: 'csv' | 'jsonl' = 'csv'): Promise<void> {
    const run = (await this.engine.listRuns()).find((r) => r.runId === this.runId);
    if (!run) return;
    const evals = new Map(run.evals.map((e) => [e.step, e]));
    const base = ['step', 'epoch', 'loss', 'mean_token_accuracy', 'lr', 'grad_norm', 'val_loss', 'val_perplexity', 'val_accuracy'] as const;
    // DPO's metrics under TRL's names
    const dpo = ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'eval_rewards/margins'] as const;
    const cols = run.train.method === 'dpo' ? [...base, ...dpo] : base;
    const rows = run.points.map((p) => {
      const e = evals.get(p.step);
      const r = p.rewards;
      return {
        step: p.step, epoch: p.epoch, loss: p.loss, mean_token_accuracy: p.accuracy, lr: p.lr, grad_norm: p.gradNorm, val_loss: e?.valLoss, val_perplexity: e?.perplexity, val_accuracy: e?.accuracy,
        'rewards/chosen': r?.chosen, 'rewards/rejected': r?.rejected, 'rewards/accuracies': r?.accuracy, 'rewards/margins': r?.margin, 'eval_rewards/margins': e?.rewards?.margin,
      };
    });
    if (format === 'csv') downloadBlob(new Blob([csv(cols, rows)], { type: 'text/csv' }), `${this.fileName}-metrics.csv`);
    else {
      // One JSON object per step with the same keys, absent figures left out (as trainer logs write them).
      const lines = rows.map((r) => JSON.stringify(Object.fromEntries(cols.filter((c) => r[c] !== undefined).map((c) => [c, r[c]]))));
      downloadBlob(new Blob([lines.join('\n') + '\n'], { type: 'application/jsonl' }), `${this.fileName}-metrics.jsonl`);
    }
  }

  /** The first run's settings: enough steps at a high rate for the untrained demo model to learn the sample chats. */
  useDemoSettings(): void {
    this.train = { ...DEFAULT_TRAIN, ...DEMO_RUN.train };
    this.demoSettings = true;
  }

  /** The latest run on this base model that kept a checkpoint, shown, and its best checkpoint (else its newest):
   * after a reload, Chat, Evaluate and Export start from it rather than from no tuned model at all. */
  async latestCheckpointFor(baseModel: string): Promise<{ runId: string; name: string } | null> {
    const runs = (await this.engine.listRuns()).filter((r) => r.baseModel === baseModel).reverse();
    for (const run of runs) {
      const ckpts = await this.engine.listCheckpoints(run.runId);
      const pick = ckpts.find((c) => c.name === 'best') ?? [...ckpts].sort((a, b) => b.step - a.step)[0];
      if (!pick) continue;
      await this.select(run);
      return { runId: run.runId, name: pick.name };
    }
    return null;
  }

  /** Show a past run: its settings, curves and checkpoints. */
  async select(run: RunRecord): Promise<void> {
    this.show(run);
    this.checkpoints = await this.engine.listCheckpoints(run.runId);
  }

  /** Show a stored run's curves. */
  show(run: RunRecord): void {
    this.runId = run.runId;
    if (!this.active) {
      this.train = { ...run.train }; // the form shows the settings that made this curve
      this.lora = { ...run.lora };
    }
    this.losses = run.points.map((p) => ({ step: p.step, loss: p.loss, accuracy: p.accuracy }));
    this.valLosses = run.evals.map((e) => ({ step: e.step, loss: e.valLoss }));
    this.rewards = run.points.flatMap((p) => (p.rewards ? [{ step: p.step, loss: p.rewards.margin, accuracy: p.rewards.accuracy }] : []));
    this.valRewards = run.evals.flatMap((e) => (e.rewards ? [{ step: e.step, loss: e.rewards.margin, accuracy: e.rewards.accuracy }] : []));
    this.step = run.points[run.points.length - 1]?.step ?? 0;
    this.totalSteps = run.totalSteps;
    if (!this.active) this.status = run.status === 'interrupted' || run.status === 'running' || run.status === 'paused' ? 'idle' : run.status;
  }

  private onEvent(e: TrainEvent): void {
    if (e.type === 'steps') {
      this.losses.push(...e.points.map((p) => ({ step: p.step, loss: p.loss, accuracy: p.accuracy })));
      this.rewards.push(...e.points.flatMap((p) => (p.rewards ? [{ step: p.step, loss: p.rewards.margin, accuracy: p.rewards.accuracy }] : [])));
      this.step = e.points[e.points.length - 1].step;
      this.totalSteps = e.totalSteps;
      this.tokensPerSecond = e.tokensPerSecond;
      this.etaSeconds = e.etaSeconds;
    } else if (e.type === 'eval') {
      this.valLosses.push({ step: e.step, loss: e.valLoss });
      if (e.rewards) this.valRewards.push({ step: e.step, loss: e.rewards.margin, accuracy: e.rewards.accuracy });
    }
    else if (e.type === 'checkpoint') this.checkpoints = [...this.checkpoints.filter((c) => c.name !== e.meta.name), e.meta].sort((a, b) => a.step - b.step);
    else if (e.type === 'status') this.status = e.status;
    else if (e.type === 'warning') this.error = e.message;
  }

  async start(datasetId: string, resume?: { runId: string; checkpoint: string }): Promise<void> {
    this.error = null;
    this.status = 'running';
    this.tokensPerSecond = 0; // the last run's pace is not this one's: nothing is shown until this run's first step
    this.etaSeconds = null;
    if (!resume) {
      this.runId = `run-${Date.now().toString(36)}`;
      this.losses = [];
      this.valLosses = [];
      this.rewards = [];
      this.valRewards = [];
      this.checkpoints = [];
      this.step = 0;
    } else this.runId = resume.runId;
    try {
      const r = await this.engine.trainOnDataset(
        {
          datasetId,
          validationDatasetId: this.validationDatasetId && this.validationDatasetId !== datasetId ? this.validationDatasetId : undefined,
          runId: this.runId!,
          train: $state.snapshot(this.train),
          lora: $state.snapshot(this.lora),
          resumeFrom: resume?.checkpoint,
        },
        (e) => this.onEvent(e),
      );
      this.status = r.status;
    } catch (e) {
      this.status = 'failed';
      this.error = describeError(e).message;
    }
    await this.refresh();
  }

  async resumeInterrupted(run: RunRecord): Promise<void> {
    const ckpts = await this.engine.listCheckpoints(run.runId);
    const last = ckpts.filter((c) => c.name !== 'best').pop();
    if (!last) {
      this.error = `Run ${run.runId} has no checkpoint to resume from; start it again.`;
      return;
    }
    this.train = { ...run.train };
    this.lora = { ...run.lora };
    this.show(run);
    this.checkpoints = ckpts;
    await this.start(run.datasetId, { runId: run.runId, checkpoint: last.name });
  }

  /** Measure a few real steps with the current settings and extrapolate to the whole run. */
  async estimateFor(datasetId: string): Promise<void> {
    this.estimating = true;
    this.error = null;
    try {
      this.estimate = await this.engine.estimateTraining(datasetId, $state.snapshot(this.train), $state.snapshot(this.lora));
    } catch (e) {
      this.error = describeError(e).message;
    } finally {
      this.estimating = false;
    }
  }

  pause = () => void this.engine.pauseTraining();
  resume = () => void this.engine.resumeTraining();
  stop = () => void this.engine.cancelTraining();
}
