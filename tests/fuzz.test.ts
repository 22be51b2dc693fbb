// Fuzzed parsers: thousands of random and mutated inputs for the safetensors reader, config.json and
// tokenizer_config.json handling, the PEFT importer and the dataset parser. Each must return or throw one
// of webtune's named errors (a clear message naming the file) — never another exception, never hang, never
// allocate what a lying header claims.
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../workers/engine/config';
import { loadDataset } from '../workers/engine/data/dataset';
import { WebtuneError } from '../workers/engine/errors';
import { parsePeftConfig } from '../workers/engine/peft';
import { decodeTensor, parseSafetensorsHeader } from '../workers/engine/safetensors';
import { TextTokenizer } from '../workers/engine/tokenizer';
import { makeModelFiles, TINY_VARIANTS } from '../workers/tiny/tiny-model';

// Deterministic in CI (a fixed seed); FUZZ_SEED=<n> FUZZ_RUNS=<n> npx vitest run tests/fuzz.test.ts explores further.
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
fc.configureGlobal({ seed: Number(process.env.FUZZ_SEED ?? 20261121) });
const files = makeModelFiles(TINY_VARIANTS[2]); // BF16, with q/k/v biases
const enc = new TextEncoder();
const dec = new TextDecoder();
const validConfig = JSON.parse(dec.decode(files.get('config.json')!));
const model = parseConfig(validConfig);

/** For RELIABILITY.md: inputs fed per parser, and how many were refused with a named error. */
const tally: Record<string, { inputs: number; refused: number }> = {};
const count = (what: string, refused: boolean) => {
  const t = (tally[what === 'config' ? 'config.json' : what] ??= { inputs: 0, refused: 0 });
  t.inputs++;
  if (refused) t.refused++;
};
afterAll(() => {
  mkdirSync('.reliability', { recursive: true });
  writeFileSync('.reliability/fuzz.json', JSON.stringify({ seed: Number(process.env.FUZZ_SEED ?? 20261121), runsPerProperty: RUNS, parsers: tally }, null, 2));
});

/** Runs f; passes if it returns or throws a WebtuneError whose message names `file`. */
function namedOrOk(file: string | null, f: () => unknown): boolean {
  try {
    f();
    count(file ?? 'tokenizer_config.json', false);
    return true;
  } catch (e) {
    if (!(e instanceof WebtuneError)) throw e;
    count(file ?? 'tokenizer_config.json', true);
    if (file && !e.message.includes(file)) throw new Error(`error does not name ${file}: ${e.message}`);
    return true;
  }
}

const jsonValue = fc.jsonValue({ maxDepth: 3 });

