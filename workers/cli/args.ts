// Argument parsing shared by the CLI commands.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { InvalidRequestError, WebtuneError } from '../engine/errors';
import { setWasmThreads, type BackendPreference } from '../engine/backend';
import { TEMPLATE_CHOICES, type TemplateChoice } from '../engine/tokenizer';
import { isWeightChoice, WEIGHT_CHOICES, type WeightChoice } from '../shared/weights';

export class UsageError extends WebtuneError {
  override name = 'UsageError';
}

export function parse<const O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function number(v: string | undefined, flag: string, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n))) throw new InvalidRequestError(`${flag} must be ${int ? 'a whole number' : 'a number'}, got "${v}".`);
  return n;
}

/** --chat-template: the model's own (default), ChatML, or none. */
export function templateArg(v: string | undefined): TemplateChoice | undefined {
  if (v === undefined) return undefined;
  if (!(TEMPLATE_CHOICES as readonly string[]).includes(v)) throw new InvalidRequestError(`--chat-template must be one of ${TEMPLATE_CHOICES.join(', ')}, got "${v}".`);
  return v as TemplateChoice;
}

const BACKENDS = ['auto', 'wasm', 'cpu', 'webgpu'];

/** Node has no WebGPU unless a host provides it, so the CLI defaults to WASM. */
export function backendArg(v: string | undefined): BackendPreference {
  const b = v ?? 'wasm';
  if (!BACKENDS.includes(b)) throw new InvalidRequestError(`--backend must be one of ${BACKENDS.join(', ')}, got "${b}".`);
  return b as BackendPreference;
}

/** --threads N: the WASM backend's threads, set before it starts (default: one per logical core). */
export function threadsArg(v: string | undefined): void {
  const n = number(v, '--threads', true);
  if (n !== undefined && n < 1) throw new InvalidRequestError(`--threads must be at least 1, got ${n}.`);
  setWasmThreads(n ?? null);
}

/** The CLI's help line for --threads. */
export const THREADS_HELP = `  --threads N                WASM's threads (default: one per logical core, at most 8)`;

/** --weights: how the frozen weights are held (workers/shared/weights.ts); `allowed` narrows the choices. */
export function weightsArg(v: string | undefined, allowed: readonly WeightChoice[] = WEIGHT_CHOICES): WeightChoice | undefined {
  if (v === undefined) return undefined;
  if (!isWeightChoice(v) || !allowed.includes(v)) throw new InvalidRequestError(`--weights must be one of ${allowed.join(', ')}, got "${v}".`);
  return v;
}

/** The CLI's help line for --weights. */
export const WEIGHTS_HELP = `  --weights ${WEIGHT_CHOICES.join('|')}
                             how the frozen base is held: float32, 16 bits (a bf16/f16 file's own values), int8
                             or int4 (QLoRA-style); auto (default): float32 where it fits, else the most precise
                             that does. Arithmetic and the adapter stay float32.`;

/** --fill name=Value (repeatable): values for the dataset's {{placeholders}}. */
export function fillArg(v: string[] | undefined): Record<string, string> {
  const fill: Record<string, string> = {};
  for (const item of v ?? []) {
    const at = item.indexOf('=');
    if (at <= 0) throw new InvalidRequestError(`--fill takes name=Value (for {{name}} in the data), got "${item}".`);
    fill[item.slice(0, at).trim()] = item.slice(at + 1);
  }
  return fill;
}
