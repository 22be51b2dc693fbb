// The dataset formats webtune reads, detected per line and converted to the one internal form (Example).
// Every problem becomes a Finding with its line number, a stable code and a message saying what to do.
import type { Example, TrainMessage } from '../train/examples';
import { FORMAT_LABELS, FORMATS } from '../../shared/defaults';
import type { DatasetFormat, ErrorCode, Finding, WarningCode } from '../../shared/types';

export { FORMAT_LABELS, FORMATS };
export type { DatasetFormat, ErrorCode, Finding, WarningCode };


type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The format a record looks like, by its keys; null when none fits. */
export function detectFormat(v: Obj): DatasetFormat | null {
  if ('messages' in v) return 'openai';
  if ('conversations' in v) return 'sharegpt';
  if ('instruction' in v || ('output' in v && 'input' in v)) return 'alpaca';
  if ('prompt' in v || 'completion' in v) return 'prompt_completion';
  if ('text' in v) return 'text';
  return null;
}

const OPENAI_KEYS = new Set(['role', 'content', 'weight', 'name']);
const SHAREGPT_ROLES: Record<string, TrainMessage['role']> = { system: 'system', human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant' };

export interface Converted {
  example: Example | null; // null when the line has an error
  findings: Finding[];
}

function str(v: Obj, key: string, line: number, where: string, findings: Finding[]): string | null {
  const x = v[key];
  if (typeof x !== 'string') {
    findings.push({ line, code: 'missing_content', message: `${where}"${key}" ${x === undefined ? 'is missing' : 'must be a string'}.` });
    return null;
  }
  if (x.trim() === '') {
    findings.push({ line, code: 'empty_content', message: `${where}"${key}" is empty.` });
    return null;
  }
  return x;
}

function chat(messages: TrainMessage[], line: number, findings: Finding[]): Example | null {
  if (!messages.some((m) => m.role === 'assistant')) {
    findings.push({ line, code: 'no_assistant_message', message: 'There is no assistant message to learn from; add the answer the model should give.' });
    return null;
  }
  return { messages };
}

export function convert(v: unknown, format: DatasetFormat, line: number): Converted {
  const findings: Finding[] = [];
  if (!isObj(v)) {
    findings.push({ line, code: 'not_an_object', message: `Each example must be a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v}.` });
    return { example: null, findings };
  }
  const fail = () => ({ example: null, findings });
  switch (format) {
    case 'openai': {
      const ms = v.messages;
      if (!Array.isArray(ms) || ms.length === 0) {
        findings.push({ line, code: 'missing_messages', message: `"messages" must be a non-empty array of {"role", "content"} objects${ms === undefined ? ', and it is missing' : ''}.` });
        return fail();
      }
      const out: TrainMessage[] = [];
      for (const [i, m] of ms.entries()) {
        const where = `messages[${i}].`;
        if (!isObj(m)) {
          findings.push({ line, code: 'missing_content', message: `${where.slice(0, -1)} must be an object with "role" and "content".` });
          return fail();
        }
        if (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant') {
          findings.push({ line, code: 'unrecognized_role', message: `${where}role is ${JSON.stringify(m.role)}; use "system", "user" or "assistant".` });
          return fail();
        }
        const content = str(m, 'content', line, where, findings);
        if (content === null) return fail();
        for (const k of Object.keys(m)) {
          if (!OPENAI_KEYS.has(k)) findings.push({ line, code: 'message_unrecognized_key', message: `${where}${k} is not a chat message field; it is ignored.` });
        }
        const w = m.weight;
        if (w !== undefined && w !== 0 && w !== 1) findings.push({ line, code: 'message_unrecognized_key', message: `${where}weight must be 0 or 1, got ${JSON.stringify(w)}; it is ignored.` });
        out.push({ role: m.role, content, ...(w === 0 || w === 1 ? { weight: w } : {}) });
      }
      return { example: chat(out, line, findings), findings };
    }
    case 'sharegpt': {
      const cs = v.conversations;
      if (!Array.isArray(cs) || cs.length === 0) {
        findings.push({ line, code: 'missing_messages', message: '"conversations" must be a non-empty array of {"from", "value"} objects.' });
        return fail();
      }
      const out: TrainMessage[] = [];
      for (const [i, m] of cs.entries()) {
        const where = `conversations[${i}].`;
        const role = isObj(m) && typeof m.from === 'string' ? SHAREGPT_ROLES[m.from] : undefined;
        if (!isObj(m) || !role) {
          findings.push({ line, code: 'unrecognized_role', message: `${where}from is ${JSON.stringify(isObj(m) ? m.from : m)}; use "system", "human" or "gpt".` });
          return fail();
        }
        const value = str(m, 'value', line, where, findings);
        if (value === null) return fail();
        out.push({ role, content: value });
      }
      return { example: chat(out, line, findings), findings };
    }
    case 'alpaca': {
      const instruction = str(v, 'instruction', line, '', findings);
      const output = str(v, 'output', line, '', findings);
      if (instruction === null || output === null) return fail();
      const input = typeof v.input === 'string' && v.input.trim() ? `\n\n${v.input}` : '';
      const system = typeof v.system === 'string' && v.system.trim() ? [{ role: 'system' as const, content: v.system }] : [];
      return { example: { messages: [...system, { role: 'user', content: instruction + input }, { role: 'assistant', content: output }] }, findings };
    }
    case 'prompt_completion': {
      const prompt = str(v, 'prompt', line, '', findings);
      const completion = str(v, 'completion', line, '', findings);
      if (prompt === null || completion === null) return fail();
      return { example: { messages: [{ role: 'user', content: prompt }, { role: 'assistant', content: completion }] }, findings };
    }
    case 'text': {
      const text = str(v, 'text', line, '', findings);
      return text === null ? fail() : { example: { text }, findings };
    }
  }
}
