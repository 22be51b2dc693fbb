// The dataset formats webtune reads, detected per line and converted to the one internal form (Example).
// Every problem becomes a Finding with its line number, a stable code and a message saying what to do.
import type { Example, PreferenceExample, TrainMessage } from '../train/examples';
import type { ToolCall, ToolSchema } from '../../shared/types';
import { FORMAT_LABELS, FORMATS } from '../../shared/defaults';
import type { DatasetFormat, ErrorCode, Finding, WarningCode } from '../../shared/types';

export { FORMAT_LABELS, FORMATS };
export type { DatasetFormat, ErrorCode, Finding, WarningCode };


type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The format a record looks like, by its keys; null when none fits. */
export function detectFormat(v: Obj): DatasetFormat | null {
  if (('chosen' in v && 'rejected' in v) || 'preferred_output' in v || 'chosen_messages' in v) return 'preference';
  if ('messages' in v) return 'openai';
  if ('conversations' in v) return 'sharegpt';
  if ('instruction' in v || ('output' in v && 'input' in v)) return 'alpaca';
  if ('prompt' in v || 'completion' in v) return 'prompt_completion';
  if ('text' in v) return 'text';
  return null;
}

/** Message fields: OpenAI's {role, content} or ShareGPT's {from, value}. */
// ShareGPT's function_call is an assistant turn that calls tools, its observation the tools' answer (LLaMA-Factory).
const SHAPES = {
  openai: { role: 'role', content: 'content', roles: { system: 'system', user: 'user', assistant: 'assistant', tool: 'tool' }, advice: '"system", "user", "assistant" or "tool"' },
  sharegpt: { role: 'from', content: 'value', roles: { system: 'system', human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', function_call: 'assistant', observation: 'tool', tool: 'tool' }, advice: '"system", "human", "gpt", "function_call" or "observation"' },
} as const;
type Shape = keyof typeof SHAPES;
// name is OpenAI's speaker name, weight OpenAI's and loss_weight LLaMA-Factory's per-message training switch.
const OPENAI_KEYS = new Set(['role', 'content', 'weight', 'name', 'loss_weight', 'tool_calls', 'tool_call_id', 'reasoning_content']);
/** Content part types that carry media, which a text-only model cannot read. */
const MEDIA_PARTS = new Set(['image', 'image_url', 'input_image', 'audio', 'input_audio', 'audio_url', 'video', 'video_url', 'file']);
/** LLaMA-Factory's multimodal columns. */
const MEDIA_KEYS = ['images', 'videos', 'audios'] as const;
const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

export interface Converted {
  example: Example | null; // null when the line has an error
  findings: Finding[];
}

/** One record's findings; each `error` returns null so that a reader can `return r.error(…)`. */
class Reader {
  readonly findings: Finding[] = [];
  constructor(readonly line: number) {}
  error(code: ErrorCode, message: string): null {
    this.findings.push({ line: this.line, code, message });
    return null;
  }
  warn(code: WarningCode, message: string): void {
    this.findings.push({ line: this.line, code, message });
  }
}

/** A message's content: a string, or a list of parts — text ({type: "text", text | value}, joined), LLaMA-Factory's
 * reasoning and tool_call parts. `optional`: an assistant turn that calls tools may have no text. */
function content(r: Reader, x: unknown, where: string, optional = false): { text: string; reasoning?: string; calls: ToolCall[] } | null {
  const calls: ToolCall[] = [];
  let reasoning: string | undefined;
  let out: string;
  if (typeof x === 'string') out = x;
  else if ((x === null || x === undefined) && optional) out = '';
  else if (Array.isArray(x)) {
    const parts: string[] = [];
    for (const [i, p] of x.entries()) {
      const type = isObj(p) ? p.type : undefined;
      const body = isObj(p) ? (p.text ?? p.value) : undefined;
      if (typeof type === 'string' && MEDIA_PARTS.has(type)) {
        return r.error('multimodal_unsupported', `${where}[${i}] is an ${type} part. webtune tunes text-only models, so this example is skipped; remove its media parts to train on the text.`);
      }
      if (type === 'tool_call' && typeof body === 'string') {
        const c = toolCalls(r, body, `${where}[${i}]`);
        if (!c) return null;
        calls.push(...c);
        continue;
      }
      if ((type !== 'text' && type !== 'reasoning' && type !== undefined) || typeof body !== 'string') return r.error('missing_content', `${where}[${i}] must be a text part, {"type": "text", "text": "…"}.`);
      if (type === 'reasoning') reasoning = (reasoning ?? '') + body;
      else parts.push(body);
    }
    out = parts.join('');
  } else return r.error('missing_content', `${where} ${x === undefined ? 'is missing' : 'must be a string or a list of text parts'}.`);
  if (out.trim() === '' && !optional && calls.length === 0) return r.error('empty_content', `${where} is empty.`);
  return { text: out, ...(reasoning !== undefined ? { reasoning } : {}), calls };
}

/** A message's text only (the prompt of a pair). */
function text(r: Reader, x: unknown, where: string): string | null {
  return content(r, x, where)?.text ?? null;
}

/** Tool calls: OpenAI's [{type: "function", function: {name, arguments}}] (arguments a JSON string or an object),
 * or ShareGPT's function_call value, a JSON {name, arguments} or a list of them. */
function toolCalls(r: Reader, x: unknown, where: string): ToolCall[] | null {
  let v = x;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch (e) {
      return r.error('invalid_tool_call', `${where} is not valid JSON (${(e as Error).message}); a tool call is {"name": …, "arguments": {…}}.`);
    }
  }
  const list = Array.isArray(v) ? v : [v];
  const out: ToolCall[] = [];
  for (const [i, c] of list.entries()) {
    const at = Array.isArray(v) ? `${where}[${i}]` : where;
    const fn = isObj(c) && isObj(c.function) ? c.function : c; // OpenAI's wrapper, or the bare call
    if (!isObj(fn) || typeof fn.name !== 'string' || fn.name === '') return r.error('invalid_tool_call', `${at} must name its function: {"name": …, "arguments": {…}}.`);
    let args = fn.arguments ?? fn.parameters ?? {};
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch (e) {
        return r.error('invalid_tool_call', `${at}.arguments is not valid JSON (${(e as Error).message}).`);
      }
    }
    if (!isObj(args)) return r.error('invalid_tool_call', `${at}.arguments must be a JSON object of the call's arguments.`);
    out.push({ type: 'function', function: { name: fn.name, arguments: args }, ...(isObj(c) && typeof c.id === 'string' ? { id: c.id } : {}) });
  }
  return out;
}

