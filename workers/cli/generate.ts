// `generate`: one user message through the chat template (or --raw text, or --prompt-ids) → generated text.
import type { BackendPreference } from '../engine/backend';
import { Engine, type GenerateInput } from '../engine/engine';
import { InvalidRequestError } from '../engine/errors';
import { resolveModelArg } from '../node/dir-files';
import { setupNodeHost } from '../node/host';
import { parse } from './main';

export const GENERATE_HELP = `
generate options:
  --model <dir|url|hub-id>   model folder, http(s) base URL, or Hugging Face repo id (owner/name[@revision])
  --prompt <text>            one user message, rendered with the model's chat template
  --prompt-ids <id,id,...>   token ids, used as they are
  --raw                      tokenize --prompt as is, without the chat template
  --max-new-tokens N         default 256
  --temperature T            default 0 (greedy)
  --top-k K                  default 0 (off)
  --top-p P                  default 1 (off)
  --seed S                   default 0
  --backend wasm|cpu|webgpu  default wasm in Node
  --json                     last line: {"prompt_ids": [...], "ids": [...], "text": "..."}
`;

const BACKENDS = ['auto', 'wasm', 'cpu', 'webgpu'];

export function number(v: string | undefined, flag: string, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n))) throw new InvalidRequestError(`${flag} must be ${int ? 'a whole number' : 'a number'}, got "${v}".`);
  return n;
}

export function backendArg(v: string | undefined): BackendPreference {
  const b = v ?? 'wasm';
  if (!BACKENDS.includes(b)) throw new InvalidRequestError(`--backend must be one of ${BACKENDS.join(', ')}, got "${b}".`);
  return b as BackendPreference;
}

export async function runGenerate(args: string[]): Promise<number> {
  const v = parse(args, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    'prompt-ids': { type: 'string' },
    raw: { type: 'boolean' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!v.model) throw new InvalidRequestError('--model is required.');
  if ((v.prompt === undefined) === (v['prompt-ids'] === undefined)) throw new InvalidRequestError('give exactly one of --prompt or --prompt-ids.');
  let input: GenerateInput;
  if (v['prompt-ids'] !== undefined) {
    input = { ids: (v['prompt-ids'] as string).split(',').map((s) => number(s.trim(), '--prompt-ids', true)!) };
  } else input = v.raw ? { text: v.prompt as string } : { messages: [{ role: 'user', content: v.prompt as string }] };
  const options = {
    maxNewTokens: number(v['max-new-tokens'] as string | undefined, '--max-new-tokens', true),
    temperature: number(v.temperature as string | undefined, '--temperature'),
    topK: number(v['top-k'] as string | undefined, '--top-k', true),
    topP: number(v['top-p'] as string | undefined, '--top-p'),
    seed: number(v.seed as string | undefined, '--seed', true),
  };

  setupNodeHost();
  const engine = new Engine();
  const info = await engine.loadFiles(await resolveModelArg(v.model as string), { backend: backendArg(v.backend as string | undefined) });
  if (!v.json) process.stderr.write(`${info.id}: ${info.config.architecture}, ${(info.parameters / 1e6).toFixed(2)}M parameters, backend ${info.backend.name} (${info.backend.reason})\n`);
  const result = await engine.generate(input, options, v.json ? undefined : (t) => process.stdout.write(t.text));
  if (v.json) {
    process.stdout.write(JSON.stringify({ prompt_ids: result.promptIds, ids: result.ids, text: result.text }) + '\n');
  } else {
    process.stdout.write('\n');
    process.stderr.write(`${result.ids.length} tokens, stop: ${result.stopReason}, prefill ${result.prefillMs.toFixed(0)} ms, decode ${result.decodeTokensPerSecond.toFixed(1)} tokens/s\n`);
  }
  engine.unload();
  return 0;
}
