// Model architecture, read from a Hugging Face config.json. Architecture only: LoRA and training
// settings live in their own typed objects. Anything this engine does not implement is refused by name.
// This file is the one place that knows each architecture: its tensors and their shapes (`expectedTensors`,
// `linearShape`), used by the loader, LoRA, PEFT import and the tiny-model generator alike.
import { ModelFormatError, UnsupportedModelError } from './errors';
import { ARCHITECTURES, LINEAR_MODULES } from '../shared/defaults';
import type { Architecture, LayerType, LinearModule, ModelConfig, RopeScaling, RopeSpec } from '../shared/types';

export { ARCHITECTURES, LINEAR_MODULES };
export type { Architecture, LayerType, LinearModule, ModelConfig, RopeScaling, RopeSpec };



type Json = Record<string, unknown>;

function num(cfg: Json, key: string, fallback?: number, where = 'config.json'): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    if (v === undefined) throw new ModelFormatError(where, `required field "${key}" is missing.`);
    throw new ModelFormatError(where, `field "${key}" must be a number, got ${JSON.stringify(v)}.`);
  }
  return v;
}

function posInt(cfg: Json, key: string, fallback?: number): number {
  const v = num(cfg, key, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new ModelFormatError('config.json', `field "${key}" must be a positive integer, got ${v}.`);
  return v;
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** One rope dict (v4 rope_scaling, or a v5 rope_parameters entry) → the scaling it asks for. `field` names it in errors. */
function ropeScaling(d: Json | null | undefined, field: string): RopeScaling {
  if (d === null || d === undefined) return { type: 'default' };
  if (!isObject(d)) throw new UnsupportedModelError(field, `must be an object, got ${JSON.stringify(d)}`);
  const type = d.rope_type ?? d.type ?? 'default';
  const where = `config.json ${field}`;
  const positive = (key: string, fallback?: number) => {
    const v = num(d, key, fallback, where);
    if (!(v > 0)) throw new ModelFormatError(where, `field "${key}" must be > 0, got ${v}.`);
    return v;
  };
  switch (type) {
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: positive('factor') };
    case 'llama3': {
      const s = { type: 'llama3' as const, factor: positive('factor'), lowFreqFactor: positive('low_freq_factor'), highFreqFactor: positive('high_freq_factor'), originalMaxPositions: positive('original_max_position_embeddings') };
      if (s.highFreqFactor <= s.lowFreqFactor) throw new ModelFormatError(where, `high_freq_factor (${s.highFreqFactor}) must be larger than low_freq_factor (${s.lowFreqFactor}).`);
      return s;
    }
    default:
      throw new UnsupportedModelError(field, `rope type ${JSON.stringify(type)} is not supported (default, linear and llama3 are)`);
  }
}

/**
 * The rotation of full and sliding layers. transformers v4 writes rope_theta + rope_scaling (Gemma 3 adds
 * rope_local_base_freq for its sliding layers, which never scale); v5 writes rope_parameters: one dict for
 * every layer, or one per layer type ({full_attention: {…}, sliding_attention: {…}}).
 */
function parseRope(cfg: Json, gemma: boolean): Record<LayerType, RopeSpec> {
  const params = cfg.rope_parameters;
  if (params !== null && params !== undefined) {
    if (!isObject(params)) throw new UnsupportedModelError('rope_parameters', `must be an object, got ${JSON.stringify(params)}`);
    const perType = isObject(params.full_attention) || isObject(params.sliding_attention);
    const one = (d: unknown, field: string, fallbackTheta: number): RopeSpec => {
      const dict = (d ?? {}) as Json;
      if (!isObject(dict)) throw new UnsupportedModelError(field, `must be an object, got ${JSON.stringify(d)}`);
      return { theta: num(dict, 'rope_theta', fallbackTheta, `config.json ${field}`), scaling: ropeScaling(dict, field) };
    };
    if (perType) {
      const full = one(params.full_attention, 'rope_parameters.full_attention', num(cfg, 'rope_theta', 10000));
      return { full, sliding: params.sliding_attention === undefined ? full : one(params.sliding_attention, 'rope_parameters.sliding_attention', 10000) };
    }
    const all = one(params, 'rope_parameters', num(cfg, 'rope_theta', 10000));
    return { full: all, sliding: all };
  }
  const full: RopeSpec = { theta: num(cfg, 'rope_theta', gemma ? 1_000_000 : 10000), scaling: ropeScaling(cfg.rope_scaling as Json | null | undefined, 'rope_scaling') };
  const sliding: RopeSpec = gemma ? { theta: num(cfg, 'rope_local_base_freq', 10000), scaling: { type: 'default' } } : full;
  return { full, sliding };
}

/** Gemma 3: layer_types, else every `sliding_window_pattern`-th layer (1-based) is full and the rest slide. */
function parseLayerTypes(cfg: Json, numLayers: number, gemma: boolean): LayerType[] {
  const given = cfg.layer_types;
  if (given !== undefined && given !== null) {
    if (!Array.isArray(given) || given.length !== numLayers) throw new ModelFormatError('config.json', `"layer_types" must list one type for each of the ${numLayers} layers.`);
    return given.map((t, i) => {
      if (t === 'full_attention') return 'full';
      if (t === 'sliding_attention') return 'sliding';
      throw new UnsupportedModelError('layer_types', `layer ${i} is ${JSON.stringify(t)}; only "full_attention" and "sliding_attention" are supported`);
    });
  }
  if (!gemma) return new Array<LayerType>(numLayers).fill('full');
  const pattern = num(cfg, 'sliding_window_pattern', num(cfg, '_sliding_window_pattern', 6));
  if (!Number.isInteger(pattern) || pattern < 1) throw new ModelFormatError('config.json', `"sliding_window_pattern" must be a positive integer, got ${pattern}.`);
  return Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern === 0 ? 'full' : 'sliding'));
}