/** A record's `tools`: a list of function schemas (OpenAI's {type: "function", function} or bare), or that list as
 * a JSON string (LLaMA-Factory); undefined when the record has none. */
function tools(r: Reader, v: Obj): ToolSchema[] | undefined | null {
  let x = v.tools;
  if (x === undefined || x === null || x === '') return undefined;
  if (typeof x === 'string') {
    try {
      x = JSON.parse(x);
    } catch (e) {
      return r.error('invalid_tool_call', `"tools" is not valid JSON (${(e as Error).message}); it must be a list of function schemas.`);
    }
  }
  if (!Array.isArray(x)) return r.error('invalid_tool_call', '"tools" must be a list of function schemas ({"type": "function", "function": {"name", "description", "parameters"}}).');
  const out: ToolSchema[] = [];
  for (const [i, t] of x.entries()) {
    const fn = isObj(t) && isObj(t.function) ? t.function : t;
    if (!isObj(fn) || typeof fn.name !== 'string') return r.error('invalid_tool_call', `tools[${i}] must be a function schema with a "name".`);
    out.push(isObj(t) && isObj(t.function) ? ({ ...t, type: 'function' } as ToolSchema) : { type: 'function', function: fn as ToolSchema['function'] });
  }
  return out.length ? out : undefined;
}

/** A record's string field (Alpaca, prompt/completion, text). */
function field(r: Reader, v: Obj, key: string): string | null {
  const x = v[key];
  if (typeof x !== 'string') return r.error('missing_content', `"${key}" ${x === undefined ? 'is missing' : 'must be a string'}.`);
  if (x.trim() === '') return r.error('empty_content', `"${key}" is empty.`);
  return x;
}

