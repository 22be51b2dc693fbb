// PEFT LoRA folders: adapter_config.json + adapter_model.safetensors, with PEFT's exact tensor names
// (base_model.model.<module>.lora_A.weight [r, in], ….lora_B.weight [out, r]). Import accepts what PEFT
// writes, ignores fields it does not need, and refuses by name the features it does not implement.
import * as tf from './tf';
import type { ModelConfig } from './config';
import { ModelFileMissingError, ModelFormatError, ShapeMismatchError } from './errors';
import { LORA_TARGETS, LoraAdapter, modulePath, moduleShape, validateLora, type LoraConfig, type LoraTarget } from './lora';
import { decodeTensor, parseSafetensorsHeader, writeSafetensors } from './safetensors';
import { modelName } from '../shared/names';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** Beside a PEFT folder that `train` writes: the run's settings (RunSettings), for export llama-factory. */
export const RUN_SETTINGS = 'webtune_run.json';
const PREFIX = 'base_model.model.';

/** The folder's files, by name. */
export async function exportPeft(adapter: LoraAdapter, baseModel: string): Promise<Map<string, Uint8Array>> {
  const c = adapter.config;
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: c.rank,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: [...c.targets],
    bias: 'none',
    use_rslora: c.rslora,
    use_dora: false,
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    revision: null,
  };
  const tensors: { name: string; shape: number[]; values: Float32Array }[] = [];
  for (const { name, variable } of adapter.named()) {
    tensors.push({ name: `${PREFIX}${name}.weight`, shape: variable.shape, values: (await variable.data()) as Float32Array });
  }
  return new Map([
    [ADAPTER_CONFIG, new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n')],
    [ADAPTER_WEIGHTS, writeSafetensors(tensors, 'F32')],
  ]);
}

type Json = Record<string, unknown>;

function refuse(field: string, why: string): never {
  throw new ModelFormatError(ADAPTER_CONFIG, `"${field}" ${why} is not supported by webtune; export the adapter without it.`);
}

