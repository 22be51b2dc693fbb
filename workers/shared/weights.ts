// How a model's frozen weights are held: the formats, their memory, and which one `auto` picks. No tfjs: the page's
// preflight, the CLI and the engine read the same facts. Norms, biases and the LoRA adapter are float32 always;
// arithmetic is float32 always (a packed weight is unpacked inside its product).
import type { BackendName } from './types';

export type WeightFormat = 'f32' | '16bit' | 'int8' | 'int4';
export type WeightChoice = WeightFormat | 'auto';

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', '16bit', 'int8', 'int4'];
export const WEIGHT_CHOICES: readonly WeightChoice[] = ['auto', ...WEIGHT_FORMATS];

/** Bytes per parameter of the projections, embedding and LM head in each format: int8 has one float32 scale per
 * row (≈ 1 byte), int4 one per group of 32 (4 bits + 32 / 32 bits = 0.625 bytes). */
export const BYTES_PER_PARAMETER: Record<WeightFormat, number> = { f32: 4, '16bit': 2, int8: 1, int4: 0.625 };

/** Each format's short name, in sentences. */
export const WEIGHT_NAMES: Record<WeightFormat, string> = { f32: 'float32', '16bit': '16-bit', int8: 'int8', int4: 'int4' };

export const WEIGHT_LABELS: Record<WeightChoice, string> = {
  auto: 'Auto: the fastest that fits',
  f32: 'float32 (exact)',
  '16bit': '16-bit (a bf16/f16 file’s own values)',
  int8: 'int8 (per-row scales)',
  int4: 'int4 (groups of 32, as QLoRA)',
};

/** The WASM heap's ceiling: 4 GiB (32-bit addresses). */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

/** Room WASM training needs beside the weights at the default settings (activations, the loss chunks, one layer's
 * unpacked matrix and its XNNPACK copy): measured under 1 GiB for the 135M–0.6B shapes at 256 × 4. */
const WASM_WORK_BYTES = 1024 ** 3;

/** Bytes each format holds for a model of `parameters`. On WASM a float32 matrix also gets XNNPACK's packed copy
 * the first time it is multiplied, so float32 costs twice its bytes there; a packed matrix is unpacked afresh at
 * each use and never gets one. */
export function residentBytes(parameters: number, format: WeightFormat, backend: BackendName): number {
  const twin = backend === 'wasm' && format === 'f32' ? 2 : 1;
  return parameters * BYTES_PER_PARAMETER[format] * twin;
}

export interface WeightDecision {
  format: WeightFormat;
  reason: string;
}

/**
 * The format `auto` picks: float32 wherever it fits (every packed format pays to unpack at each use, so float32 is
 * the fastest on every backend today), else the most precise packed format that fits. WebGPU's memory is not
 * known to a page, so there auto keeps float32 and the user chooses. `canPack`: the backend has the unpacking kernels.
 */
export function chooseWeightFormat(parameters: number, backend: BackendName, canPack: boolean): WeightDecision {
  const gb = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GB`;
  if (!canPack) return { format: 'f32', reason: `${backend === 'webgpu' ? 'WebGPU' : backend} reads float32 weights only here` };
  if (backend === 'webgpu') return { format: 'f32', reason: 'float32 is the fastest; a browser does not say how much GPU memory there is, so choose 16-bit, int8 or int4 for a model too large for this GPU (the preflight gives each size)' };
  if (backend !== 'wasm') return { format: 'f32', reason: 'float32 is the fastest, and this backend has no fixed memory ceiling' };
  const budget = WASM_HEAP_BYTES - WASM_WORK_BYTES;
  for (const format of WEIGHT_FORMATS) {
    const bytes = residentBytes(parameters, format, backend);
    if (bytes <= budget) {
      return { format, reason: format === 'f32' ? `float32 is the fastest and fits WASM's 4 GB heap (${gb(bytes)} with XNNPACK's copies)` : `float32 would take ${gb(residentBytes(parameters, 'f32', backend))} of WASM's 4 GB heap; ${format} takes ${gb(bytes)}` };
    }
  }
  return { format: 'int4', reason: `even int4 (${gb(residentBytes(parameters, 'int4', backend))}) leaves less than 1 GB of WASM's 4 GB heap for training` };
}

/** A choice made concrete: `auto` by the rule above; an explicit packed format falls back to float32 where the
 * backend cannot unpack (and says so). */
export function resolveWeightFormat(choice: WeightChoice, parameters: number, backend: BackendName, canPack: boolean): WeightDecision {
  if (choice === 'auto') return chooseWeightFormat(parameters, backend, canPack);
  if (choice !== 'f32' && !canPack) return { format: 'f32', reason: `${choice} was asked for, but ${backend === 'webgpu' ? 'WebGPU' : backend} reads float32 weights only here` };
  const what: Record<WeightFormat, string> = { f32: 'exact', '16bit': 'a bf16/f16 file’s own values', int8: 'the base’s values rounded to 8 bits per row', int4: 'the base’s values rounded to 4 bits in groups of 32' };
  return { format: choice, reason: `as chosen: ${what[choice]}` };
}

export function isWeightChoice(s: string): s is WeightChoice {
  return (WEIGHT_CHOICES as readonly string[]).includes(s);
}
