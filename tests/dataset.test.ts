// Datasets: every format, every finding code on the line where it occurs, encodings and line endings,
// streaming in chunks, JSON arrays, split determinism, and the CLI's validate report.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { addTokenStats, loadDataset, loadDatasetBytes, loadRecords } from '../workers/engine/data/dataset';
import { JsonlReader, type RawRecord } from '../workers/engine/data/records';
import { splitIndices } from '../workers/engine/train/split';
import { loadEngine, modelDir } from './helpers';

const j = (v: unknown) => JSON.stringify(v);
const chatLine = (q: string, a: string) => j({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });
const codesAt = (findings: { line: number; code: string }[]) => findings.map((f) => `${f.line}:${f.code}`);

describe('formats', () => {
  it('converts every format to the internal message form', () => {
    const text = [
      j({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello', weight: 1 }, { role: 'user', content: 'Again' }, { role: 'assistant', content: 'Hi again', weight: 0 }] }),
      j({ instruction: 'Add the numbers', input: '2 and 2', output: '4', system: 'You add.' }),
      j({ instruction: 'Say hi', output: 'hi' }),
      j({ conversations: [{ from: 'system', value: 'S' }, { from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] }),
      j({ prompt: 'P', completion: 'C' }),
      j({ text: 'Plain text to learn.' }),
    ].join('\n');
    const { examples, report } = loadDataset('mixed.jsonl', text);
    expect(report.errors).toEqual([]);
    expect(examples.map((e) => e.example)).toEqual([
      { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello', weight: 1 }, { role: 'user', content: 'Again' }, { role: 'assistant', content: 'Hi again', weight: 0 }] },
      { messages: [{ role: 'system', content: 'You add.' }, { role: 'user', content: 'Add the numbers\n\n2 and 2' }, { role: 'assistant', content: '4' }] },
      { messages: [{ role: 'user', content: 'Say hi' }, { role: 'assistant', content: 'hi' }] },
      { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }] },
      { messages: [{ role: 'user', content: 'P' }, { role: 'assistant', content: 'C' }] },
      { text: 'Plain text to learn.' },
    ]);
    expect(report.formats).toEqual({ openai: 1, alpaca: 2, sharegpt: 1, prompt_completion: 1, text: 1 });
    expect(report.format).toBe('alpaca');
    expect(codesAt(report.warnings)).toEqual(['1:mixed_formats', '4:mixed_formats', '5:mixed_formats', '6:mixed_formats']);
  });
});

describe('findings', () => {
  const lines = [
    chatLine('Q1', 'A1'), // 1 ok
    '{"messages": [', // 2 invalid_json
    '[1, 2]', // 3 not_an_object
    j({ question: 'x', answer: 'y' }), // 4 unknown_format
    j({ messages: [] }), // 5 missing_messages
    j({ messages: [{ role: 'robot', content: 'x' }] }), // 6 unrecognized_role
    j({ messages: [{ role: 'user' }] }), // 7 missing_content
    j({ messages: [{ role: 'user', content: '  ' }, { role: 'assistant', content: 'a' }] }), // 8 empty_content
    j({ messages: [{ role: 'user', content: 'only a question' }] }), // 9 no_assistant_message
    j({ messages: [{ role: 'user', content: 'q', name: 'bob', mood: 'happy' }, { role: 'assistant', content: 'a' }] }), // 10 message_unrecognized_key (mood only)
    chatLine('Q1', 'A1'), // 11 duplicate_example
    j({ prompt: 'p', completion: 'c' }), // 12 mixed_formats
    '', // 13 blank: ignored
    chatLine('A long question '.repeat(20), 'A long answer '.repeat(20)), // 14 too_long, and no_trained_token at 64 tokens
    j({ conversations: [{ from: 'robot', value: 'x' }] }), // 15 unrecognized_role (ShareGPT)
    j({ instruction: 'do it', output: '' }), // 16 empty_content (Alpaca)
    j({ text: 42 }), // 17 missing_content (text)
  ];

  it('reports each code on the line where it occurs; good lines load', async () => {
    const data = loadDataset('f.jsonl', lines.join('\n') + '\n');
    expect(codesAt(data.report.errors)).toEqual(['2:invalid_json', '3:not_an_object', '4:unknown_format', '5:missing_messages', '6:unrecognized_role', '7:missing_content', '8:empty_content', '9:no_assistant_message', '15:unrecognized_role', '16:empty_content', '17:missing_content']);
    expect(data.examples.map((e) => e.line)).toEqual([1, 10, 11, 12, 14]);
    expect(data.report.records).toBe(16);
    expect(data.report.valid).toBe(5);
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    addTokenStats(data, engine.current.tokenizer, 64);
    expect(codesAt(data.report.warnings)).toEqual(['10:message_unrecognized_key', '11:duplicate_example', '12:mixed_formats', '14:too_long', '14:no_trained_token']);
    expect(data.report.warnings[0].message).toContain('mood');
    expect(data.report.warnings[0].message).not.toContain('name');
    expect(data.report.warnings[1].message).toContain('line 1');
    expect(data.report.warnings[3].message).toMatch(/^\d+ tokens; it will be truncated at the maximum length 64, cutting \d+ tokens\.$/);
    const t = data.report.tokens!;
    expect(t.overMax).toBe(1);
    expect(t.min).toBeLessThanOrEqual(t.median);
    expect(t.median).toBeLessThanOrEqual(t.p95);
    expect(t.p95).toBeLessThanOrEqual(t.max);
    expect(t.histogram.counts.reduce((a, b) => a + b, 0)).toBe(5);
    expect(t.trained).toBeGreaterThan(0);
    expect(t.trained).toBeLessThan(t.total);
    engine.unload();
  });

  it('a forced format turns lines of other formats into unknown_format errors', () => {
    const data = loadDataset('f.jsonl', [chatLine('q', 'a'), j({ prompt: 'p', completion: 'c' })].join('\n'), 'prompt_completion');
    expect(codesAt(data.report.errors)).toEqual(['1:unknown_format']);
    expect(data.report.errors[0].message).toContain('prompt/completion');
    expect(data.report.valid).toBe(1);
  });
});

describe('encodings, line endings, sizes', () => {
  it('handles BOM, CRLF, blank lines, unicode and a 1 MB line', () => {
    const big = 'ü'.repeat(500_000); // 1 MB of UTF-8
    const text = '\uFEFF' + [chatLine('Grüße 👋 مرحبا', '日本語 ½ \u200b'), '', '   ', chatLine('big', big), j({ text: 'last line without newline' })].join('\r\n');
    const data = loadDataset('u.jsonl', text);
    expect(data.report.errors).toEqual([]);
    expect(data.examples.map((e) => e.line)).toEqual([1, 4, 5]);
    expect((data.examples[0].example as { messages: { content: string }[] }).messages[0].content).toBe('Grüße 👋 مرحبا');
    expect((data.examples[1].example as { messages: { content: string }[] }).messages[1].content.length).toBe(500_000);
  });

  it('counts tokens of a 200,000-character message (found by the hostile-text browser test: it overflowed the stack)', async () => {
    const data = loadDataset('long.jsonl', chatLine('x'.repeat(200_000), 'ok') + '\n');
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    addTokenStats(data, engine.current.tokenizer, 64);
    expect(data.report.tokens!.overMax).toBe(1);
    expect(data.report.tokens!.max).toBeGreaterThan(10_000);
  }, 120_000);

  it('streams: any chunking gives the same records as the whole text', () => {
    const text = '\uFEFF' + [chatLine('a', 'b'), '{bad', '', chatLine('c', 'ü👋d')].join('\r\n') + '\r\n';
    const whole: RawRecord[] = [];
    const r = new JsonlReader();
    r.push(text, whole);
    r.end(whole);
    for (const size of [1, 2, 3, 7, 64]) {
      const out: RawRecord[] = [];
      const reader = new JsonlReader();
      for (let i = 0; i < text.length; i += size) reader.push(text.slice(i, i + size), out);
      reader.end(out);
      expect(out).toEqual(whole);
    }
    expect(whole.map((x) => x.line)).toEqual([1, 2, 4]);
  });

  it('reads a .json array with each element on its own line number', () => {
    const text = '[\n  ' + chatLine('a', 'b') + ',\n  {"messages": "oops"},\n\n  ' + j({ prompt: 'p', completion: 'c' }) + '\n]\n';
    const data = loadDataset('d.json', text);
    expect(codesAt(data.report.errors)).toEqual(['3:missing_messages']);
    expect(data.examples.map((e) => e.line)).toEqual([2, 5]);
    const bad = loadDataset('d.json', '[\n  {"a": 1},\n  {oops}\n]');
    expect(codesAt(bad.report.errors)).toEqual(['3:invalid_json']);
    expect(loadRecords([], undefined).report.valid).toBe(0);
  });
});

describe('split', () => {
  it('the same seed gives the same split; another seed another; both sides non-empty', () => {
    const a = splitIndices(100, 0.1, 42);
    expect(splitIndices(100, 0.1, 42)).toEqual(a);
    expect(splitIndices(100, 0.1, 43)).not.toEqual(a);
    expect(a.val.length).toBe(10);
    expect([...a.train, ...a.val].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(splitIndices(2, 0.01, 1).val.length).toBe(1);
    expect(splitIndices(5, 0, 1).val.length).toBe(0);
  });
});

describe('duplicate keys', () => {
  it('warns on the line where an object repeats a key (JSON.parse keeps only the last)', () => {
    const lines = [
      chatLine('q', 'a'),
      String.raw`{"messages": [{"role": "user", "content": "x", "content": "y"}, {"role": "assistant", "content": "z"}]}`,
      String.raw`{"text": "a \"text\": b", "t\u0065xt": "c"}`, // an escaped key; a key-like text inside a value is not one
      String.raw`{"messages": [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}], "meta": {"role": 1}}`, // same key in another object: fine
    ];
    const data = loadDataset('d.jsonl', lines.join('\n'));
    expect(codesAt(data.report.warnings)).toEqual(['2:duplicate_key', '3:duplicate_key', '3:mixed_formats']);
    expect(data.report.warnings[0].message).toMatch(/^The key "content" appears twice in one object; JSON keeps only the last one/);
    expect(data.report.warnings[1].message).toContain('"text"');
  });

  it('in a .json array, on the line of the element that repeats a key, and only there', () => {
    const text = ['[', '  ' + chatLine('q', 'a') + ',', String.raw`  {"messages": [{"role": "user", "content": "x", "content": "y"},`, '    {"role": "assistant", "content": "z"}]},', '  {"text": "t", "meta": {"text": 1}}', ']'].join('\n');
    const data = loadDataset('d.json', text);
    expect(codesAt(data.report.warnings)).toEqual(['3:duplicate_key', '5:mixed_formats']);
    expect(data.report.warnings[0].message).toMatch(/^The key "content" appears twice/);
  });
});

describe('cli validate', () => {
  const run = promisify(execFile);
  const cli = async (...args: string[]) => {
    try {
      const r = await run(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', ...args]);
      return { code: 0, ...r };
    } catch (e) {
      return e as { code: number; stdout: string; stderr: string };
    }
  };

  it('prints the report as JSON with line-numbered findings; exits non-zero when nothing is usable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'validate-'));
    const file = join(dir, 'data.jsonl');
    writeFileSync(file, [chatLine('q', 'a'), '{oops', j({ messages: [{ role: 'user', content: 'q' }] })].join('\n'));
    const r = await cli('validate', '--data', file, '--model', modelDir('llama-tied-gqa-f32'), '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({ format: 'openai', examples: 3, valid: 1 });
    expect(out.errors.map((e: { line: number; code: string }) => `${e.line}:${e.code}`)).toEqual(['2:invalid_json', '3:no_assistant_message']);
    expect(out.tokens.total).toBeGreaterThan(0);
    const none = join(dir, 'none.jsonl');
    writeFileSync(none, '{oops\n');
    const bad = await cli('validate', '--data', none, '--json');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('no usable example');
  });

  it('a report larger than a pipe holds (64 kB) arrives whole: the CLI exits only once its output is flushed', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'validate-')), 'kto.jsonl');
    writeFileSync(file, Array.from({ length: 1500 }, (_, i) => j({ messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: 'a' }], label: i % 2 === 0 })).join('\n'));
    const r = await cli('validate', '--data', file, '--json');
    expect(r.stdout.length).toBeGreaterThan(1 << 17);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.errors.length).toBe(1500);
    expect(out.errors[0].code).toBe('kto_unsupported');
  });

  it('reports what training would refuse: a length past max_position_embeddings, examples with no trained token left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'validate-'));
    const file = join(dir, 'long.jsonl');
    writeFileSync(file, [chatLine('A long question '.repeat(20), 'Yes.'), chatLine('Short?', 'Yes.')].join('\n'));
    const model = modelDir('llama-tied-gqa-f32'); // max_position_embeddings 512
    const far = await cli('validate', '--data', file, '--model', model, '--max-seq-len', '2048');
    expect(far.code).not.toBe(0);
    expect(far.stderr).toMatch(/--max-seq-len 2048 is more than this model reads \(max_position_embeddings 512\); training refuses it\. Use 512 or less\./);
    const r = await cli('validate', '--data', file, '--model', model, '--max-seq-len', '40', '--json');
    expect(r.code).toBe(0); // line 2 still teaches
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.tokens.untrained).toBe(1);
    expect(out.warnings).toContainEqual({ line: 1, code: 'no_trained_token', message: expect.stringMatching(/^every trained token lies past the maximum length 40/) });
  });
});

