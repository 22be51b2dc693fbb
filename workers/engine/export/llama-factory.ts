// A webtune run handed to LLaMA-Factory (hiyouga/LLaMA-Factory), which runs the same LoRA SFT on one GPU or
// many (DeepSpeed / FSDP): <name>.yaml with the run's settings under LLaMA-Factory's own argument names,
// dataset_info.json describing the data file, and the data file itself in the format that describes.
import { stringify } from 'yaml';
import { InvalidRequestError } from '../errors';
import { LINEAR_MODULES } from '../config';
import type { Architecture, Example, LoraConfig, RunSettings, TrainConfig, TrainMessage } from '../../shared/types';
import type { Engine } from '../engine';

/** The settings of a run on the engine's model, as `train` records them and the recipe reads them. */
export function runSettings(engine: Engine, baseModel: string, train: TrainConfig, lora: LoraConfig): RunSettings {
  const { config, tokenizer } = engine.current;
  const template = tokenizer.templateChoice;
  return { baseModel, weights: engine.info()?.weights.format, architecture: config.architecture, template, chatTemplate: template === 'model' ? tokenizer.ownTemplateSource : null, train, lora };
}

/** LLaMA-Factory's template (data/template.py's registry) for the chat format the run trained with. */
export function llamaFactoryTemplate(architecture: Architecture, choice: RunSettings['template'], source: string | null): string {
  if (choice === 'none') return 'empty'; // the text as it is, no turn markers
  if (choice === 'chatml') return 'chatml';
  const s = source ?? '';
  if (s.includes('<|start_header_id|>')) return 'llama3';
  if (s.includes('<start_of_turn>')) return 'gemma3';
  if (s.includes('<|im_start|>')) {
    if (architecture === 'Qwen3ForCausalLM') return 'qwen3';
    if (architecture === 'Qwen2ForCausalLM') return 'qwen';
    return s.includes('SmolLM') ? 'smollm2' : 'chatml';
  }
  if (s.includes('[INST]')) return 'llama2';
  if (s.includes('<|user|>')) return 'zephyr';
  throw new InvalidRequestError("No LLaMA-Factory template is known to render this model's chat template; give one from LLaMA-Factory's data/template.py with --template.");
}

