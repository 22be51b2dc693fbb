// Tokenizer conformance on SmolLM2's real tokenizer (llama.cpp's expected ids) and its chat template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TextTokenizer } from '../workers/engine/tokenizer';
import { makeModelFiles, TINY_VARIANTS } from '../workers/tiny/tiny-model';
import { CONFORMANCE, hasConformance } from './helpers';

const dir = join(CONFORMANCE, 'smollm2-tokenizer');
if (!hasConformance) console.warn(`skipping SmolLM2 tokenizer conformance: ${CONFORMANCE} is absent (CI has it; a fresh clone does not)`);

describe.skipIf(!hasConformance)('SmolLM2 tokenizer (../shared/conformance)', () => {
  const read = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
  const tok = () => TextTokenizer.fromFiles(read('tokenizer.json'), read('tokenizer_config.json'), readFileSync(join(dir, 'chat_template.jinja'), 'utf8'));

  it("encodes all 46 of llama.cpp's test strings to the expected ids", () => {
    const t = tok();
    const inputs = readFileSync(join(dir, 'vocab-test.inp'), 'utf8').split('\n__ggml_vocab_test__\n');
    inputs.pop(); // the file ends with a separator
    const expected = readFileSync(join(dir, 'vocab-test.smollm.out'), 'utf8').split('\n');
    expect(inputs.length).toBe(46);
    const mismatches: string[] = [];
    inputs.forEach((s, i) => {
      const want = expected[i].trim() === '' ? [] : expected[i].trim().split(/\s+/).map(Number);
      const got = t.encode(s, false);
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${JSON.stringify(s)}: got ${got} want ${want}`);
    });
    expect(mismatches).toEqual([]);
  });

  it('renders the chat template exactly', () => {
    expect(tok().applyChatTemplate([{ role: 'user', content: 'Hi' }], true)).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('finds <|im_end|> as the end-of-sequence id', () => {
    expect(tok().eosIds).toEqual([2]);
  });
});

describe('tiny model tokenizer', () => {
  const files = makeModelFiles(TINY_VARIANTS[0]);
  const t = TextTokenizer.fromFiles(files.get('tokenizer.json')!, files.get('tokenizer_config.json')!, null, files.get('generation_config.json'));

  it('round-trips unicode text byte for byte', () => {
    for (const s of ['Hello, world!', 'naïve café ½ 日本語 🙂', '  spaces\tand\nnewlines  ', '']) expect(t.decode(t.encode(s))).toBe(s);
  });

  it('keeps ChatML special tokens whole and reads eos from generation_config and tokenizer_config', () => {
    const ids = t.encodeChat([{ role: 'user', content: 'Hi' }]);
    expect(ids[0]).toBe(t.tokenId('<|im_start|>'));
    expect(ids.filter((i) => i === t.tokenId('<|im_end|>')).length).toBe(2);
    expect(t.eosIds.sort()).toEqual([0, 2]);
  });

  it('refuses a chat prompt when the model has no template', () => {
    const cfg = JSON.parse(new TextDecoder().decode(files.get('tokenizer_config.json')!));
    delete cfg.chat_template;
    const bare = TextTokenizer.fromFiles(files.get('tokenizer.json')!, new TextEncoder().encode(JSON.stringify(cfg)));
    expect(() => bare.encodeChat([{ role: 'user', content: 'Hi' }])).toThrow(/no chat template/);
  });
});
