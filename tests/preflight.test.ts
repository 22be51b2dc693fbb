// The page's memory preflight: refuse what a GPU cannot bind, warn about what may not fit, suggest smaller.
import { describe, expect, it } from 'vitest';
import { estimateBytes, preflight, type CuratedModel } from '../src/lib/preflight';

const models: CuratedModel[] = [
  { id: 'a/135m', label: 'SmolLM2 135M', parameters: 134_515_008, vocab: 49_152, hidden: 576, note: '', gated: false },
  { id: 'b/0.5b', label: 'Qwen2.5 0.5B', parameters: 494_032_768, vocab: 151_936, hidden: 896, note: '', gated: false },
];

describe('preflight', () => {
  it('counts the blocks an embedding larger than the GPU binding limit is split into', () => {
    const r = preflight(models[1], 512, { maxStorageBufferBindingSize: 128 * 1024 ** 2, maxBufferSize: 256 * 1024 ** 2 }, models, 16);
    expect(r.level).toBe('ok');
    expect(r.message).toMatch(/embedding \(0\.51 GB\) is kept in 5 blocks to fit this GPU's largest buffer binding \(0\.13 GB\)/);
    const tiny = preflight(models[1], 512, { maxStorageBufferBindingSize: 1024, maxBufferSize: 1024 }, models, 16);
    expect(tiny.level).toBe('refuse');
    expect(tiny.message).toMatch(/not even one row.*Try SmolLM2 135M instead\./);
  });
  it('warns when training needs more than half the device memory; passes otherwise', () => {
    expect(preflight(models[1], 2048, null, models, 2).level).toBe('warn');
    const ok = preflight(models[0], 512, { maxStorageBufferBindingSize: 2 * 1024 ** 3, maxBufferSize: 4 * 1024 ** 3 }, models, 8);
    expect(ok.level).toBe('ok');
    expect(ok.message).toContain('0.50 GB of float32 weights');
  });
  it('estimates float32 weights exactly and activations growing with the sequence', () => {
    const a = estimateBytes(models[0], 256);
    const b = estimateBytes(models[0], 512);
    expect(a.weights).toBe(134_515_008 * 4);
    expect(b.training - b.weights).toBeGreaterThan(a.training - a.weights);
  });
});