/** Files of the recipe, by name. `dataFile` names the data file; `name` the dataset and the YAML file. */
export function llamaFactoryRecipe(run: RunSettings, examples: readonly Example[], name: string, template?: string): Map<string, Uint8Array> {
  if (!/^[\w-]+$/.test(name)) throw new InvalidRequestError(`The recipe name must be letters, digits, _ or -, got "${name}".`);
  if (examples.length === 0) throw new InvalidRequestError('The data has no usable example.');
  const kinds = { chat: 0, text: 0, pair: 0 };
  for (const e of examples) kinds['text' in e ? 'text' : 'chosen' in e ? 'pair' : 'chat']++;
  const mixed = Object.entries(kinds).filter(([, n]) => n > 0);
  if (mixed.length > 1) throw new InvalidRequestError(`The data mixes ${mixed.map(([k, n]) => `${n} ${k === 'pair' ? 'preference pair' : k === 'text' ? 'plain-text example' : 'chat example'}(s)`).join(' and ')}; LLaMA-Factory reads one format per dataset. Split the file.`);
  const pretrain = kinds.text > 0; // {"text"} examples: continued pre-training, every token trained
  const dpo = kinds.pair > 0; // preference pairs: LLaMA-Factory's dpo stage on a ranking dataset
  if (dpo !== (run.train.method === 'dpo')) throw new InvalidRequestError(`The run trained with ${run.train.method} but the data is ${dpo ? 'preference pairs' : 'not preference pairs'}; give the data the run trained on.`);
  const t = run.train;
  const l = run.lora;
  const dataFile = `${name}.jsonl`;
  const plain = (ms: readonly TrainMessage[]) => factoryMessages(ms);
  const withTools = (e: { tools?: unknown[] }) => (e.tools?.length ? { tools: JSON.stringify(e.tools) } : {});
  const lines = examples.map((e, i) => {
    if ('text' in e) return JSON.stringify({ text: e.text });
    if ('messages' in e) return JSON.stringify({ messages: plain(e.messages), ...withTools(e) });
    // A ranking example holds one chosen and one rejected message after the prompt.
    if (e.chosen.length !== 1 || e.rejected.length !== 1) throw new InvalidRequestError(`Pair ${i + 1} answers in several messages; LLaMA-Factory's ranking data holds one chosen and one rejected message. Join each answer into one message.`);
    return JSON.stringify({ messages: plain(e.prompt), chosen: plain(e.chosen)[0], rejected: plain(e.rejected)[0], ...withTools(e) });
  });
  const usesTools = examples.some((e) => !('text' in e) && (e.tools?.length || ('messages' in e ? e.messages : [...e.prompt, ...e.chosen]).some((m) => m.tool_calls || m.role === 'tool')));
  // LLaMA-Factory's roles for a tool call (function_call) and a tool's answer (observation), and its tools column.
  const tags = { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system', ...(usesTools ? { function_tag: 'function_call', observation_tag: 'tool' } : {}) };
  const toolColumn = usesTools ? { tools: 'tools' } : {};
  const info = {
    [name]: pretrain
      ? { file_name: dataFile, columns: { prompt: 'text' } }
      : dpo
        ? { file_name: dataFile, ranking: true, formatting: 'sharegpt', columns: { messages: 'messages', chosen: 'chosen', rejected: 'rejected', ...toolColumn }, tags }
        : { file_name: dataFile, formatting: 'sharegpt', columns: { messages: 'messages', ...toolColumn }, tags },
  };
  const allTargets = LINEAR_MODULES.every((m) => l.targets.includes(m));
  const recipe: Record<string, unknown> = {
    model_name_or_path: run.baseModel,
    stage: pretrain ? 'pt' : dpo ? 'dpo' : 'sft',
    do_train: true,
    finetuning_type: 'lora',
    lora_rank: l.rank,
    lora_alpha: l.alpha,
    lora_dropout: l.dropout,
    lora_target: allTargets ? 'all' : l.targets.join(','),
    use_rslora: l.rslora,
    dataset: name,
    dataset_dir: '.',
    template: template ?? llamaFactoryTemplate(run.architecture, run.template, run.chatTemplate),
    cutoff_len: t.maxSeqLen,
    ...(pretrain || dpo ? {} : { train_on_prompt: t.trainOn === 'all' }),
    // DPO's sigmoid loss against the base model as reference, as webtune computes it
    ...(dpo ? { pref_beta: t.beta, pref_loss: 'sigmoid', dpo_label_smoothing: t.labelSmoothing, pref_ftx: 0 } : {}),
    val_size: t.valSplit,
    output_dir: `saves/${name}`,
    logging_steps: 10,
    save_strategy: 'epoch',
    plot_loss: true,
    report_to: 'none',
    // The effective batch is per_device_train_batch_size × gradient_accumulation_steps × the number of GPUs.
    per_device_train_batch_size: t.batchSize,
    gradient_accumulation_steps: t.gradAccum,
    learning_rate: t.learningRate,
    num_train_epochs: t.epochs,
    ...(t.maxSteps !== null ? { max_steps: t.maxSteps } : {}),
    lr_scheduler_type: t.schedule,
    warmup_ratio: t.warmupRatio,
    weight_decay: t.weightDecay,
    max_grad_norm: t.maxGradNorm,
    adam_beta1: t.beta1,
    adam_beta2: t.beta2,
    adam_epsilon: t.epsilon,
    seed: t.seed,
    bf16: true, // webtune trains in float32; bf16 is what a cluster GPU runs fast
    ...(t.valSplit > 0 ? (t.evalEvery > 0 ? { eval_strategy: 'steps', eval_steps: t.evalEvery } : { eval_strategy: 'epoch' }) : {}),
    // Early stopping as webtune's: transformers' callback, which needs the best model kept and saves on each evaluation.
    ...(t.valSplit > 0 && t.earlyStoppingPatience > 0
      ? { early_stopping_steps: t.earlyStoppingPatience, load_best_model_at_end: true, metric_for_best_model: 'eval_loss', ...(t.evalEvery > 0 ? { save_strategy: 'steps', save_steps: t.evalEvery } : {}) }
      : {}),
    per_device_eval_batch_size: t.batchSize,
  };
  const head = `# LLaMA-Factory recipe of a webtune run on ${run.baseModel}.\n# One GPU:  llamafactory-cli train ${name}.yaml\n# Several:  FORCE_TORCHRUN=1 llamafactory-cli train ${name}.yaml   (add deepspeed: <ds_z2_config.json> for ZeRO)\n`;
  const enc = new TextEncoder();
  return new Map([
    [`${name}.yaml`, enc.encode(head + pyYamlFloats(stringify(recipe)))],
    ['dataset_info.json', enc.encode(JSON.stringify(info, null, 2) + '\n')],
    [dataFile, enc.encode(lines.join('\n') + '\n')],
  ]);
}

/** Messages in LLaMA-Factory's sharegpt shape: an assistant turn that calls tools becomes a function_call turn
 * holding the calls as JSON ({name, arguments}, a list for several); the answers of consecutive tool messages
 * become one tool (observation) turn, a JSON list when there are several. */
function factoryMessages(ms: readonly TrainMessage[]): { role: string; content: string }[] {
  const out: { role: string; content: string }[] = [];
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i];
    if (m.role === 'tool') {
      let j = i;
      while (j + 1 < ms.length && ms[j + 1].role === 'tool') j++;
      const answers = ms.slice(i, j + 1).map((t) => t.content);
      out.push({ role: 'tool', content: answers.length === 1 ? answers[0] : JSON.stringify(answers) });
      i = j;
    } else if (m.tool_calls?.length) {
      if (m.content.trim()) throw new InvalidRequestError(`An assistant turn both answers ("${m.content.slice(0, 40)}…") and calls tools; LLaMA-Factory's data holds one or the other per turn. Split it into two turns.`);
      const calls = m.tool_calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments }));
      out.push({ role: 'function_call', content: JSON.stringify(calls.length === 1 ? calls[0] : calls) });
    } else out.push({ role: m.role, content: m.content });
  }
  return out;
}

/** LLaMA-Factory reads the YAML with PyYAML (YAML 1.1), which takes 1e-8 for a string: a float needs a dot. */
function pyYamlFloats(yaml: string): string {
  return yaml.replace(/^(\w+): (-?\d+)e([-+]\d+)$/gm, '$1: $2.0e$3');
}
