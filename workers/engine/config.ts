// Model architecture, read from a Hugging Face config.json. Architecture only: LoRA and training
// settings live in their own typed objects. Anything this engine does not implement is refused by name.
import { ModelFormatError, UnsupportedModelError } from './errors';

export type Architecture = 'LlamaForCausalLM' | 'Qwen2ForCausalLM';

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number; // MLP width
  numLayers: number;
  numHeads: number; // H, query heads
  numKvHeads: number; // KVH, key/value heads (grouped-query attention when < H)
  headDim: number; // D
  ropeTheta: number;
  rmsNormEps: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  qkvBias: boolean; // Qwen2 always; Llama when attention_bias
  oBias: boolean; // Llama attention_bias also biases o_proj
}

type Json = Record<string, unknown>;

function num(cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    if (v === undefined) throw new ModelFormatError('config.json', `required field "${key}" is missing.`);
    throw new ModelFormatError('config.json', `field "${key}" must be a number, got ${JSON.stringify(v)}.`);
  }
  return v;
}

function posInt(cfg: Json, key: string, fallback?: number): number {
  const v = num(cfg, key, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new ModelFormatError('config.json', `field "${key}" must be a positive integer, got ${v}.`);
  return v;
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
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new ModelFormatError('config.json', 'must be a JSON object.');

  const archs = cfg.architectures;
  const arch = Array.isArray(archs) ? archs[0] : undefined;
  if (arch !== 'LlamaForCausalLM' && arch !== 'Qwen2ForCausalLM') {
    throw new UnsupportedModelError('architectures', `${JSON.stringify(archs ?? null)} is not supported`);
  }
  const isQwen = arch === 'Qwen2ForCausalLM';

  const hiddenAct = cfg.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') throw new UnsupportedModelError('hidden_act', `"${String(hiddenAct)}" is not supported (only "silu")`);

  // Rope: transformers v4 writes rope_theta + rope_scaling; v5 writes rope_parameters {rope_type, rope_theta}.
  let ropeTheta = num(cfg, 'rope_theta', 10000);
  const scaling = cfg.rope_scaling as Json | null | undefined;
  if (scaling !== null && scaling !== undefined) {
    const type = scaling.rope_type ?? scaling.type;
    if (type !== 'default') throw new UnsupportedModelError('rope_scaling', `rope scaling type ${JSON.stringify(type)} is not supported`);
  }
  const params = cfg.rope_parameters as Json | null | undefined;
  if (params !== null && params !== undefined) {
    const type = params.rope_type ?? 'default';
    if (type !== 'default') throw new UnsupportedModelError('rope_parameters', `rope_type ${JSON.stringify(type)} is not supported`);
    if (params.rope_theta !== undefined) ropeTheta = num(params, 'rope_theta');
  }
  if (cfg.use_sliding_window === true) throw new UnsupportedModelError('use_sliding_window', 'sliding-window attention is not supported');
  if (cfg.mlp_bias === true) throw new UnsupportedModelError('mlp_bias', 'biases in the MLP are not supported');
  const attentionBias = cfg.attention_bias === true;
  if (isQwen && cfg.attention_bias !== undefined && !attentionBias) {
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

  return {
    architecture: arch,
    vocabSize: posInt(cfg, 'vocab_size'),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size'),
    numLayers: posInt(cfg, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    ropeTheta,
    rmsNormEps: num(cfg, 'rms_norm_eps', 1e-6),
    maxPositions: posInt(cfg, 'max_position_embeddings', 2048),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    qkvBias: isQwen || attentionBias,
    oBias: !isQwen && attentionBias,
  };
}

/** Every tensor the model needs, by its Hugging Face checkpoint key, with its expected shape. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  m.set('model.embed_tokens.weight', [c.vocabSize, c.hiddenSize]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [c.hiddenSize]);
    m.set(p + 'self_attn.q_proj.weight', [q, c.hiddenSize]);
    m.set(p + 'self_attn.k_proj.weight', [kv, c.hiddenSize]);
    m.set(p + 'self_attn.v_proj.weight', [kv, c.hiddenSize]);
    m.set(p + 'self_attn.o_proj.weight', [c.hiddenSize, q]);
    if (c.qkvBias) {
      m.set(p + 'self_attn.q_proj.bias', [q]);
      m.set(p + 'self_attn.k_proj.bias', [kv]);
      m.set(p + 'self_attn.v_proj.bias', [kv]);
    }
    if (c.oBias) m.set(p + 'self_attn.o_proj.bias', [c.hiddenSize]);
    m.set(p + 'post_attention_layernorm.weight', [c.hiddenSize]);
    m.set(p + 'mlp.gate_proj.weight', [c.intermediateSize, c.hiddenSize]);
    m.set(p + 'mlp.up_proj.weight', [c.intermediateSize, c.hiddenSize]);
    m.set(p + 'mlp.down_proj.weight', [c.hiddenSize, c.intermediateSize]);
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