function message(r: Reader, m: unknown, where: string, shape: Shape): TrainMessage | null {
  const s = SHAPES[shape];
  if (!isObj(m)) return r.error(shape === 'openai' ? 'missing_content' : 'unrecognized_role', `${where} must be an object with "${s.role}" and "${s.content}".`);
  const name = m[s.role];
  const role = typeof name === 'string' ? (s.roles as Record<string, TrainMessage['role']>)[name] : undefined;
  if (!role) return r.error('unrecognized_role', `${where}.${s.role} is ${JSON.stringify(name)}; use ${s.advice}.`);
  const callsTurn = name === 'function_call'; // ShareGPT: the value is the call itself
  const listed = role === 'assistant' && shape === 'openai' && m.tool_calls !== undefined && m.tool_calls !== null ? toolCalls(r, m.tool_calls, `${where}.tool_calls`) : [];
  if (!listed) return null;
  const body: { text: string; reasoning?: string; calls: ToolCall[] | null } | null = callsTurn ? { text: '', calls: toolCalls(r, m[s.content], `${where}.${s.content}`) } : content(r, m[s.content], `${where}.${s.content}`, listed.length > 0);
  if (!body || !body.calls) return null;
  const calls = [...listed, ...body.calls];
  if (calls.length && role !== 'assistant') return r.error('invalid_tool_call', `${where} is a ${role} message holding tool calls; only the assistant calls tools.`);
  if (shape === 'openai') for (const k of Object.keys(m)) if (!OPENAI_KEYS.has(k)) r.warn('message_unrecognized_key', `${where}.${k} is not a chat message field; it is ignored.`);
  const key = m.weight !== undefined ? 'weight' : 'loss_weight';
  const w = m[key];
  if (w !== undefined && w !== 0 && w !== 1) r.warn('message_unrecognized_key', `${where}.${key} must be 0 or 1, got ${JSON.stringify(w)}; it is ignored.`);
  return {
    role,
    content: body.text,
    ...(role === 'assistant' && (w === 0 || w === 1) ? { weight: w } : {}),
    ...(calls.length ? { tool_calls: calls } : {}),
    ...(body.reasoning !== undefined ? { reasoning_content: body.reasoning } : typeof m.reasoning_content === 'string' && role === 'assistant' ? { reasoning_content: m.reasoning_content } : {}),
    ...(role === 'tool' && typeof m.tool_call_id === 'string' ? { tool_call_id: m.tool_call_id } : {}),
    ...(role === 'tool' && typeof m.name === 'string' ? { name: m.name } : {}),
  };
}

function messages(r: Reader, list: unknown, where: string, shape: Shape): TrainMessage[] | null {
  if (!Array.isArray(list) || list.length === 0) {
    const item = shape === 'openai' ? '{"role", "content"}' : '{"from", "value"}';
    return r.error('missing_messages', `"${where}" must be a non-empty array of ${item} objects${list === undefined ? ', and it is missing' : ''}.`);
  }
  const out: TrainMessage[] = [];
  for (const [i, m] of list.entries()) {
    const msg = message(r, m, `${where}[${i}]`, shape);
    if (!msg) return null;
    out.push(msg);
  }
  return out;
}

const shapeOf = (m: unknown): Shape => (isObj(m) && 'from' in m && !('role' in m) ? 'sharegpt' : 'openai');

function chat(r: Reader, ms: TrainMessage[] | null, v: Obj): Example | null {
  if (!ms) return null;
  if (!ms.some((m) => m.role === 'assistant')) return r.error('no_assistant_message', 'There is no assistant message to learn from; add the answer the model should give.');
  const t = tools(r, v);
  if (t === null) return null;
  return t ? { messages: ms, tools: t } : { messages: ms };
}

/** An answer of a pair: a string, one message, or a list of messages (a bare string is the assistant's). */
function answer(r: Reader, x: unknown, where: string): TrainMessage[] | null {
  if (typeof x === 'string') {
    const content = text(r, x, where);
    return content === null ? null : [{ role: 'assistant', content }];
  }
  if (isObj(x)) {
    const m = message(r, x, where, shapeOf(x));
    return m && [m];
  }
  return messages(r, x, where, shapeOf(Array.isArray(x) ? x[0] : x));
}

