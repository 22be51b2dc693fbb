// The data the world has: preference pairs in OpenAI's, LLaMA-Factory's (ShareGPT ranking, v1 chosen_messages)
// and TRL's shapes; content as a list of parts; per-message loss_weight; {{placeholders}} warned about and
// filled; KTO and multimodal records refused by name; pair statistics. Samples are written in each tool's shape.
import { describe, expect, it } from 'vitest';
import { addTokenStats, loadDataset } from '../workers/engine/data/dataset';
import { loadEngine } from './helpers';

const j = (v: unknown) => JSON.stringify(v);
const codesAt = (findings: { line: number; code: string }[]) => findings.map((f) => `${f.line}:${f.code}`);
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

describe('preference pairs', () => {
  const lines = [
    // 1 OpenAI DPO fine-tuning JSONL
    j({ input: { messages: [user('Hi?')], tools: [], parallel_tool_calls: true }, preferred_output: [assistant('Hello!')], non_preferred_output: [assistant('Go away.')] }),
    // 2 LLaMA-Factory ranking ShareGPT (dpo_en_demo.json)
    j({ conversations: [{ from: 'system', value: 'Be kind.' }, { from: 'human', value: 'Help?' }], chosen: { from: 'gpt', value: 'Sure.' }, rejected: { from: 'gpt', value: 'No.' } }),
    // 3 LLaMA-Factory ranking Alpaca
    j({ instruction: 'Add', input: '2 and 2', chosen: '4', rejected: '5' }),
    // 4 TRL standard: prompt / chosen / rejected strings
    j({ prompt: 'Sky color?', chosen: 'Blue.', rejected: 'Green.' }),
    // 5 TRL conversational with an explicit prompt
    j({ prompt: [user('Capital of France?')], chosen: [assistant('Paris.')], rejected: [assistant('Rome.')] }),
    // 6 TRL implicit prompt: whole conversations sharing their start
    j({ chosen: [user('Bees make?'), assistant('Honey.')], rejected: [user('Bees make?'), assistant('Milk.')] }),
    // 7 LLaMA-Factory v1 (v1_dpo_demo.jsonl): content parts and loss_weight
    j({
      chosen_messages: [{ role: 'user', content: [{ type: 'text', value: 'Translate: hola' }], loss_weight: 0.0 }, { role: 'assistant', content: [{ type: 'text', value: 'hello' }], loss_weight: 1.0 }],
      rejected_messages: [{ role: 'user', content: [{ type: 'text', value: 'Translate: hola' }], loss_weight: 0.0 }, { role: 'assistant', content: [{ type: 'text', value: 'bye' }], loss_weight: 1.0 }],
    }),
    j({ prompt: 'Same?', chosen: 'Yes.', rejected: 'Yes.' }), // 8 identical_pair (warning)
    j({ chosen: [user('A?'), assistant('x')], rejected: [user('B?'), assistant('y')] }), // 9 invalid_pair: no shared prompt
    j({ prompt: 'Q', chosen: [user('not an answer')], rejected: 'r' }), // 10 invalid_pair: chosen is a user message
    j({ conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }], chosen: { from: 'gpt', value: 'c' }, rejected: { from: 'gpt', value: 'r' } }).replace('"A"', '"A"'), // 11 invalid_pair: prompt ends with assistant
    j({ messages: [user('q'), assistant('a')] }), // 12 mixed_method: an SFT record in a preference file
    j({ input: {}, preferred_output: [assistant('a')], non_preferred_output: [assistant('b')] }), // 13 missing_messages
  ];
  const { examples, report } = loadDataset('pairs.jsonl', lines.join('\n'));

  it('reads every shape into one form: prompt, chosen, rejected', () => {
    expect(report.format).toBe('preference');
    expect(examples.slice(0, 8).map((e) => [e.line, e.example])).toEqual([
      [1, { prompt: [user('Hi?')], chosen: [assistant('Hello!')], rejected: [assistant('Go away.')] }],
      [2, { prompt: [{ role: 'system', content: 'Be kind.' }, user('Help?')], chosen: [assistant('Sure.')], rejected: [assistant('No.')] }],
      [3, { prompt: [user('Add\n\n2 and 2')], chosen: [assistant('4')], rejected: [assistant('5')] }],
      [4, { prompt: [user('Sky color?')], chosen: [assistant('Blue.')], rejected: [assistant('Green.')] }],
      [5, { prompt: [user('Capital of France?')], chosen: [assistant('Paris.')], rejected: [assistant('Rome.')] }],
      [6, { prompt: [user('Bees make?')], chosen: [assistant('Honey.')], rejected: [assistant('Milk.')] }],
      [7, { prompt: [user('Translate: hola')], chosen: [{ role: 'assistant', content: 'hello', weight: 1 }], rejected: [{ role: 'assistant', content: 'bye', weight: 1 }] }],
      [8, { prompt: [user('Same?')], chosen: [assistant('Yes.')], rejected: [assistant('Yes.')] }],
    ]);
  });

  it('names each problem on its line', () => {
    expect(codesAt(report.errors)).toEqual(['9:invalid_pair', '10:invalid_pair', '11:invalid_pair', '12:mixed_method', '13:missing_messages']);
    expect(codesAt(report.warnings)).toEqual(['8:identical_pair']);
    expect(report.errors.find((f) => f.line === 10)!.message).toMatch(/"chosen" holds a user message/);
    expect(report.errors.find((f) => f.line === 12)!.message).toMatch(/DPO run needs a chosen and a rejected answer/);
  });

  it('counts tokens per pair side: each pair is two sequences, both answers trained', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const data = loadDataset('pairs.jsonl', lines.slice(0, 4).join('\n'));
    addTokenStats(data, engine.current.tokenizer, 20);
    const t = data.report.tokens!;
    expect(t.histogram.counts.reduce((a, b) => a + b, 0)).toBe(8); // 4 pairs × 2 sides
    expect(t.trained).toBeGreaterThan(0);
    const long = data.report.warnings.filter((w) => w.code === 'too_long');
    expect(long.length).toBe(t.overMax);
    expect(long[0].message).toMatch(/^With the (chosen|rejected) answer, \d+ tokens/);
    engine.unload();
  });
});

