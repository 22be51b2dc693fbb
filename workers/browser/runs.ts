// Training on a stored dataset with the run recorded as it goes: settings, curves and status are kept (in
// IndexedDB) so they survive a reload. A record that cannot be written never stops training: the user is
// told once what will not be kept.
import type { Engine } from '../engine/engine';
import { InvalidRequestError } from '../engine/errors';
import { isQuotaError } from '../engine/source';
import { DEFAULT_LORA, DEFAULT_TRAIN } from '../shared/defaults';
import type { RunRecord, TrainEvent, TrainOnDatasetRequest, TrainResult } from '../shared/types';
import type { DatasetLibrary } from './datasets';
import type { RunStore } from './store';

export class RunRecorder {
  private activeRun: string | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly datasets: DatasetLibrary,
    private readonly runs: RunStore,
  ) {}

  /** Past runs. One still marked running that is not training here was cut off (tab closed or reloaded). */
  async listRuns(): Promise<RunRecord[]> {
    return (await this.runs.list()).map((r) => ((r.status === 'running' || r.status === 'paused') && r.runId !== this.activeRun ? { ...r, status: 'interrupted' } : r));
  }

  async trainOnDataset(req: TrainOnDatasetRequest, onEvent: (e: TrainEvent) => void = () => {}): Promise<TrainResult> {
    const { meta, data } = await this.datasets.load(req.datasetId);
    const validation = req.validationDatasetId ? await this.datasets.examples(req.validationDatasetId) : undefined;
    const info = this.engine.info();
    if (!info) throw new InvalidRequestError('Load a model before training.');
    const runId = req.runId ?? `run-${Date.now().toString(36)}`;
    const existing = req.resumeFrom ? await this.runs.get(runId) : undefined;
    const run: RunRecord = existing ?? {
      runId,
      datasetId: req.datasetId,
      datasetName: meta.name,
      baseModel: info.id,
      weights: info.weights.format,
      createdAt: new Date().toISOString(),
      lora: { ...DEFAULT_LORA, ...req.lora },
      train: { ...DEFAULT_TRAIN, ...req.train },
      status: 'running',
      totalSteps: 0,
      points: [],
      evals: [],
    };
    if (existing) {
      const from = (await this.engine.listCheckpoints(runId)).find((c) => c.name === req.resumeFrom);
      run.points = run.points.filter((p) => p.step <= (from?.step ?? 0));
      run.evals = run.evals.filter((e) => e.step <= (from?.step ?? 0));
    }
    run.status = 'running';
    run.error = undefined;
    // Each write after the first failure is still tried (space may be freed); the user hears once.
    let warned = false;
    const failed = (e: unknown) => {
      if (warned) return;
      warned = true;
      const why = isQuotaError(e) ? "this site's storage is full" : `it could not be written (${(e as Error).message ?? String(e)})`;
      onEvent({ type: 'warning', message: `This run's settings and curve are not being kept: ${why}. Training goes on; ${isQuotaError(e) ? 'delete cached models, runs or datasets to make room' : 'its checkpoints are saved separately'}.` });
    };
    await this.runs.put(run).catch(failed);
    this.activeRun = runId;
    let saving = Promise.resolve();
    const save = () => (saving = saving.then(() => this.runs.put(run)).catch(failed));
    try {
      const result = await this.engine.train({ ...req, runId, examples: data.examples.map((e) => e.example), validation }, (e) => {
        if (e.type === 'steps') {
          run.points.push(...e.points);
          run.totalSteps = e.totalSteps;
        } else if (e.type === 'eval') {
          const { type: _, ...result } = e;
          run.evals.push(result);
        }
        else if (e.type === 'status') run.status = e.status;
        void save();
        onEvent(e);
      });
      run.status = result.status;
      return result;
    } catch (e) {
      run.status = 'failed';
      run.error = (e as Error).message;
      throw e;
    } finally {
      this.activeRun = null;
      await save();
    }
  }
}