/** The prompt of a chosen/rejected record: ShareGPT conversations, OpenAI messages, TRL's prompt, or Alpaca's
 * instruction; [] when the record has none (TRL's implicit prompt: the answers' shared first messages). */
function pairPrompt(r: Reader, v: Obj): TrainMessage[] | null {
  if ('conversations' in v) return messages(r, v.conversations, 'conversations', 'sharegpt');
  if ('messages' in v) return messages(r, v.messages, 'messages', 'openai');
  if ('prompt' in v) {
    if (typeof v.prompt !== 'string') return messages(r, v.prompt, 'prompt', shapeOf(Array.isArray(v.prompt) ? v.prompt[0] : undefined));
    const content = text(r, v.prompt, 'prompt');
    return content === null ? null : [{ role: 'user', content }];
  }
  if ('instruction' in v) {
    const instruction = field(r, v, 'instruction');
    if (instruction === null) return null;
    const input = typeof v.input === 'string' && v.input.trim() ? `\n\n${v.input}` : '';
    const system = typeof v.system === 'string' && v.system.trim() ? [{ role: 'system' as const, content: v.system }] : [];
    return [...system, { role: 'user', content: instruction + input }];
  }
  return [];
}

const same = (a: TrainMessage, b: TrainMessage) => a.role === b.role && a.content === b.content && JSON.stringify(a.tool_calls) === JSON.stringify(b.tool_calls);

function preference(r: Reader, v: Obj): PreferenceExample | null {
  let prompt: TrainMessage[] | null;
  let chosen: TrainMessage[] | null;
  let rejected: TrainMessage[] | null;
  if ('preferred_output' in v || 'non_preferred_output' in v) {
    // OpenAI's DPO format
    const input = v.input;
    if (!isObj(input)) return r.error('missing_messages', '"input" must be an object holding "messages", the conversation both answers continue.');
    prompt = messages(r, input.messages, 'input.messages', 'openai');
    chosen = prompt && messages(r, v.preferred_output, 'preferred_output', 'openai');
    rejected = chosen && messages(r, v.non_preferred_output, 'non_preferred_output', 'openai');
  } else if ('chosen_messages' in v) {
    // LLaMA-Factory v1: two whole conversations
    prompt = [];
    chosen = messages(r, v.chosen_messages, 'chosen_messages', 'openai');
    rejected = chosen && messages(r, v.rejected_messages, 'rejected_messages', 'openai');
  } else {
    prompt = pairPrompt(r, v);
    chosen = prompt && answer(r, v.chosen, 'chosen');
    rejected = chosen && answer(r, v.rejected, 'rejected');
  }
  if (!prompt || !chosen || !rejected) return null;
  if (prompt.length === 0) {
    // Whole conversations: the prompt is what both share.
    let n = 0;
    while (n < chosen.length && n < rejected.length && same(chosen[n], rejected[n]) && chosen[n].role !== 'assistant') n++;
    prompt = chosen.slice(0, n);
    chosen = chosen.slice(n);
    rejected = rejected.slice(n);
    if (prompt.length === 0) return r.error('invalid_pair', 'There is no prompt: give "prompt" (or "conversations"/"messages"), or let "chosen" and "rejected" start with the same user message.');
  }
  for (const [name, list] of [['chosen', chosen], ['rejected', rejected]] as const) {
    if (list.length === 0) return r.error('invalid_pair', `"${name}" has no answer after the prompt; give the assistant's reply.`);
    const bad = list.findIndex((m) => m.role !== 'assistant');
    if (bad >= 0) return r.error('invalid_pair', `"${name}" holds a ${list[bad].role} message (answer ${bad + 1}); both answers must be the assistant's, after the prompt.`);
  }
  if (prompt[prompt.length - 1].role === 'assistant') return r.error('invalid_pair', 'The prompt ends with an assistant message; it must end with the turn that both answers reply to (a user message).');
  const t = tools(r, isObj(v.input) && 'preferred_output' in v ? v.input : v);
  if (t === null) return null;
  if (chosen.length === rejected.length && chosen.every((m, i) => same(m, rejected![i]))) r.warn('identical_pair', 'The chosen and the rejected answers are the same, so this pair teaches nothing. Make the rejected one the worse answer, or remove the pair.');
  return t ? { prompt, chosen, rejected, tools: t } : { prompt, chosen, rejected };
}

