// Every default and every list of names the engine and the UI share, each defined once with its reason.
// Values only, no tfjs: the UI imports these directly (a drift here would, say, silently pick another
// validation split than the run used).
import type { GenerateOptions, LoraConfig, TrainConfig } from './types';

/** The architectures the engine implements, by config.json's `architectures[0]`. */
export const ARCHITECTURES = ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'Gemma3ForCausalLM'] as const;

/** The seven linear modules of every block, by their checkpoint names; each can carry a LoRA adapter. */
export const LINEAR_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export const LORA_TARGETS = LINEAR_MODULES;

/** Which chat template renders conversations: the model's own (the default), plain ChatML, or none (raw text only). */
export const TEMPLATE_CHOICES = ['model', 'chatml', 'none'] as const;

export const DEFAULT_LORA: LoraConfig = {
  rank: 8, // PEFT's default; enough capacity for a domain or style on small models
  alpha: 16, // scale alpha/r = 2, the common choice in LLaMA-Factory recipes
  dropout: 0.05, // light regularisation for small datasets
  targets: [...LORA_TARGETS], // all seven linear modules: best quality per trained parameter (QLoRA's finding)
  rslora: false, // PEFT's default; true scales by alpha/√r, steadier at high ranks
};

export const DEFAULT_TRAIN: TrainConfig = {
  epochs: 3, // OpenAI's default for small fine-tuning sets
  maxSteps: null, // run every epoch
  learningRate: 2e-4, // the usual LoRA peak rate (PEFT and LLaMA-Factory examples)
  batchSize: 4, // fits SmolLM2-135M at 256 tokens in a browser tab
  gradAccum: 1, // raise it to grow the effective batch without more memory
  maxSeqLen: 512, // covers most chat examples; longer ones are truncated and counted
  warmupRatio: 0.03, // a short linear warm-up, as in HF Trainer recipes
  schedule: 'cosine', // decays smoothly to zero by the last step
  weightDecay: 0, // PEFT's LoRA recipes do not decay adapters by default
  maxGradNorm: 1.0, // HF Trainer's clipping default
  beta1: 0.9, // Adam's default
  beta2: 0.999, // Adam's default
  epsilon: 1e-8, // Adam's default
  valSplit: 0.1, // a tenth held out to watch for over-fitting
  evalEvery: 0, // evaluate at each epoch's end only
  earlyStoppingPatience: 3, // with a validation set: three evaluations in a row without a better loss is over-fitting, not noise
  trainOn: 'assistant', // learn the answers, not the prompts
  seed: 42, // any fixed seed: runs are reproducible by default
  activationCheckpointing: true, // far less memory for ~⅓ more compute: memory is what a browser tab lacks
  method: 'sft', // learn the answers; a preference dataset trains with dpo
  beta: 0.1, // DPO paper's and TRL's default: the tuned model may drift moderately from the base
  labelSmoothing: 0, // plain DPO: every pair is taken as labelled right
};

/** DPO's usual LoRA rate, far below SFT's: LLaMA-Factory's LoRA DPO recipe and the alignment handbook's QLoRA DPO
 * both use 5e-6; SFT's 2e-4 makes the policy run away from the reference within a few steps. */
export const DPO_LEARNING_RATE = 5e-6;

/** The learning rate a run of this method starts from when none is given. */
export const defaultLearningRate = (method: TrainConfig['method']): number => (method === 'dpo' ? DPO_LEARNING_RATE : DEFAULT_TRAIN.learningRate);

/** The first run: the demo model, the bundled sample chats (public/samples/) and settings under which the tiny
 * untrained model visibly learns them in under a minute on WASM (8 chats, 60 steps; measured: every answer
 * reproduced, loss 6.6 → 0.15). The usual defaults (3 epochs at 2e-4) suit a pretrained model, not this one. */
export const DEMO_RUN = {
  dataset: 'samples/demo-chat.jsonl',
  train: { epochs: 30, learningRate: 0.01, batchSize: 4, valSplit: 0 },
  ask: 'Who are you?',
} as const;

/** Epochs sized to the data, as OpenAI's fine-tuning picks them for "auto": aim at 3 passes, but see every example
 * about 100 times in all on a small set (at most 25 epochs) and at most about 25,000 times on a large one (at least 1). */
