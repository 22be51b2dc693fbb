// Held-out examples answered by the base and the tuned model, with per-example losses; exportable.
import { describeError, type EngineClient, type EvalRow } from './engine-client';
import { csv, downloadBlob } from './download';

export class EvalState {
  rows = $state<EvalRow[]>([]);
  running = $state(false);
  total = $state(0);
  limit = $state(20);
  error = $state<string | null>(null);

  mean = $derived.by(() => {
    const tuned = this.rows.filter((r) => r.tunedLoss !== null);
    const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    const pairs = this.rows.filter((r) => r.baseMargin !== undefined);
    return {
      base: avg(this.rows.map((r) => r.baseLoss)),
      tuned: avg(tuned.map((r) => r.tunedLoss!)),
      exact: tuned.filter((r) => r.tuned?.trim() === r.expected.trim()).length,
      // preference pairs: how many each model ranks right (chosen more likely than rejected)
      pairs: pairs.length,
      baseRight: pairs.filter((r) => r.baseMargin! > 0).length,
      tunedRight: pairs.filter((r) => (r.tunedMargin ?? 0) > 0).length,
    };
  });

  constructor(private readonly engine: EngineClient) {}

  async run(datasetId: string, split: { valSplit: number; seed: number } | undefined, maxNewTokens: number): Promise<void> {
    this.rows = [];
    this.error = null;
    this.running = true;
    try {
      this.total = await this.engine.evaluateDataset({ datasetId, split, limit: this.limit, maxNewTokens }, (row) => this.rows.push(row));
    } catch (e) {
      this.error = describeError(e).message;
    } finally {
      this.running = false;
    }
  }

  stop = () => void this.engine.stopEvaluation();

  /** CSV with RFC 4180 quoting, or one JSON object per line. */
  export(format: 'csv' | 'jsonl'): void {
    const pairCols = this.mean.pairs ? (['rejected', 'baseMargin', 'tunedMargin'] as const) : [];
    const cols = ['index', 'prompt', 'expected', 'base', 'tuned', 'baseLoss', 'tunedLoss', ...pairCols] as const;
    const text = format === 'csv' ? csv(cols, this.rows) : this.rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    downloadBlob(new Blob([text], { type: format === 'csv' ? 'text/csv' : 'application/jsonl' }), `webtune-evaluation.${format}`);
  }
}