function optionalCap(cfg: Json, key: string): number | null {
  const v = cfg[key];
  if (v === undefined || v === null) return null;
  const cap = num(cfg, key);
  if (!(cap > 0)) throw new ModelFormatError('config.json', `field "${key}" must be > 0 or null, got ${cap}.`);
  return cap;
}

/** Parse and validate config.json text (or an already parsed object). */
export function parseConfig(input: string | Json): ModelConfig {
  let cfg: Json;
  if (typeof input === 'string') {
    try {
      cfg = JSON.parse(input) as Json;
    } catch (e) {
      throw new ModelFormatError('config.json', `is not valid JSON (${(e as Error).message}).`);
    }
  } else cfg = input;
  if (!isObject(cfg)) throw new ModelFormatError('config.json', 'must be a JSON object.');

  const archs = cfg.architectures;
  const arch = Array.isArray(archs) ? archs[0] : undefined;
  if (arch === 'Gemma3ForConditionalGeneration') {
    throw new UnsupportedModelError('architectures', 'Gemma 3 4B and larger are multimodal (Gemma3ForConditionalGeneration) and are not supported; use the text models google/gemma-3-270m(-it) or google/gemma-3-1b(-it)');
  }
  if (!(ARCHITECTURES as readonly unknown[]).includes(arch)) {
    throw new UnsupportedModelError('architectures', `${JSON.stringify(archs ?? null)} is not supported`);
  }
  const architecture = arch as Architecture;
  const qwen2 = architecture === 'Qwen2ForCausalLM';
  const gemma = architecture === 'Gemma3ForCausalLM';

  const actField = gemma ? 'hidden_activation' : 'hidden_act';
  const act = cfg[actField] ?? cfg.hidden_act ?? (gemma ? 'gelu_pytorch_tanh' : 'silu');
  let activation: ModelConfig['activation'];
  if (act === 'silu' || act === 'swish') activation = 'silu';
  else if (act === 'gelu_pytorch_tanh' || act === 'gelu_new' || act === 'gelu_fast') activation = 'gelu_tanh';
  else throw new UnsupportedModelError(actField, `"${String(act)}" is not supported (only "silu" and "gelu_pytorch_tanh")`);

  // Qwen2/Qwen3 mark a sliding window with use_sliding_window (off in every released checkpoint); not implemented for them.
  if (!gemma && cfg.use_sliding_window === true) throw new UnsupportedModelError('use_sliding_window', 'sliding-window attention is supported for Gemma 3 only');
  if (cfg.mlp_bias === true) throw new UnsupportedModelError('mlp_bias', 'biases in the MLP are not supported');
  const attentionBias = cfg.attention_bias === true;
  if (qwen2 && cfg.attention_bias !== undefined && !attentionBias) {
    // Qwen2 has q/k/v biases regardless; a config that says otherwise is not a Qwen2 we know.
    throw new UnsupportedModelError('attention_bias', 'Qwen2 without q/k/v biases is not supported');
  }

  const hiddenSize = posInt(cfg, 'hidden_size');
  const numHeads = posInt(cfg, 'num_attention_heads');
  const numKvHeads = posInt(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFormatError('config.json', `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  const explicitHeadDim = cfg.head_dim;
  let headDim: number;
  if (explicitHeadDim === undefined || explicitHeadDim === null) {
    if (hiddenSize % numHeads !== 0) throw new ModelFormatError('config.json', `hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and no head_dim is given.`);
    headDim = hiddenSize / numHeads;
  } else headDim = posInt(cfg, 'head_dim');
  if (headDim % 2 !== 0) throw new ModelFormatError('config.json', `head_dim (${headDim}) must be even for rotary embeddings.`);

  const numLayers = posInt(cfg, 'num_hidden_layers');
  if (numLayers > 4096) throw new ModelFormatError('config.json', `"num_hidden_layers" is ${numLayers}; no model this engine can run has more than 4096 layers. The file is damaged or not a model's config.`);
  const layerTypes = parseLayerTypes(cfg, numLayers, gemma);
  const slides = layerTypes.includes('sliding');
  if (slides && !gemma) throw new UnsupportedModelError('layer_types', 'sliding-window layers are supported for Gemma 3 only');
  const slidingWindow = slides ? posInt(cfg, 'sliding_window') : null;
  const queryScalar = gemma ? num(cfg, 'query_pre_attn_scalar', headDim) : headDim;
  if (!(queryScalar > 0)) throw new ModelFormatError('config.json', `field "query_pre_attn_scalar" must be > 0, got ${queryScalar}.`);

  return {
    architecture,
    vocabSize: posInt(cfg, 'vocab_size'),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(cfg, 'rms_norm_eps', 1e-6),
    maxPositions: posInt(cfg, 'max_position_embeddings', 2048),
    // transformers' defaults: Gemma 3 ties its head unless told otherwise; the others do not.
    tieWordEmbeddings: cfg.tie_word_embeddings === undefined || cfg.tie_word_embeddings === null ? gemma : cfg.tie_word_embeddings === true,
    qkvBias: qwen2 || attentionBias,
    oBias: !qwen2 && attentionBias,
    qkNorm: architecture === 'Qwen3ForCausalLM' || gemma,
    gemmaNorms: gemma,
    activation,
    embedScale: gemma ? Math.sqrt(hiddenSize) : 1,
    attnScale: 1 / Math.sqrt(queryScalar),
    attnSoftcap: gemma ? optionalCap(cfg, 'attn_logit_softcapping') : null,
    finalSoftcap: gemma ? optionalCap(cfg, 'final_logit_softcapping') : null,
    slidingWindow,
    layerTypes,
    rope: parseRope(cfg, gemma),
  };
}

/** Inverse frequencies [D/2] of a rotation, scaled as transformers' rope init functions do. */
export function ropeInverseFrequencies(spec: RopeSpec, headDim: number): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(half);
  const s = spec.scaling;
  for (let j = 0; j < half; j++) {
    const f = 1 / Math.pow(spec.theta, (2 * j) / headDim);
    if (s.type === 'default') out[j] = f;
    else if (s.type === 'linear') out[j] = f / s.factor;
    else {
      // Llama 3: long wavelengths (beyond orig/low) are slowed by `factor`, short ones (below orig/high)
      // kept, and the band between blended linearly in orig/wavelength.
      const wavelength = (2 * Math.PI) / f;
      const lowWave = s.originalMaxPositions / s.lowFreqFactor;
      const highWave = s.originalMaxPositions / s.highFreqFactor;
      if (wavelength > lowWave) out[j] = f / s.factor;
      else if (wavelength < highWave) out[j] = f;
      else {
        const smooth = (s.originalMaxPositions / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        out[j] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  }
  return out;
}

/** [out, in] of a linear module of any block. */
export function linearShape(c: ModelConfig, module: LinearModule): [number, number] {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (module) {
    case 'q_proj':
      return [q, c.hiddenSize];
    case 'k_proj':
    case 'v_proj':
      return [kv, c.hiddenSize];
    case 'o_proj':
      return [c.hiddenSize, q];
    case 'gate_proj':
    case 'up_proj':
      return [c.intermediateSize, c.hiddenSize];
    case 'down_proj':
      return [c.hiddenSize, c.intermediateSize];
  }
}

/** The HF module path of a linear module in layer i, e.g. model.layers.3.self_attn.q_proj. */
export function modulePath(layer: number, module: LinearModule): string {
  const group = module === 'gate_proj' || module === 'up_proj' || module === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${group}.${module}`;
}

/** Every tensor the model needs, by its Hugging Face checkpoint key, with its expected shape. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [c.vocabSize, c.hiddenSize]);
  const linear = (i: number, mod: LinearModule, bias: boolean) => {
    const [out, inF] = linearShape(c, mod);
    m.set(modulePath(i, mod) + '.weight', [out, inF]);
    if (bias) m.set(modulePath(i, mod) + '.bias', [out]);
  };
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [c.hiddenSize]);
    for (const mod of ['q_proj', 'k_proj', 'v_proj'] as const) linear(i, mod, false);
    if (c.qkvBias) for (const mod of ['q_proj', 'k_proj', 'v_proj'] as const) m.set(modulePath(i, mod) + '.bias', [linearShape(c, mod)[0]]);
    linear(i, 'o_proj', c.oBias);
    m.set(p + 'post_attention_layernorm.weight', [c.hiddenSize]);
    for (const mod of ['gate_proj', 'up_proj', 'down_proj'] as const) linear(i, mod, false);
    if (c.qkNorm) {
      m.set(p + 'self_attn.q_norm.weight', [c.headDim]);
      m.set(p + 'self_attn.k_norm.weight', [c.headDim]);
    }
    if (c.gemmaNorms) {
      m.set(p + 'pre_feedforward_layernorm.weight', [c.hiddenSize]);
      m.set(p + 'post_feedforward_layernorm.weight', [c.hiddenSize]);
    }
  }
  m.set('model.norm.weight', [c.hiddenSize]);
  if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, c.hiddenSize]);
  return m;
}

/** Number of parameters, for FLOP and memory estimates. */
export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const shape of expectedTensors(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
