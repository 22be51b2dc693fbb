// Before a download: will this model fit? Its frozen weights (in the format chosen: float32, 16-bit, int8, int4)
// must fit in memory; the message gives each format's size. On WebGPU a vocabulary matrix
// (vocab × hidden) larger than one storage buffer binding of this GPU is kept in row blocks that each fit.

import { BYTES_PER_PARAMETER, WEIGHT_FORMATS, WEIGHT_NAMES, type WeightChoice, type WeightFormat } from '../../workers/shared/weights';

export interface CuratedModel {
  id: string;
  label: string;
  parameters: number;
  vocab: number;
  hidden: number;
  note: string;
  gated: boolean; // the Hub asks for an accepted licence and an access token
}

export interface Preflight {
  level: 'ok' | 'warn' | 'refuse';
  message: string;
}

type GpuLimits = { maxStorageBufferBindingSize: number; maxBufferSize: number };

let curated: Promise<CuratedModel[]> | null = null;
/** The suggested models of public/models.json (fetched once). */
export function curatedModels(): Promise<CuratedModel[]> {
  curated ??= fetch(`${import.meta.env.BASE_URL}models.json`)
    .then((r) => r.json() as Promise<{ models: CuratedModel[] }>)
    .then((j) => j.models)
    .catch(() => []);
  return curated;
}

export async function gpuLimits(): Promise<GpuLimits | null> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<{ limits: GpuLimits } | null> } }).gpu;
  const adapter = await gpu?.requestAdapter().catch(() => null);
  return adapter ? { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } : null;
}

const GB = 1024 ** 3;

/** Training at `seqLen` tokens, batch 4, with activation checkpointing: measured ≈ weights + 0.9 GB for 135M at 256. */
export function estimateBytes(m: ModelFacts, seqLen: number, format: WeightFormat = 'f32'): { weights: number; training: number } {
  const weights = m.parameters * BYTES_PER_PARAMETER[format];
  const activations = 4 * seqLen * m.hidden * 4 * 60 + 64 * 1024 ** 2 * 4; // checkpoints, one block's recompute, loss chunks
  return { weights, training: weights + activations };
}

export type ModelFacts = Pick<CuratedModel, 'label' | 'parameters' | 'vocab' | 'hidden'>;

/** `weights`: the format chosen for the frozen weights; `auto` is estimated as float32 (what it keeps wherever it fits). */
export function preflight(m: ModelFacts, seqLen: number, limits: GpuLimits | null, models: CuratedModel[], deviceMemoryGB = (navigator as { deviceMemory?: number }).deviceMemory, weightsChoice: WeightChoice = 'auto'): Preflight {
  const format = weightsChoice === 'auto' ? 'f32' : weightsChoice;
  const { weights, training } = estimateBytes(m, seqLen, format);
  const largest = m.vocab * m.hidden * 4;
  const smaller = models.filter((x) => x.parameters < m.parameters).sort((a, b) => b.parameters - a.parameters)[0];
  const hint = smaller ? ` Try ${smaller.label} instead.` : '';
  const memory = deviceMemoryGB; // GB, capped at 8 by browsers
  const each = WEIGHT_FORMATS.map((f) => `${WEIGHT_NAMES[f]} ${((m.parameters * BYTES_PER_PARAMETER[f]) / GB).toFixed(2)} GB`).join(' · ');
  const sizes = `${(weights / GB).toFixed(2)} GB of ${WEIGHT_NAMES[format]} weights (${each}); training at ${seqLen} tokens needs about ${(training / GB).toFixed(1)} GB`;
  const binding = limits ? Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) : Infinity;
  const blocks = Math.ceil(largest / binding);
  const split = blocks > 1 ? ` Its embedding (${(largest / GB).toFixed(2)} GB) is kept in ${blocks} blocks to fit this GPU's largest buffer binding (${(binding / GB).toFixed(2)} GB).` : '';
  if (m.hidden * 4 > binding) {
    return { level: 'refuse', message: `${m.label}: not even one row of its embedding fits this GPU's largest buffer binding (${binding} bytes), so WebGPU cannot run it here. ${sizes}.${hint}` };
  }
  if (memory !== undefined && training > memory * GB * 0.5) {
    return { level: 'warn', message: `${m.label}: ${sizes}, more than half of this device's reported memory (${memory} GB or more). It may run slowly or fail.${split}${hint}` };
  }
  return { level: 'ok', message: `${m.label}: ${sizes}.${split}` };
}
