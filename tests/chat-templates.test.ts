// Real chat templates (Qwen3, Gemma 3, Llama 3.2, Qwen2.5, SmolLM3) from ../shared/conformance/chat-templates/,
// rendered by the engine's tokenizer exactly as transformers renders them with Python's jinja2; and the trained-
// token mask of assistant-only loss under each template, including Qwen3's rewriting of earlier turns.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokenizeExample, type TrainMessage } from '../workers/engine/train/examples';
import { TextTokenizer, type TemplateMessage } from '../workers/engine/tokenizer';
import { makeTokenizer, type ChatFamily } from '../workers/tiny/tiny-model';
import { CONFORMANCE, hasConformance } from './helpers';

const dir = join(CONFORMANCE, 'chat-templates');
if (!hasConformance) console.warn(`skipping chat-template conformance: ${CONFORMANCE} is absent (CI has it; a fresh clone does not)`);

interface Case {
  model: string;
  template: string;
  case: string;
  variables: Record<string, unknown> & { messages: TemplateMessage[]; add_generation_prompt: boolean };
  expected?: string;
  raises?: { type: string; message: string };
}

// The tiny tokenizers carry each family's special tokens, so the templates' markers are single ids.
const FAMILY: Record<string, ChatFamily> = { 'qwen3-0.6b': 'chatml', 'qwen2.5-7b-instruct': 'chatml', 'smollm3-3b': 'chatml', 'gemma-3-270m-it': 'gemma', 'llama-3.2-1b-instruct': 'llama3' };
// The end-of-turn tokens the real models' generation_config.json lists (as names in the tiny vocabularies).
const END: Record<ChatFamily, string[]> = { chatml: ['<|im_end|>'], gemma: ['<eos>', '<end_of_turn>'], llama3: ['<|end_of_text|>', '<|eot_id|>'] };

function tokenizerFor(model: string, specials: Record<string, unknown>): TextTokenizer {
  const family = FAMILY[model];
  const { tokenizer } = makeTokenizer(120, family);
  const vocab = (tokenizer as { model: { vocab: Record<string, number> } }).model.vocab;
  const template = readFileSync(join(dir, `${model}.jinja`), 'utf8');
  return new TextTokenizer(tokenizer as Record<string, unknown>, specials, template, { eos_token_id: END[family].map((t) => vocab[t]) });
}

describe.skipIf(!hasConformance)('real chat templates (../shared/conformance/chat-templates)', () => {
  const cases: Case[] = hasConformance ? JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) : [];
  beforeAll(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date(2026, 6, 26)); // the date the expected strings were rendered with (strftime_now)
  });
  afterAll(() => vi.useRealTimers());

  it('has its 30 cases', () => expect(cases.length).toBe(30));

  it.each(cases.map((c) => [`${c.model} ${c.case}`, c] as const))('%s', (_, c) => {
    const { messages, add_generation_prompt, ...rest } = c.variables;
    const tok = tokenizerFor(c.model, { bos_token: rest.bos_token, eos_token: rest.eos_token });
    const render = () => tok.applyChatTemplate(messages, add_generation_prompt, rest);
    if (c.raises) {
      expect(render).toThrow(expect.objectContaining({ name: 'ChatTemplateError', message: expect.stringContaining(c.raises.message) }));
      expect(render).toThrow(/refused this conversation/); // a refusal by the template, with its rule
    } else expect(render()).toBe(c.expected);
  });

  // Assistant-only loss: exactly each answer and its end-of-turn token are trained, whatever the template
  // does around them. Qwen3 drops the <think> block of an answer once a later question follows, and writes
  // an empty one before the last answer.
  const convo: TrainMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Capital of France?' },
    { role: 'assistant', content: '<think>\nEasy.\n</think>\n\nParis.' },
    { role: 'user', content: 'And Italy?' },
    { role: 'assistant', content: 'Rome.' },
  ];
  it.each([
    ['qwen3-0.6b', { eos_token: '<|im_end|>' }, ['Paris.<|im_end|>', '<think>\n\n</think>\n\nRome.<|im_end|>']],
    ['qwen2.5-7b-instruct', { eos_token: '<|im_end|>' }, ['<think>\nEasy.\n</think>\n\nParis.<|im_end|>', 'Rome.<|im_end|>']],
    ['gemma-3-270m-it', { bos_token: '<bos>', eos_token: '<eos>' }, ['<think>\nEasy.\n</think>\n\nParis.<end_of_turn>', 'Rome.<end_of_turn>']],
    ['llama-3.2-1b-instruct', { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' }, ['<think>\nEasy.\n</think>\n\nParis.<|eot_id|>', 'Rome.<|eot_id|>']],
    ['smollm3-3b', { eos_token: '<|im_end|>' }, ['<think>\nEasy.\n</think>\n\nParis.<|im_end|>', 'Rome.<|im_end|>']],
  ] as const)('%s: assistant-only loss trains each answer through its end-of-turn token', (model, specials, answers) => {
    const tok = tokenizerFor(model, specials);
    const t = tokenizeExample(tok, { messages: convo }, 4096, 'assistant');
    expect(tok.decode(t.ids, false)).toBe(tok.applyChatTemplate(convo, false)); // the whole conversation, once
    // The trained runs, as text: one per answer.
    const runs: string[] = [];
    let run: number[] = [];
    t.trained.forEach((w, i) => {
      if (w) run.push(t.ids[i]);
      else if (run.length) (runs.push(tok.decode(run, false)), (run = []));
    });
    if (run.length) runs.push(tok.decode(run, false));
    expect(runs).toEqual(answers);
  });
});

