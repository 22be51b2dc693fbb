// Sampling, stopping, streaming and memory ownership of generation.
import { describe, expect, it } from 'vitest';
import { cutAtStopText } from '../workers/engine/generate';
import { Rng, sample } from '../workers/engine/sampling';
import * as tf from '../workers/engine/tf';
import { loadEngine } from './helpers';

describe('sampling', () => {
  const logits = new Float32Array([1, 3, 2, 0.5, 2.9]);
  it('temperature 0 and top-k 1 are greedy', () => {
    expect(sample(logits, { temperature: 0, topK: 0, topP: 1 }, new Rng(1))).toBe(1);
    expect(sample(logits, { temperature: 2, topK: 1, topP: 1 }, new Rng(1))).toBe(1);
  });
  it('top-k keeps only the k best', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) expect([1, 4]).toContain(sample(logits, { temperature: 5, topK: 2, topP: 1 }, rng));
  });
  it('top-p keeps the smallest set reaching p', () => {
    const rng = new Rng(3);
    // softmax of [3, 2.9, 2, 1, .5]: the first two hold ~0.66 of the mass; p = 0.6 keeps both, never more.
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(sample(logits, { temperature: 1, topK: 0, topP: 0.6 }, rng));
    expect([...seen].sort()).toEqual([1, 4]);
  });
  it('draws match the distribution', () => {
    const rng = new Rng(11);
    const counts = [0, 0];
    const two = new Float32Array([0, Math.log(3)]); // p = 0.25, 0.75
    for (let i = 0; i < 4000; i++) counts[sample(two, { temperature: 1, topK: 0, topP: 1 }, rng)]++;
    expect(counts[1] / 4000).toBeGreaterThan(0.72);
    expect(counts[1] / 4000).toBeLessThan(0.78);
  });
});

describe('generation', () => {
  it('stops at eos, at max new tokens, and when stopped; streams text that adds up', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    const long = await engine.generate({ ids: [1, 2, 3] }, { maxNewTokens: 12 });
    expect(long.ids.length).toBe(12);
    expect(long.stopReason).toBe('length');
    // Make the first generated token an end-of-sequence id: generation stops right there.
    const eos = engine.current.tokenizer.eosIds;
    eos.push(long.ids[0]);
    const short = await engine.generate({ ids: [1, 2, 3] }, { maxNewTokens: 12 });
    expect(short.ids).toEqual([long.ids[0]]);
    expect(short.stopReason).toBe('eos');
    eos.pop();
    let streamed = '';
    let n = 0;
    const stopped = await engine.generate({ messages: [{ role: 'user', content: 'Hello' }] }, { maxNewTokens: 50, temperature: 1, seed: 3 }, (t) => {
      streamed += t.text;
      if (++n === 5) engine.stop();
    });
    expect(stopped.stopReason).toBe('stopped');
    expect(stopped.ids.length).toBe(5);
    expect(streamed).toBe(stopped.text);
    engine.unload();
  });

  it('frees every tensor it allocates: the count is flat across generations', async () => {
    const engine = await loadEngine('qwen2-bias-bf16');
    await engine.generate({ ids: [1, 2, 3] }, { maxNewTokens: 4 });
    const before = tf.memory();
    for (let i = 0; i < 3; i++) {
      await engine.generate({ ids: [1, 2, 3, 4, 5] }, { maxNewTokens: 10, temperature: 0.7, seed: i });
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
    }
    engine.unload();
    expect(tf.memory().numTensors).toBeLessThan(before.numTensors);
  });

  it('rejects out-of-range requests with clear messages', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32');
    await expect(engine.generate({ ids: [] })).rejects.toThrow(/prompt is empty/);
    await expect(engine.generate({ ids: [1, 99999] })).rejects.toThrow(/outside the vocabulary/);
    await expect(engine.generate({ ids: [1] }, { topP: 0 })).rejects.toThrow(/topP/);
    engine.unload();
  });
});

describe('a textual stop marker (ChatML chosen for a base model)', () => {
  it('cuts at the marker and never shows a tail that may be its start', () => {
    expect(cutAtStopText('Paris.<|im_end|>\nmore', '<|im_end|>')).toEqual({ text: 'Paris.', stopped: true });
    expect(cutAtStopText('Paris.<|im_', '<|im_end|>')).toEqual({ text: 'Paris.', stopped: false });
    expect(cutAtStopText('a < b', '<|im_end|>')).toEqual({ text: 'a < b', stopped: false });
    expect(cutAtStopText('x <', '<|im_end|>')).toEqual({ text: 'x ', stopped: false });
  });

  it('is the ChatML marker only when the vocabulary lacks it as an end-of-sequence token', async () => {
    const llama3 = await loadEngine('llama3-rope-f32', 'cpu');
    llama3.setChatTemplate('chatml');
    expect(llama3.current.tokenizer.endOfTurnText).toBe('<|im_end|>');
    llama3.unload();
    const base = await loadEngine('llama-base-notemplate', 'cpu');
    base.setChatTemplate('chatml'); // its vocabulary has <|im_end|> as its end-of-sequence token
    expect(base.current.tokenizer.endOfTurnText).toBeNull();
    base.unload();
  });
});