const empty = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/** Read and check an adapter_config.json; returns the LoRA shape and which module paths it targets. */
export function parsePeftConfig(text: string, model: ModelConfig): { config: LoraConfig; paths: string[] } {
  let c: Json;
  try {
    c = JSON.parse(text) as Json;
  } catch (e) {
    throw new ModelFormatError(ADAPTER_CONFIG, `is not valid JSON (${(e as Error).message}).`);
  }
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new ModelFormatError(ADAPTER_CONFIG, 'must be a JSON object.');
  if (c.peft_type !== 'LORA') refuse('peft_type', `= ${JSON.stringify(c.peft_type)} (only LORA)`);
  if (c.task_type !== undefined && c.task_type !== 'CAUSAL_LM') refuse('task_type', `= ${JSON.stringify(c.task_type)} (only CAUSAL_LM)`);
  if (c.use_dora === true) refuse('use_dora', '(DoRA)');
  if (c.fan_in_fan_out === true) refuse('fan_in_fan_out', '(Conv1D-style weights)');
  if ((c.bias ?? 'none') !== 'none') refuse('bias', `= ${JSON.stringify(c.bias)}`);
  if (c.lora_bias === true) refuse('lora_bias', '');
  if (c.use_qalora === true) refuse('use_qalora', '');
  for (const f of ['modules_to_save', 'rank_pattern', 'alpha_pattern', 'layers_to_transform', 'target_parameters', 'trainable_token_indices', 'layer_replication']) {
    if (!empty(c[f])) refuse(f, `= ${JSON.stringify(c[f])}`);
  }
  const r = c.r;
  const alpha = c.lora_alpha ?? r;
  if (typeof r !== 'number' || typeof alpha !== 'number') throw new ModelFormatError(ADAPTER_CONFIG, '"r" and "lora_alpha" must be numbers.');

  // target_modules: a list of names, or a regular expression that PEFT full-matches against module paths.
  const all: { path: string; target: LoraTarget }[] = [];
  for (let i = 0; i < model.numLayers; i++) for (const t of LORA_TARGETS) all.push({ path: modulePath(i, t), target: t });
  const tm = c.target_modules;
  let chosen: typeof all;
  if (tm === 'all-linear') chosen = all; // PEFT's shorthand: every linear module but the output layer
  else if (Array.isArray(tm)) {
    const unknown = tm.find((t) => !(LORA_TARGETS as readonly unknown[]).includes(t));
    if (unknown !== undefined) refuse('target_modules', `names ${JSON.stringify(unknown)}, which`);
    chosen = all.filter((m) => tm.includes(m.target));
  } else if (typeof tm === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${tm})$`);
    } catch (e) {
      throw new ModelFormatError(ADAPTER_CONFIG, `"target_modules" is not a valid pattern (${(e as Error).message}).`);
    }
    chosen = all.filter((m) => re.test(m.path));
  } else throw new ModelFormatError(ADAPTER_CONFIG, '"target_modules" must be a list of module names or a pattern.');
  if (chosen.length === 0) throw new ModelFormatError(ADAPTER_CONFIG, '"target_modules" matches no linear module of this model.');
  const targets = LORA_TARGETS.filter((t) => chosen.some((m) => m.target === t));
  let config: LoraConfig;
  try {
    config = validateLora({ rank: r, alpha, dropout: typeof c.lora_dropout === 'number' ? c.lora_dropout : 0, targets: [...targets], rslora: c.use_rslora === true });
  } catch (e) {
    throw new ModelFormatError(ADAPTER_CONFIG, (e as Error).message);
  }
  return { config, paths: chosen.map((m) => m.path) };
}

/** A warning when adapter_config.json names another base model than the one loaded (null when they agree or it names none). */
export function baseModelWarning(configBytes: Uint8Array, loadedId: string): string | null {
  let named: unknown;
  try {
    named = (JSON.parse(new TextDecoder().decode(configBytes)) as Json).base_model_name_or_path;
  } catch {
    return null; // parsePeftConfig reports a broken file
  }
  if (typeof named !== 'string' || !named || named === loadedId) return null;
  const name = (s: string) => modelName(s).toLowerCase();
  if (name(named) === name(loadedId)) return null; // the same model, named by a Hub id, a local folder or a URL
  return `${ADAPTER_CONFIG} says this adapter was trained on ${named}, but ${loadedId} is loaded. Its shapes fit, so it was applied; answers may be poor unless the two share their weights.`;
}

/** Build an adapter from a PEFT folder's two files. */
export function importPeft(configBytes: Uint8Array | null, weightBytes: Uint8Array | null, model: ModelConfig, where = 'the adapter folder'): LoraAdapter {
  if (!configBytes) throw new ModelFileMissingError(ADAPTER_CONFIG, where);
  if (!weightBytes) throw new ModelFileMissingError(ADAPTER_WEIGHTS, where);
  const { config, paths } = parsePeftConfig(new TextDecoder().decode(configBytes), model);
  const header = parseSafetensorsHeader(weightBytes, ADAPTER_WEIGHTS);
  const byName = new Map(header.tensors.map((t) => [t.name.replace('.default.weight', '.weight'), t]));
  // Every LoRA tensor must belong to a module this model has and the config targets: none is silently dropped.
  const targeted = new Set(paths);
  const every = new Set<string>();
  for (let i = 0; i < model.numLayers; i++) for (const t of LORA_TARGETS) every.add(modulePath(i, t));
  for (const name of byName.keys()) {
    const m = /^base_model\.model\.(.+)\.lora_[AB]\.weight$/.exec(name);
    if (!m) continue;
    if (!every.has(m[1])) throw new ModelFormatError(ADAPTER_WEIGHTS, `tensor ${name} is for ${m[1]}, which this model does not have (${model.numLayers} layers; ${LORA_TARGETS.join(', ')}). The adapter belongs to another model.`);
    if (!targeted.has(m[1])) throw new ModelFormatError(ADAPTER_WEIGHTS, `tensor ${name} is for ${m[1]}, which ${ADAPTER_CONFIG}'s target_modules does not include. The two files do not belong together.`);
  }
  const tensors = new Map<string, { A: tf.Tensor; B: tf.Tensor }>();
  try {
    for (const path of paths) {
      const target = path.split('.').pop() as LoraTarget;
      const [out, inF] = moduleShape(model, target);
      const read = (kind: 'lora_A' | 'lora_B', shape: number[]) => {
        const name = `${PREFIX}${path}.${kind}.weight`;
        const t = byName.get(name);
        if (!t) throw new ModelFormatError(ADAPTER_WEIGHTS, `tensor ${name} is missing, though adapter_config.json targets ${target}.`);
        if (t.shape.join() !== shape.join()) throw new ShapeMismatchError(ADAPTER_WEIGHTS, name, shape, t.shape, `${ADAPTER_CONFIG} (r = ${config.rank}) together with the model's config.json`);
        return tf.tensor(decodeTensor(weightBytes, header, t), shape);
      };
      tensors.set(path, { A: read('lora_A', [config.rank, inF]), B: read('lora_B', [out, config.rank]) });
    }
  } catch (e) {
    for (const { A, B } of tensors.values()) tf.dispose([A, B]);
    throw e;
  }
  return LoraAdapter.fromTensors(config, tensors);
}