describe('template choice', () => {
  it('a base model renders ChatML when chosen, and none again when switched off; a chat model can be switched off', async () => {
    const { loadEngine } = await import('./helpers');
    const engine = await loadEngine('llama-base-notemplate', 'cpu');
    expect(engine.info()!.chatTemplate).toEqual({ choice: 'none', own: false, options: [] });
    expect(() => engine.promptIds({ messages: [{ role: 'user', content: 'Hi' }] })).toThrow(/base model\. Give raw text.*or choose the ChatML template/);
    const info = engine.setChatTemplate('chatml');
    expect(info.hasChatTemplate).toBe(true);
    const tok = engine.current.tokenizer;
    expect(tok.decode(engine.promptIds({ messages: [{ role: 'user', content: 'Hi' }] }), false)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(engine.setChatTemplate('none').hasChatTemplate).toBe(false);
    expect(() => engine.setChatTemplate('jinja' as never)).toThrow(/not a chat template choice/);
    engine.unload();
    const chat = await loadEngine('qwen3-headdim-bf16', 'cpu');
    expect(chat.info()!.chatTemplate.choice).toBe('model');
    chat.setChatTemplate('none');
    expect(() => chat.promptIds({ messages: [{ role: 'user', content: 'Hi' }] })).toThrow(/switched off/);
    expect(chat.setChatTemplate('model').hasChatTemplate).toBe(true);
    chat.unload();
  });

  it.skipIf(!hasConformance)("names the variables a template reads that a request may set (Qwen3's enable_thinking)", () => {
    expect(tokenizerFor('qwen3-0.6b', {}).templateOptions).toEqual(['enable_thinking']);
    expect(tokenizerFor('gemma-3-270m-it', {}).templateOptions).toEqual([]);
  });
});

describe('template limits', () => {
  const tok = (template: string) => new TextTokenizer(makeTokenizer(120).tokenizer as Record<string, unknown>, {}, template);
  it.each([
    ['nested range(30000) loops', '{% for i in range(30000) %}{% for j in range(30000) %}{% endfor %}{% endfor %}'],
    ['range(10**9)', '{% for i in range(1000000000) %}x{% endfor %}'],
  ])('%s fail at once with the reason, naming the template file', (_, template) => {
    const t0 = performance.now();
    expect(() => tok(template).applyChatTemplate([{ role: 'user', content: 'Hi' }])).toThrow(
      expect.objectContaining({ name: 'ChatTemplateError', message: expect.stringMatching(/^The chat template in chat_template\.jinja failed .*range\(\) was asked for .* items, past the 100,000/) }),
    );
    expect(performance.now() - t0).toBeLessThan(2000);
  });
  it('a template that writes far more than the conversation holds fails with the counts; one past any string length fails by name', () => {
    const doubling = (n: number) => `{% set s = namespace(x='ab') %}{% for i in range(${n}) %}{% set s.x = s.x + s.x %}{% endfor %}{{ s.x }}`;
    expect(() => tok(doubling(21)).applyChatTemplate([{ role: 'user', content: 'Hi' }])).toThrow(
      expect.objectContaining({ name: 'ChatTemplateError', message: expect.stringMatching(/in chat_template\.jinja failed .*it wrote 4,194,304 characters for a conversation of \d+, more than the 1,000,\d+ a chat template may write/) }),
    );
    expect(() => tok(doubling(40)).applyChatTemplate([{ role: 'user', content: 'Hi' }])).toThrow(expect.objectContaining({ name: 'ChatTemplateError', message: expect.stringMatching(/Invalid string length/) }));
    const long = 'x'.repeat(300_000); // a long message is not a long template: four times its size are allowed
    expect(tok('{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}').applyChatTemplate([{ role: 'user', content: long }])).toHaveLength(600_000);
  });
  it('a template looping within the budget renders', () => {
    expect(tok('{% for i in range(3) %}{{ i }}{% endfor %}').applyChatTemplate([])).toBe('012');
  });
});