describe('content parts, loss_weight, placeholders, refusals', () => {
  const lines = [
    // 1 LLaMA-Factory v1_sft_demo.jsonl: content parts, loss_weight, placeholders
    j({ messages: [{ role: 'user', content: [{ type: 'text', value: 'hi' }], loss_weight: 0.0 }, { role: 'assistant', content: [{ type: 'text', value: 'I am {{name}}, made by {{author}}.' }], loss_weight: 1.0 }] }),
    // 2 OpenAI parts ({type, text}), and a turn not trained (weight 0)
    j({ messages: [user('q1'), { role: 'assistant', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }], weight: 0 }, user('q2'), assistant('c')] }),
    // 3 an image part: skipped with its reason
    j({ messages: [{ role: 'user', content: [{ type: 'image_url', value: 'data/1.jpg' }, { type: 'text', value: 'Who?' }] }, assistant('Them.')] }),
    // 4 LLaMA-Factory mllm_demo.json: an "images" column
    j({ messages: [user('<image>Who are they?'), assistant('Kane and Gretzka.')], images: ['mllm_demo_data/1.jpg'] }),
    // 5 LLaMA-Factory kto_en_demo.json: messages + a boolean label
    j({ messages: [user('q'), assistant('a')], label: false }),
    // 6 ShareGPT with kto_tag
    j({ conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }], kto_tag: true }),
    // 7 identity.json's shape (Alpaca) with a placeholder
    j({ instruction: 'Who are you?', input: '', output: 'I am {{name}}.' }),
    // 8 loss_weight of another value is ignored with a warning
    j({ messages: [user('q'), { role: 'assistant', content: 'a', loss_weight: 0.5 }] }),
  ];

  it('joins text parts, honours loss_weight and weight, refuses media and KTO by name', () => {
    const { examples, report } = loadDataset('sft.jsonl', lines.join('\n'));
    expect(codesAt(report.errors)).toEqual(['3:multimodal_unsupported', '4:multimodal_unsupported', '5:kto_unsupported', '6:kto_unsupported']);
    expect(report.errors[0].message).toMatch(/messages\[0\]\.content\[0\] is an image_url part/);
    expect(report.errors[2].message).toMatch(/KTO/);
    expect(examples.map((e) => e.line)).toEqual([1, 2, 7, 8]);
    expect(examples[0].example).toEqual({ messages: [user('hi'), { role: 'assistant', content: 'I am {{name}}, made by {{author}}.', weight: 1 }] });
    expect(examples[1].example).toEqual({ messages: [user('q1'), { role: 'assistant', content: 'ab', weight: 0 }, user('q2'), assistant('c')] });
    expect(codesAt(report.warnings)).toEqual(['1:unfilled_placeholder', '7:unfilled_placeholder', '7:mixed_formats', '8:message_unrecognized_key']);
    expect(report.warnings[0].message).toMatch(/\{\{name\}\}, \{\{author\}\}/);
    expect(report.placeholders).toEqual(['author', 'name']);
  });

  it('fills placeholders before checking: a filled name is neither warned about nor trained literally', () => {
    const { examples, report } = loadDataset('sft.jsonl', lines.join('\n'), undefined, { name: 'Webby' });
    expect(examples[0].example).toEqual({ messages: [user('hi'), { role: 'assistant', content: 'I am Webby, made by {{author}}.', weight: 1 }] });
    expect(report.placeholders).toEqual(['author']);
    expect(codesAt(report.warnings).filter((c) => c.endsWith('placeholder'))).toEqual(['1:unfilled_placeholder']);
    const all = loadDataset('sft.jsonl', lines.join('\n'), undefined, { name: 'Webby', author: 'the team' });
    expect(all.report.placeholders).toBeUndefined();
    expect(all.examples[2].example).toEqual({ messages: [user('Who are you?'), assistant('I am Webby.')] });
  });
});
