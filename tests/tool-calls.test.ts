// Tool-calling data: OpenAI's tools / tool_calls / tool messages, LLaMA-Factory's ShareGPT function_call and
// observation turns with its tools string, and its v1 reasoning and tool_call parts all become one form, rendered
// through the model's own template with `tools`; the calls are trained, the tools' answers are not. A template
// that cannot render them is named, never silently dropped from the text.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addTokenStats, loadDataset } from '../workers/engine/data/dataset';
import { TextTokenizer } from '../workers/engine/tokenizer';
import { tokenizeExample, toolsUnsupported } from '../workers/engine/train/examples';
import { llamaFactoryRecipe } from '../workers/engine/export/llama-factory';
import { DEFAULT_LORA, DEFAULT_TRAIN } from '../workers/shared/defaults';
import { CONFORMANCE, hasConformance, loadEngine, modelDir } from './helpers';

const j = (v: unknown) => JSON.stringify(v);
const codesAt = (findings: { line: number; code: string }[]) => findings.map((f) => `${f.line}:${f.code}`);
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const call = { type: 'function', function: { name: 'get_weather', arguments: { city: 'Zürich' } } };

const lines = [
  // 1 OpenAI: tools, an assistant call with string arguments, the tool's answer, the final answer
  j({
    messages: [
      { role: 'user', content: 'Weather in Zürich?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Zürich"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 22}' },
      { role: 'assistant', content: 'It is 22 °C.' },
    ],
    tools: [weather],
  }),
  // 2 LLaMA-Factory glaive_toolcall: function_call / observation turns, tools as a JSON string of bare schemas
  j({
    conversations: [
      { from: 'human', value: 'Weather in Zürich?' },
      { from: 'function_call', value: '{"name": "get_weather", "arguments": {"city": "Zürich"}}' },
      { from: 'observation', value: '{"temp": 22}' },
      { from: 'gpt', value: 'It is 22 °C.' },
    ],
    tools: JSON.stringify([weather.function]),
  }),
  // 3 LLaMA-Factory v1 (reason_tool_use_demo): reasoning and tool_call parts
  j({
    messages: [
      { role: 'user', content: [{ type: 'text', value: 'Weather in Zürich?' }] },
      { role: 'assistant', content: [{ type: 'reasoning', value: 'I should look it up.' }, { type: 'tool_call', value: '{"name": "get_weather", "arguments": {"city": "Zürich"}}' }] },
      { role: 'tool', content: [{ type: 'text', value: '{"temp": 22}' }] },
      { role: 'assistant', content: [{ type: 'text', value: 'It is 22 °C.' }] },
    ],
    tools: [weather],
  }),
  j({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{oops' } }] }] }), // 4 invalid_tool_call
  j({ conversations: [{ from: 'human', value: 'q' }, { from: 'function_call', value: '{"arguments": {}}' }] }), // 5 invalid_tool_call: no name
  j({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], tools: 'not json' }), // 6 invalid_tool_call: tools
  j({ messages: [{ role: 'function', content: 'x' }, { role: 'assistant', content: 'a' }] }), // 7 unrecognized_role
];

describe('tool-calling data', () => {
  it('reads OpenAI, LLaMA-Factory ShareGPT and v1 tool data into one form', () => {
    const { examples, report } = loadDataset('tools.jsonl', lines.join('\n'));
    expect(codesAt(report.errors)).toEqual(['4:invalid_tool_call', '5:invalid_tool_call', '6:invalid_tool_call', '7:unrecognized_role']);
    expect(report.errors[3].message).toMatch(/use "system", "user", "assistant" or "tool"/);
    const [openai, sharegpt, v1] = examples.map((e) => e.example);
    expect(openai).toEqual({
      messages: [
        { role: 'user', content: 'Weather in Zürich?' },
        { role: 'assistant', content: '', tool_calls: [{ ...call, id: 'call_1' }] },
        { role: 'tool', content: '{"temp": 22}', tool_call_id: 'call_1' },
        { role: 'assistant', content: 'It is 22 °C.' },
      ],
      tools: [weather],
    });
    const noId = { ...openai, messages: (openai as { messages: object[] }).messages.map((m) => ({ ...m, tool_calls: (m as { tool_calls?: object[] }).tool_calls?.map(({ id: _, ...c }: { id?: string }) => c), tool_call_id: undefined })) };
    expect(JSON.parse(JSON.stringify(sharegpt))).toEqual(JSON.parse(JSON.stringify(noId)));
    expect((v1 as { messages: { reasoning_content?: string }[] }).messages[1].reasoning_content).toBe('I should look it up.');
    expect((v1 as { messages: { tool_calls?: unknown }[] }).messages[1].tool_calls).toEqual([call]);
  });

  it.skipIf(!hasConformance)("renders through Qwen2.5's own template with tools: the call is trained, the tool's answer is not", async () => {
    const dir = modelDir('llama-tied-gqa-f32');
    const template = readFileSync(join(CONFORMANCE, 'chat-templates', 'qwen2.5-7b-instruct.jinja'), 'utf8');
    const tok = TextTokenizer.fromFiles(readFileSync(join(dir, 'tokenizer.json')), readFileSync(join(dir, 'tokenizer_config.json')), template);
    const ex = loadDataset('tools.jsonl', lines[0]).examples[0].example;
    expect(toolsUnsupported(tok, ex)).toBeNull();
    const t = tokenizeExample(tok, ex, 4096, 'assistant');
    const text = (trained: 0 | 1) => tok.decode(t.ids.filter((_, i) => t.trained[i] === trained), false);
    expect(text(0)).toContain('<tools>'); // the schemas, in the system turn
    expect(text(0)).toContain('"name": "get_weather"');
    expect(text(0)).toContain('<tool_response>\n{"temp": 22}\n</tool_response>'); // the tool's answer: context only
    expect(text(1)).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>'); // the call: trained
    expect(text(1)).toContain('It is 22 °C.');
    expect(text(1)).not.toContain('temp');
  });

  it('a template that cannot render tool calls is named: a warning in the report, a refusal in training', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    engine.setChatTemplate('chatml');
    const data = loadDataset('tools.jsonl', lines.slice(0, 2).join('\n'));
    addTokenStats(data, engine.current.tokenizer, 512);
    expect(codesAt(data.report.warnings).filter((c) => c.endsWith('tools_unsupported'))).toEqual(['1:tools_unsupported', '2:tools_unsupported']);
    expect(data.report.warnings[0].message).toMatch(/tool calls, which the ChatML template does not render/);
    await expect(engine.train({ examples: data.examples.map((e) => e.example), train: { maxSteps: 1, valSplit: 0 } })).rejects.toThrow(/Example 1: It has tool calls, which the ChatML template does not render/);
    engine.unload();
  });

  it("goes to LLaMA-Factory as its function_call / observation turns with a tools column", () => {
    const ex = loadDataset('tools.jsonl', lines[0]).examples.map((e) => e.example);
    const files = llamaFactoryRecipe({ baseModel: 'Qwen/Qwen2.5-0.5B-Instruct', architecture: 'Qwen2ForCausalLM', template: 'chatml', chatTemplate: null, train: DEFAULT_TRAIN, lora: DEFAULT_LORA }, ex, 'tools');
    const info = JSON.parse(new TextDecoder().decode(files.get('dataset_info.json')!));
    expect(info.tools).toMatchObject({ columns: { messages: 'messages', tools: 'tools' }, tags: { function_tag: 'function_call', observation_tag: 'tool' } });
    const row = JSON.parse(new TextDecoder().decode(files.get('tools.jsonl')!));
    expect(row.messages).toEqual([
      { role: 'user', content: 'Weather in Zürich?' },
      { role: 'function_call', content: '{"name":"get_weather","arguments":{"city":"Zürich"}}' },
      { role: 'tool', content: '{"temp": 22}' },
      { role: 'assistant', content: 'It is 22 °C.' },
    ]);
    expect(JSON.parse(row.tools)).toEqual([weather]);
  });
});