describe('file encodings (the bytes as a user has them)', () => {
  const enc = new TextEncoder();
  const line = (q: string, a: string) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });
  const text = [line('Grüß Gott?', 'Servus.'), line('2+2?', '4')].join('\r\n') + '\r\n';
  const utf16 = (t: string, le: boolean, bom: boolean) => {
    const out = new Uint8Array((bom ? 2 : 0) + 2 * t.length);
    if (bom) out.set(le ? [0xff, 0xfe] : [0xfe, 0xff]);
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      out[(bom ? 2 : 0) + 2 * i + (le ? 0 : 1)] = c & 0xff;
      out[(bom ? 2 : 0) + 2 * i + (le ? 1 : 0)] = c >> 8;
    }
    return out;
  };

  it.each([
    ['UTF-16 LE with a BOM (PowerShell >)', utf16(text, true, true)],
    ['UTF-16 BE with a BOM', utf16(text, false, true)],
    ['UTF-16 LE without a BOM', utf16(text, true, false)],
  ])('%s is decoded, with a note', (_, bytes) => {
    const d = loadDatasetBytes('data.jsonl', bytes);
    expect(d.report.valid).toBe(2);
    expect(d.report.errors).toEqual([]);
    expect(d.examples[0].example).toEqual({ messages: [{ role: 'user', content: 'Grüß Gott?' }, { role: 'assistant', content: 'Servus.' }] });
    expect(d.report.warnings.map((w) => w.code)).toEqual(['utf16_decoded']);
  });

  it('invalid UTF-8 is read as U+FFFD and warned about on its line', () => {
    const good = enc.encode(line('a?', 'b') + '\n');
    const bad = enc.encode(line('c?', 'XdX') + '\n');
    bad[bad.indexOf(0x58)] = 0xc3; // a lone lead byte
    const d = loadDatasetBytes('data.jsonl', new Uint8Array([...good, ...bad]));
    expect(d.report.valid).toBe(2);
    expect(d.report.warnings).toEqual([expect.objectContaining({ line: 2, code: 'invalid_utf8', message: expect.stringMatching(/not valid text.*Re-save the file as UTF-8/) })]);
    expect(loadDatasetBytes('data.jsonl', good).report.warnings).toEqual([]);
  });

  it('a gzip file is refused by name, saying to decompress it', () => {
    expect(() => loadDatasetBytes('data.jsonl.gz', new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]))).toThrow(expect.objectContaining({ name: 'DatasetEncodingError', message: expect.stringMatching(/^data\.jsonl\.gz is gzip-compressed\. Decompress it first/) }));
  });

  it('JSONL in a file named .json is told apart from a broken array', () => {
    const d = loadDatasetBytes('data.json', enc.encode(text));
    expect(d.report.errors).toEqual([expect.objectContaining({ line: 2, message: expect.stringMatching(/looks like JSONL .*rename the file to \.jsonl/) })]);
  });
});