export function autoEpochs(examples: number): { epochs: number; rule: string } {
  const n = Math.max(1, examples);
  const epochs = n * 3 < 100 ? Math.min(25, Math.floor(100 / n)) : n * 3 > 25_000 ? Math.max(1, Math.floor(25_000 / n)) : 3;
  const why = n * 3 < 100 ? `${n} examples × 3 epochs is under 100 examples seen, so ${epochs} (100 ÷ ${n}, at most 25)` : n * 3 > 25_000 ? `${n} examples × 3 epochs is over 25,000 seen, so ${epochs} (25,000 ÷ ${n}, at least 1)` : `${n} examples × 3 epochs is between 100 and 25,000 seen, so 3`;
  return { epochs, rule: why };
}

/** How many of n examples a validation fraction holds out: rounded, and both sides keep at least one. */
export function validationCount(n: number, valFraction: number): number {
  const nVal = Math.round(n * valFraction);
  return valFraction > 0 && n >= 2 ? Math.max(1, Math.min(n - 1, nVal)) : nVal;
}

/** A learning rate sized to the batch each step actually sees, for "auto": the usual LoRA rate at an effective batch
 * of 8 (2e-4 for SFT, as in QLoRA/Unsloth recipes; 5e-6 for DPO, LLaMA-Factory's LoRA DPO recipe), scaled by
 * √(batch ÷ 8), Adam's square-root rule, and kept within 4× of the anchor either way. A step never sees more examples
 * than the training set holds, so a tiny dataset counts as its own size. */
export function autoLearningRate(trainExamples: number, batchSize: number, gradAccum: number, method: TrainConfig['method']): { learningRate: number; rule: string } {
  const anchor = defaultLearningRate(method);
  const effective = Math.max(1, Math.min(Math.floor(trainExamples), batchSize * gradAccum));
  const raw = anchor * Math.sqrt(effective / 8);
  const learningRate = Number(Math.min(4 * anchor, Math.max(anchor / 4, raw)).toPrecision(2));
  const fmt = (x: number) => x.toExponential(1).replace('.0e', 'e');
  const seen = effective < batchSize * gradAccum ? `${effective} (the whole training set)` : `${effective}`;
  const clamp = raw > 4 * anchor ? ', capped at 4×' : raw < anchor / 4 ? ', floored at ¼' : '';
  return { learningRate, rule: `${fmt(anchor)} at a batch of 8 × √(${seen} ÷ 8) = ${fmt(learningRate)}${clamp}` };
}

/** The training methods: supervised fine-tuning on answers, and DPO on preference pairs. */
export const TRAIN_METHODS = ['sft', 'dpo'] as const;

export const DEFAULT_GENERATE: Required<GenerateOptions> = {
  maxNewTokens: 256, // a full chat answer, bounded
  temperature: 0, // greedy: reproducible answers unless asked otherwise
  topK: 0, // off
  topP: 1, // off
  seed: 0, // sampling is reproducible by default
  loraScale: 1, // the adapter as trained
};

/** The Hugging Face Hub; a mirror (HF_ENDPOINT) replaces it. */
export const DEFAULT_HUB = 'https://huggingface.co';

/** The dataset formats webtune reads, detected per line. */
export const FORMATS = ['openai', 'alpaca', 'sharegpt', 'prompt_completion', 'text', 'preference'] as const;

export const FORMAT_LABELS: Record<(typeof FORMATS)[number], string> = {
  openai: 'OpenAI chat ({"messages": [...]})',
  alpaca: 'Alpaca ({"instruction", "input", "output"})',
  sharegpt: 'ShareGPT ({"conversations": [{"from", "value"}]})',
  prompt_completion: 'prompt/completion ({"prompt", "completion"})',
  text: 'plain text ({"text"})',
  preference: 'preference pairs (chosen and rejected answers: OpenAI DPO, LLaMA-Factory ranking, TRL)',
};

/** A dataset line with one of these is not loaded; the codes are stable (the report and tests name them). */
export const ERROR_CODES = ['invalid_json', 'not_an_object', 'unknown_format', 'missing_messages', 'unrecognized_role', 'missing_content', 'empty_content', 'no_assistant_message', 'invalid_pair', 'mixed_method', 'kto_unsupported', 'multimodal_unsupported', 'invalid_tool_call'] as const;
/** A line with one of these loads; the user is told. */
export const WARNING_CODES = ['message_unrecognized_key', 'duplicate_key', 'mixed_formats', 'duplicate_example', 'too_long', 'no_trained_token', 'invalid_utf8', 'utf16_decoded', 'unfilled_placeholder', 'identical_pair', 'tools_unsupported'] as const;

/** GGUF export types: f16 (llama.cpp's usual), q8_0 (half the size, near-lossless), f32. */
export const GGUF_TYPES = ['f16', 'q8_0', 'f32'] as const;

/** Merged-model export dtypes (safetensors). */
export const MERGED_DTYPES = ['F32', 'F16', 'BF16'] as const;
