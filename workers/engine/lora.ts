// LoRA adapters: y = x·Wᵀ + scale·(dropout(x)·Aᵀ)·Bᵀ on chosen linear modules, never forming B·A.
// A [r, in] starts Kaiming-uniform (as PEFT does), B [out, r] at zero, so a fresh adapter changes nothing.
import * as tf from './tf';
import { linearShape, modulePath, type ModelConfig } from './config';
import { DEFAULT_LORA, LORA_TARGETS } from '../shared/defaults';
import type { LoraConfig, LoraTarget } from '../shared/types';
import { InvalidRequestError } from './errors';
import { Rng } from './sampling';

/** Every linear module of a block can carry an adapter; their shapes come from config.ts. */
export { DEFAULT_LORA, LORA_TARGETS };
export type { LoraConfig, LoraTarget };


export function validateLora(c: LoraConfig): LoraConfig {
  if (!Number.isInteger(c.rank) || c.rank < 1 || c.rank > 1024) throw new InvalidRequestError(`LoRA rank must be a whole number from 1 to 1024, got ${c.rank}.`);
  if (!(c.alpha > 0)) throw new InvalidRequestError(`LoRA alpha must be > 0, got ${c.alpha}.`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new InvalidRequestError(`LoRA dropout must be in [0, 1), got ${c.dropout}.`);
  if (c.targets.length === 0) throw new InvalidRequestError('Choose at least one LoRA target module.');
  const bad = c.targets.find((t) => !(LORA_TARGETS as readonly string[]).includes(t));
  if (bad) throw new InvalidRequestError(`"${bad}" is not a LoRA target; choose from ${LORA_TARGETS.join(', ')}.`);
  return c;
}

/** alpha/r (alpha/√r with rsLoRA): the factor on B·A as trained. A request's LoRA scale multiplies it. */
export function alphaScale(c: LoraConfig): number {
  return c.rslora ? c.alpha / Math.sqrt(c.rank) : c.alpha / c.rank;
}

export { modulePath };

/** [out, in] of a target module for this model. */
export const moduleShape = linearShape;

export interface LoraPair {
  A: tf.Variable; // [r, in]
  B: tf.Variable; // [out, r]
}

let nextAdapterId = 0; // tfjs variable names are global: each adapter's carry a unique suffix (never parsed)

/** A/B tensors by their checkpoint names: `<module path>.lora_A` [r, in] and `<module path>.lora_B` [out, r]. */
export type NamedTensors = ReadonlyMap<string, { shape: number[]; values: Float32Array }>;

const A_SUFFIX = '.lora_A';
const B_SUFFIX = '.lora_B';

export class LoraAdapter {
  constructor(
    readonly config: LoraConfig,
    readonly modules: Map<string, LoraPair>,
  ) {}

  static create(model: ModelConfig, config: LoraConfig, seed: number): LoraAdapter {
    validateLora(config);
    const rng = new Rng(seed);
    const modules = new Map<string, { A: tf.Tensor; B: tf.Tensor }>();
    for (let i = 0; i < model.numLayers; i++) {
      for (const t of config.targets) {
        const [out, inF] = moduleShape(model, t);
        const bound = 1 / Math.sqrt(inF); // kaiming_uniform_(a=√5) as in PEFT's reset_lora_parameters
        const a = new Float32Array(config.rank * inF);
        for (let j = 0; j < a.length; j++) a[j] = (2 * rng.next() - 1) * bound;
        modules.set(modulePath(i, t), { A: tf.tensor2d(a, [config.rank, inF]), B: tf.zeros([out, config.rank]) });
      }
    }
    return LoraAdapter.fromTensors(config, modules);
  }

  /** Wrap A/B tensors (taken over, not copied) as trainable variables. Keys are module paths. */
  static fromTensors(config: LoraConfig, tensors: Map<string, { A: tf.Tensor; B: tf.Tensor }>): LoraAdapter {
    const id = nextAdapterId++;
    const modules = new Map<string, LoraPair>();
    for (const [path, { A, B }] of tensors) {
      modules.set(path, { A: tf.variable(A, true, `${path}.lora_A#${id}`), B: tf.variable(B, true, `${path}.lora_B#${id}`) });
      A.dispose();
      B.dispose();
    }
    return new LoraAdapter(config, modules);
  }

  /** Rebuild an adapter from tensors named as `named()` names them (a checkpoint's); other names are ignored. */
  static fromNamed(config: LoraConfig, tensors: NamedTensors): LoraAdapter {
    const pairs = new Map<string, { A: tf.Tensor; B: tf.Tensor }>();
    for (const [name, a] of tensors) {
      if (!name.endsWith(A_SUFFIX)) continue;
      const path = name.slice(0, -A_SUFFIX.length);
      const b = tensors.get(path + B_SUFFIX);
      if (!b) throw new InvalidRequestError(`The checkpoint has ${name} but no ${path + B_SUFFIX}: it is damaged; use another checkpoint.`);
      pairs.set(path, { A: tf.tensor(a.values, a.shape), B: tf.tensor(b.values, b.shape) });
    }
    return LoraAdapter.fromTensors(config, pairs);
  }

  /** alpha/r: the factor on B·A as trained. */
  get scale(): number {
    return alphaScale(this.config);
  }

  /** Every trainable tensor with its checkpoint name, in the order of `variables()`. */
  named(): { name: string; variable: tf.Variable }[] {
    return [...this.modules].flatMap(([path, p]) => [
      { name: path + A_SUFFIX, variable: p.A },
      { name: path + B_SUFFIX, variable: p.B },
    ]);
  }

  variables(): tf.Variable[] {
    return [...this.modules.values()].flatMap((p) => [p.A, p.B]);
  }

  parameterCount(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
    this.modules.clear();
  }
}