/** Records webtune recognizes but cannot train on: KTO's single labelled answers and multimodal examples. */
function refused(r: Reader, v: Obj): boolean {
  if ('kto_tag' in v || (typeof v.label === 'boolean' && ('completion' in v || 'messages' in v || 'conversations' in v))) {
    r.error('kto_unsupported', `Is KTO data (one answer with a good/bad ${'kto_tag' in v ? '"kto_tag"' : '"label"'}). webtune trains on answers (SFT) and on chosen/rejected pairs (DPO), not KTO: pair each good answer with a bad one to the same prompt, or drop the label to learn the answers.`);
    return true;
  }
  for (const key of MEDIA_KEYS) {
    const x = v[key];
    if ((Array.isArray(x) && x.length > 0) || (typeof x === 'string' && x !== '')) {
      r.error('multimodal_unsupported', `Has "${key}": webtune tunes text-only models, so this example is skipped. Remove the media (and its <${key.slice(0, -1)}> tags) to train on the text.`);
      return true;
    }
  }
  return false;
}

export function convert(v: unknown, format: DatasetFormat, line: number): Converted {
  const r = new Reader(line);
  const done = (example: Example | null): Converted => ({ example, findings: r.findings });
  if (!isObj(v)) return done(r.error('not_an_object', `Each example must be a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v}.`));
  if (refused(r, v)) return done(null);
  switch (format) {
    case 'openai':
      return done(chat(r, messages(r, v.messages, 'messages', 'openai'), v));
    case 'sharegpt':
      return done(chat(r, messages(r, v.conversations, 'conversations', 'sharegpt'), v));
    case 'alpaca': {
      const instruction = field(r, v, 'instruction');
      const output = field(r, v, 'output');
      if (instruction === null || output === null) return done(null);
      const input = typeof v.input === 'string' && v.input.trim() ? `\n\n${v.input}` : '';
      const system = typeof v.system === 'string' && v.system.trim() ? [{ role: 'system' as const, content: v.system }] : [];
      return done({ messages: [...system, { role: 'user', content: instruction + input }, { role: 'assistant', content: output }] });
    }
    case 'prompt_completion': {
      const prompt = field(r, v, 'prompt');
      const completion = field(r, v, 'completion');
      if (prompt === null || completion === null) return done(null);
      return done({ messages: [{ role: 'user', content: prompt }, { role: 'assistant', content: completion }] });
    }
    case 'text': {
      const t = field(r, v, 'text');
      return done(t === null ? null : { text: t });
    }
    case 'preference':
      return done(preference(r, v));
  }
}

/** Every message of an example, whatever its kind. */
export function messagesOf(e: Example): TrainMessage[] {
  if ('text' in e) return [];
  if ('messages' in e) return e.messages;
  return [...e.prompt, ...e.chosen, ...e.rejected];
}

/** The names of the {{placeholders}} an example's text holds (LLaMA-Factory's identity.json has {{name}}, {{author}}). */
export function placeholdersOf(e: Example): string[] {
  const names = new Set<string>();
  for (const t of 'text' in e ? [e.text] : messagesOf(e).map((m) => m.content)) for (const m of t.matchAll(PLACEHOLDER)) names.add(m[1]);
  return [...names];
}

/** The example with each {{name}} of `fill` replaced by its value; other placeholders are left as they are. */
export function fillPlaceholders(e: Example, fill: Readonly<Record<string, string>>): Example {
  const sub = (t: string) => t.replace(PLACEHOLDER, (all, name: string) => (Object.hasOwn(fill, name) ? fill[name] : all));
  const msgs = (ms: TrainMessage[]) => ms.map((m) => ({ ...m, content: sub(m.content) }));
  if ('text' in e) return { text: sub(e.text) };
  if ('messages' in e) return { ...e, messages: msgs(e.messages) };
  return { ...e, prompt: msgs(e.prompt), chosen: msgs(e.chosen), rejected: msgs(e.rejected) };
}