describe('fuzz: safetensors', () => {
  const st = files.get('model.safetensors')!;
  const n = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(dec.decode(st.subarray(8, 8 + n)));
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const withHeader = (h: unknown) => {
    const hb = enc.encode(JSON.stringify(h));
    const out = new Uint8Array(8 + hb.byteLength + st.byteLength - 8 - n);
    new DataView(out.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
    out.set(hb, 8);
    out.set(st.subarray(8 + n), 8 + hb.byteLength);
    return out;
  };
  const parseAll = (bytes: Uint8Array) => {
    const h = parseSafetensorsHeader(bytes, 'model.safetensors');
    for (const t of h.tensors) decodeTensor(bytes, h, t); // anything the header check let through decodes
  };

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => namedOrOk('model.safetensors', () => parseAll(b))), { numRuns: RUNS });
  });

  it('a valid file, truncated or with bytes flipped', () => {
    fc.assert(
      fc.property(fc.nat(st.byteLength), fc.array(fc.tuple(fc.nat(st.byteLength - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (cut, flips) => {
        const b = st.slice(0, cut);
        for (const [i, v] of flips) if (i < b.length) b[i] = v;
        return namedOrOk('model.safetensors', () => parseAll(b));
      }),
      { numRuns: RUNS },
    );
  });

  it('a header with lying shapes, offsets and dtypes', () => {
    const lie = fc.record({
      name: fc.constantFrom(...names),
      dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'I8', 'F64', ''), jsonValue),
      shape: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -5, max: 1e6 }), fc.constant(2 ** 40), fc.double()), { maxLength: 4 }), jsonValue),
      offsets: fc.oneof(fc.tuple(fc.integer({ min: -10, max: 2 ** 40 }), fc.integer({ min: -10, max: 2 ** 40 })), jsonValue),
    });
    fc.assert(
      fc.property(fc.array(lie, { minLength: 1, maxLength: 3 }), (lies) => {
        const h = structuredClone(header);
        for (const l of lies) h[l.name] = { dtype: l.dtype, shape: l.shape, data_offsets: l.offsets };
        return namedOrOk('model.safetensors', () => parseAll(withHeader(h)));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: config.json', () => {
  it('random JSON', () => {
    fc.assert(fc.property(jsonValue, (v) => namedOrOk('config', () => parseConfig(JSON.stringify(v)))), { numRuns: RUNS });
  });

  it('a valid config with fields replaced by random values; what loads is sane', () => {
    const keys = Object.keys(validConfig).concat(['head_dim', 'rope_parameters', 'attention_bias']);
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), jsonValue, { maxKeys: 4 }), (patch) => {
        let cfg: ReturnType<typeof parseConfig> | null = null;
        namedOrOk('config', () => (cfg = parseConfig({ ...validConfig, ...patch })));
        if (cfg) {
          const c = cfg as ReturnType<typeof parseConfig>;
          for (const k of ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize'] as const) {
            expect(Number.isInteger(c[k]) && c[k] > 0, k).toBe(true);
          }
          expect(c.numHeads % c.numKvHeads).toBe(0);
        }
        return true;
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: tokenizer_config.json', () => {
  const tokJson = files.get('tokenizer.json')!;
  const validTok = JSON.parse(dec.decode(files.get('tokenizer_config.json')!));
  it('random fields and chat templates', () => {
    const template = fc.oneof(fc.string(), fc.constantFrom('{% for m in messages %}{{ m.content }}{% endfor %}', '{{ raise_exception("x") }}', '{% if %}', '{{ messages[0]["content"] }}'));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('eos_token', 'bos_token', 'chat_template', 'pad_token', 'unk_token'), fc.oneof(jsonValue, template), { maxKeys: 3 }), (patch) => {
        return namedOrOk(null, () => {
          const t = TextTokenizer.fromFiles(tokJson, enc.encode(JSON.stringify({ ...validTok, ...patch })));
          if (t.hasChatTemplate) {
            try {
              t.encodeChat([{ role: 'user', content: 'hi' }]);
            } catch (e) {
              // A template that fails while rendering is the model's own bug; it must surface as an Error, not crash.
              if (!(e instanceof Error)) throw e;
            }
          }
        });
      }),
      { numRuns: Math.round(RUNS * 0.3) },
    );
  });
});

describe('fuzz: PEFT adapter_config.json', () => {
  const base = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] };
  it('random JSON, and a valid config with fields replaced', () => {
    fc.assert(fc.property(jsonValue, (v) => namedOrOk('adapter_config.json', () => parsePeftConfig(JSON.stringify(v), model))), { numRuns: RUNS });
    const keys = ['peft_type', 'task_type', 'r', 'lora_alpha', 'lora_dropout', 'target_modules', 'bias', 'use_dora', 'use_rslora', 'modules_to_save', 'rank_pattern', 'fan_in_fan_out', 'layers_to_transform'];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), fc.oneof(jsonValue, fc.string()), { maxKeys: 3 }), (patch) =>
        namedOrOk('adapter_config.json', () => parsePeftConfig(JSON.stringify({ ...base, ...patch }), model)),
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: datasets', () => {
  const good = JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] });
  const check = (name: string, text: string) => {
    const lines = text.split('\n').length;
    const d = loadDataset(name, text);
    for (const f of [...d.report.errors, ...d.report.warnings]) {
      expect(f.line).toBeGreaterThanOrEqual(1);
      expect(f.line).toBeLessThanOrEqual(lines);
      expect(f.message.length).toBeGreaterThan(0);
    }
    expect(d.report.valid).toBe(d.examples.length);
    count('dataset (.jsonl / .json)', d.report.errors.length > 0);
    expect(d.report.valid + d.report.errors.filter((e, i, a) => a.findIndex((x) => x.line === e.line) === i).length).toBeLessThanOrEqual(Math.max(d.report.records, 1));
    return true;
  };

  it('random text never throws; every finding has a line inside the file', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (t) => check('x.jsonl', t)), { numRuns: RUNS });
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (t) => check('x.json', t)), { numRuns: RUNS });
  });

  it('random JSON values, one per line, and mutated good lines', () => {
    fc.assert(fc.property(fc.array(jsonValue, { maxLength: 20 }), (vs) => check('x.jsonl', vs.map((v) => JSON.stringify(v)).join('\n'))), { numRuns: RUNS });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length), fc.string({ maxLength: 3 })), { maxLength: 10 }), (edits) => {
        const lines = edits.map(([at, s]) => good.slice(0, at) + s + good.slice(at));
        return check('x.jsonl', [good, ...lines].join('\r\n'));
      }),
      { numRuns: RUNS },
    );
  });
});
