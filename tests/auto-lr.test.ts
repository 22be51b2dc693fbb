// Auto learning rate: the usual LoRA rate at an effective batch of 8, scaled by √(batch ÷ 8), within 4× either way.
import { describe, expect, it } from 'vitest';
import { autoLearningRate, DEFAULT_TRAIN } from '../workers/shared/defaults';

describe('auto learning rate', () => {
  it('scales the anchor by the square root of the batch a step sees', () => {
    expect(autoLearningRate(1000, 8, 1, 'sft').learningRate).toBe(2e-4);
    expect(autoLearningRate(1000, 4, 1, 'sft').learningRate).toBe(1.4e-4); // 2e-4 × √½
    expect(autoLearningRate(1000, 4, 8, 'sft').learningRate).toBe(4e-4); // batch 32: 2e-4 × 2
    expect(autoLearningRate(1000, 8, 1, 'dpo').learningRate).toBe(5e-6);
    expect(autoLearningRate(1000, 2, 1, 'dpo').learningRate).toBe(2.5e-6);
  });

  it('counts a training set smaller than the batch as its own size, and stays within 4× of the anchor', () => {
    expect(autoLearningRate(2, 16, 1, 'sft').learningRate).toBe(1e-4); // a step sees both examples, not 16
    expect(autoLearningRate(100_000, 64, 64, 'sft').learningRate).toBe(8e-4); // √512 = 22.6×, capped at 4×
    expect(autoLearningRate(0, 4, 1, 'sft').learningRate).toBe(7.1e-5); // an empty set counts as one example
  });

  it('says its rule in words, and agrees with the default at the default batch of 8', () => {
    expect(autoLearningRate(1000, 4, 1, 'sft').rule).toBe('2e-4 at a batch of 8 × √(4 ÷ 8) = 1.4e-4');
    expect(autoLearningRate(3, 8, 1, 'sft').rule).toBe('2e-4 at a batch of 8 × √(3 (the whole training set) ÷ 8) = 1.2e-4');
    expect(autoLearningRate(1e6, 64, 64, 'sft').rule).toContain('capped at 4×');
    expect(autoLearningRate(1000, 8, 1, 'sft').learningRate).toBe(DEFAULT_TRAIN.learningRate);
  });
});
