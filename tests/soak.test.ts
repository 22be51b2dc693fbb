// The soak's short form (npm run soak runs 1,000 steps and 1,000 tokens): tensor count and bytes stay flat
// across training steps and generated tokens once warmed up, and the loss falls.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../workers/engine/backend';
import { soak } from '../workers/bench/soak';

describe('soak (short form)', () => {
  it('120 steps and 200 tokens with flat tensor count and bytes', async () => {
    await selectBackend('wasm');
    const r = await soak({ steps: 120, tokens: 200, samples: 6 });
    expect(r.train.length).toBe(6);
    expect(r.generate.length).toBe(6);
    expect(r.trainFlat, JSON.stringify(r.train)).toBe(true);
    expect(r.generateFlat, JSON.stringify(r.generate)).toBe(true);
    expect(r.tokens).toBe(200);
    expect(r.lastLoss).toBeLessThan(r.firstLoss * 0.5);
  }, 300_000);
});
