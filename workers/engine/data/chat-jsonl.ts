// OpenAI-style chat JSONL ({"messages": [{"role", "content", "weight"?}]}), one example per line.
// Bad lines are reported with their line number and skipped; the good ones are kept.
import type { Example, TrainMessage } from '../train/examples';

export interface LineError {
  line: number;
  message: string;
}

export function parseChatJsonl(text: string): { examples: Example[]; errors: LineError[] } {
  const examples: Example[] = [];
  const errors: LineError[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      errors.push({ line, message: `invalid JSON (${(e as Error).message})` });
      return;
    }
    const messages = (obj as { messages?: unknown } | null)?.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      errors.push({ line, message: 'expected an object with a non-empty "messages" array' });
      return;
    }
    const out: TrainMessage[] = [];
    for (const [j, m] of messages.entries()) {
      const { role, content, weight } = (m ?? {}) as Record<string, unknown>;
      if (role !== 'system' && role !== 'user' && role !== 'assistant') {
        errors.push({ line, message: `messages[${j}].role must be system, user or assistant, got ${JSON.stringify(role)}` });
        return;
      }
      if (typeof content !== 'string') {
        errors.push({ line, message: `messages[${j}].content must be a string` });
        return;
      }
      if (weight !== undefined && weight !== 0 && weight !== 1) {
        errors.push({ line, message: `messages[${j}].weight must be 0 or 1` });
        return;
      }
      out.push({ role, content, ...(weight === undefined ? {} : { weight }) });
    }
    if (!out.some((m) => m.role === 'assistant')) {
      errors.push({ line, message: 'no assistant message to learn from' });
      return;
    }
    examples.push({ messages: out });
  });
  return { examples, errors };
}
