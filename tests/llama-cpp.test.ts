// GGUF files read by llama.cpp itself (node-llama-cpp's prebuilt build, on the CPU): for every architecture
// webtune writes, llama.cpp's tokenizer gives the ids tokenizer.json gives, its logits at every position of the
// prompt (the adapter merged in) are webtune's with base + adapter, and its greedy continuation is webtune's.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';
import { writeModelGguf } from '../workers/engine/export/gguf-model';
import { fullLogits } from '../workers/engine/generate';
import { PendingOutput } from '../workers/node/export-sink';
import type { GgufType } from '../workers/shared/types';
import { Engine } from '../workers/engine/engine';
import { DirModelFiles } from '../workers/node/dir-files';
import { makeModelFiles, TINY_VARIANTS } from '../workers/tiny/tiny-model';
import { CONFORMANCE, hasConformance, loadEngine, setRandomAdapter } from './helpers';

const tmp = mkdtempSync(join(tmpdir(), 'webtune-llama-cpp-'));
let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

async function exportGguf(engine: Engine, file: string, type: GgufType = 'f32'): Promise<void> {
  const out = new PendingOutput(file);
  await writeModelGguf(engine.current, engine.adapter, await out.file(), { type });
  await out.commit();
}

// Merges, spaces, characters no tiny vocabulary has (bytes), a newline; long enough for Gemma's window of 4.
const TEXTS = ['The capital of France is Paris, no server, we are here.', 'héllo wörld ½ 🫩 and\nnew lines', 'What is the weather today?'];

describe.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('llama.cpp reads the GGUF files', () => {
  it.each(['llama-tied-gqa-f32', 'llama-untied-mha-f16', 'llama3-rope-f32', 'qwen2-bias-bf16', 'qwen3-headdim-bf16', 'gemma3-spm-bf16', 'llama-spm-f32'])('%s: same token ids, logits at every position and greedy continuation', async (name) => {
    const engine = await loadEngine(name);
    setRandomAdapter(engine);
    const file = join(tmp, `${name}.gguf`);
    await exportGguf(engine, file);
    const want = [];
    for (const text of TEXTS) {
      const ids = engine.current.tokenizer.encode(text, false);
      const logits = fullLogits(engine.current.model, ids, engine.adapter);
      const rows = (await logits.array()) as number[][];
      logits.dispose();
      const result = await engine.generate({ ids }, { maxNewTokens: 8, temperature: 0 });
      want.push({ ids, rows, continuation: result.ids });
    }
    engine.unload();

    const model = await llama.loadModel({ modelPath: file });
    // A float32 KV cache (llama.cpp keeps it in f16 by default), so both sides compute in float32.
    const context = await model.createContext({ contextSize: 128, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    try {
      const sequence = context.getSequence();
      for (const [i, text] of TEXTS.entries()) {
        const { ids, rows } = want[i];
        expect([...model.tokenize(text, false)], text).toEqual(ids);
        await sequence.clearHistory();
        const outputs = await sequence.controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { logits: true } }]));
        const scale = Math.max(...rows.flat().map(Math.abs));
        // Measured: 4e-7 to 8e-7 of the largest logit; Gemma 1.2e-4, as ggml's CPU GELU reads a table at f16 inputs.
        const tolerance = name.startsWith('gemma') ? 5e-4 : 1e-5;
        for (const [t, row] of rows.entries()) {
          const logits = outputs[t]?.next.logits;
          expect(logits?.size, `${text}: logits at ${t}`).toBe(row.length);
          let err = 0;
          for (const [id, v] of logits!) err = Math.max(err, Math.abs(v - row[id]));
          expect(err, `${text}: position ${t}`).toBeLessThanOrEqual(tolerance * scale);
        }
        await sequence.clearHistory();
        const got: number[] = [];
        for await (const id of sequence.evaluate(want[i].ids as Token[], { temperature: 0 })) {
          got.push(id);
          if (got.length === want[i].continuation.length) break;
        }
        expect(got, text).toEqual(want[i].continuation);
      }
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  // Measured: f16 6e-4 and q8_0 1.3e-2 of the largest logit, as ggml rounds the activations of those products to
  // the same type; a block read in the wrong order or scale would be off by the logits' own size.
  it.each([['f16', 3e-3], ['q8_0', 5e-2]] as const)('llama-tied-gqa-f32 as %s: llama.cpp reads its blocks (logits within the rounding, %s)', async (type, tolerance) => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    setRandomAdapter(engine);
    const file = join(tmp, `llama-${type}.gguf`);
    await exportGguf(engine, file, type);
    const ids = engine.current.tokenizer.encode(TEXTS[0], false);
    const logits = fullLogits(engine.current.model, ids, engine.adapter);
    const rows = (await logits.array()) as number[][];
    logits.dispose();
    engine.unload();
    const model = await llama.loadModel({ modelPath: file });
    const context = await model.createContext({ contextSize: 128, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const outputs = await context.getSequence().controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { logits: true } }]));
    const scale = Math.max(...rows.flat().map(Math.abs));
    let worst = 0;
    for (const [t, row] of rows.entries()) for (const [id, v] of outputs[t]!.next.logits!) worst = Math.max(worst, Math.abs(v - row[id]) / scale);
    await context.dispose();
    await model.dispose();
    expect(worst).toBeLessThanOrEqual(tolerance);
  });

  it.skipIf(!hasConformance)("SmolLM2's real vocabulary: llama.cpp tokenizes its 46 test strings into its own expected ids", async () => {
    // Tiny random weights under SmolLM2's real tokenizer (49,152 rows), exported as webtune exports any model.
    const dir = join(tmp, 'smollm2-vocab');
    mkdirSync(dir);
    for (const [f, bytes] of makeModelFiles({ ...TINY_VARIANTS[0], name: 'smollm2-vocab', vocab: 49152 })) writeFileSync(join(dir, f), bytes);
    const real = join(CONFORMANCE, 'smollm2-tokenizer');
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(real, f), join(dir, f));
    const engine = new Engine();
    await engine.loadFiles(new DirModelFiles(dir), { backend: 'wasm' });
    const file = join(tmp, 'smollm2-vocab.gguf');
    await exportGguf(engine, file);
    engine.unload();
    const inputs = readFileSync(join(real, 'vocab-test.inp'), 'utf8').split('\n__ggml_vocab_test__\n').slice(0, -1);
    const expected = readFileSync(join(real, 'vocab-test.smollm.out'), 'utf8').split('\n');
    const model = await llama.loadModel({ modelPath: file });
    try {
      expect(inputs).toHaveLength(46);
      const mismatches = inputs.flatMap((text, i) => {
        const want = expected[i].trim() === '' ? [] : expected[i].trim().split(/\s+/).map(Number);
        const got = [...model.tokenize(text, false)];
        return JSON.stringify(got) === JSON.stringify(want) ? [] : [`${JSON.stringify(text)}: got ${got} want ${want}`];
      });
      expect(mismatches).toEqual([]);
    } finally {
      await model.dispose();
    }
  });
});
