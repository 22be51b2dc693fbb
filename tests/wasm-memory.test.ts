// Running out of WASM memory: a training batch far too large for the heap ends with a named error that
// says what to change, the UI hears that the model is gone, and the same engine loads and answers again
// (on a fresh WASM heap) without a restart.
import { describe, expect, it } from 'vitest';
import { DirModelFiles } from '../workers/node/dir-files';
import { loadEngine, modelDir } from './helpers';

describe('WASM out of memory', () => {
  it('is reported by name, drops the model, and a new load works on a fresh heap', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'wasm');
    const heard: { message: string; name: string }[] = [];
    engine.watchDeviceLoss((message, name) => heard.push({ message, name }));
    // 64 sequences of 2048 tokens: one layer's attention scores alone would take 4 GiB.
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(60);
    const examples = Array.from({ length: 64 }, (_, i) => ({ text: `${i} ${text}` }));
    const err = await engine.train({ examples, train: { batchSize: 64, maxSeqLen: 2048, epochs: 1, valSplit: 0 } }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('WasmMemoryError');
    expect(err?.message).toMatch(/ran out of memory.*Lower the batch size or the maximum sequence length.*load the model again/);
    expect(heard).toEqual([{ message: err!.message, name: 'WasmMemoryError' }]);
    expect(() => engine.current).toThrow(/No model is loaded/);

    await engine.loadFiles(new DirModelFiles(modelDir('llama-tied-gqa-f32')), { backend: 'wasm' });
    const r = await engine.generate({ text: 'the quick' }, { maxNewTokens: 4 });
    expect(r.ids.length).toBeGreaterThan(0);
    engine.unload();
  }, 120_000);
});
