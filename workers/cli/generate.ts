// `generate`: one user message through the chat template (or --raw text, or --prompt-ids) → generated text.
import { Engine } from '../engine/engine';
import type { GenerateInput } from '../shared/types';
import { InvalidRequestError } from '../engine/errors';
import { THREADS_HELP, WEIGHTS_HELP, weightsArg, backendArg, number, parse, templateArg, threadsArg } from './args';
import { resolveModelArg } from '../node/dir-files';
import { applyAdapterDir } from './adapter-arg';
import { setupNodeHost } from '../node/host';
import { trackPeakBytes } from '../engine/memory-peak';
import { DEFAULT_GENERATE as G } from '../shared/defaults';

export const GENERATE_HELP = `
generate options:
  --model <dir|url|hub-id>   model folder, http(s) base URL, or Hugging Face repo id (owner/name[@revision])
  --prompt <text>            one user message, rendered with the model's chat template
  --prompt-ids <id,id,...>   token ids, used as they are
  --raw                      tokenize --prompt as is, without the chat template
  --chat-template T          model (its own, the default), chatml, or none
  --no-thinking              enable_thinking = false, for templates that read it (Qwen3)
  --max-new-tokens N         default ${G.maxNewTokens}
  --temperature T            default ${G.temperature} (0 = greedy)
  --top-k K                  default ${G.topK} (0 = off)
  --top-p P                  default ${G.topP} (1 = off)
  --seed S                   default ${G.seed}
  --adapter <dir>            apply a PEFT LoRA adapter folder
  --lora-scale S             0 = base model … 1 = adapter as trained (default ${G.loraScale})
  --backend wasm|cpu|webgpu  default wasm in Node
${THREADS_HELP}
${WEIGHTS_HELP}
  --json                     last line: {"prompt_ids": [...], "ids": [...], "text": "...", "weights": format,
                             "weight_bytes": the base's resident bytes, "peak_bytes": most tensor bytes held}
`;

export async function runGenerate(args: string[]): Promise<number> {
  const v = parse(args, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    'prompt-ids': { type: 'string' },
    raw: { type: 'boolean' },
    'chat-template': { type: 'string' },
    'no-thinking': { type: 'boolean' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    weights: { type: 'string' },
    adapter: { type: 'string' },
    'lora-scale': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!v.model) throw new InvalidRequestError('--model is required.');
  if ((v.prompt === undefined) === (v['prompt-ids'] === undefined)) throw new InvalidRequestError('give exactly one of --prompt or --prompt-ids.');
  let input: GenerateInput;
  if (v['prompt-ids'] !== undefined) {
    input = { ids: v['prompt-ids'].split(',').map((s) => number(s.trim(), '--prompt-ids', true)!) };
  } else input = v.raw ? { text: v.prompt! } : { messages: [{ role: 'user', content: v.prompt! }], template: v['no-thinking'] ? { enable_thinking: false } : {} };
  const template = templateArg(v['chat-template']);
  const options = {
    maxNewTokens: number(v['max-new-tokens'], '--max-new-tokens', true),
    temperature: number(v.temperature, '--temperature'),
    topK: number(v['top-k'], '--top-k', true),
    topP: number(v['top-p'], '--top-p'),
    seed: number(v.seed, '--seed', true),
    loraScale: number(v['lora-scale'], '--lora-scale'),
  };

  setupNodeHost();
  threadsArg(v.threads);
  const memory = trackPeakBytes();
  const engine = new Engine();
  let info = await engine.loadFiles(await resolveModelArg(v.model), { backend: backendArg(v.backend), weights: weightsArg(v.weights) });
  if (template) info = engine.setChatTemplate(template);
  if (v.adapter) await applyAdapterDir(engine, v.adapter);
  else if (v['lora-scale'] !== undefined) throw new InvalidRequestError('--lora-scale needs --adapter.');
  if (!v.json) process.stderr.write(`${info.id}: ${info.config.architecture}, ${(info.parameters / 1e6).toFixed(2)}M parameters, backend ${info.backend.name}${info.backend.threads ? ` on ${info.backend.threads} thread(s)` : ''} (${info.backend.reason})\n`);
  const result = await engine.generate(input, options, v.json ? undefined : (t) => process.stdout.write(t.text));
  if (v.json) {
    process.stdout.write(JSON.stringify({ prompt_ids: result.promptIds, ids: result.ids, text: result.text, weights: info.weights.format, weight_bytes: info.tensorBytes, peak_bytes: memory.peak }) + '\n');
  } else {
    process.stdout.write('\n');
    process.stderr.write(`${result.ids.length} tokens, stop: ${result.stopReason}, prefill ${result.prefillMs.toFixed(0)} ms, decode ${result.decodeTokensPerSecond.toFixed(1)} tokens/s\n`);
  }
  engine.unload();
  return 0;
}
