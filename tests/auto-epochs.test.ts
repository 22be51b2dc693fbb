// Auto epochs: three passes, unless that sees the data fewer than ~100 or more than ~25,000 times in all.
import { describe, expect, it } from 'vitest';
import { autoEpochs } from '../workers/shared/defaults';

describe('auto epochs', () => {
  it('sizes the epochs to the dataset, with the rule in words', () => {
    expect(autoEpochs(8)).toMatchObject({ epochs: 12 });
    expect(autoEpochs(2)).toMatchObject({ epochs: 25 }); // capped
    expect(autoEpochs(40)).toMatchObject({ epochs: 3 });
    expect(autoEpochs(8_000)).toMatchObject({ epochs: 3 });
    expect(autoEpochs(20_000)).toMatchObject({ epochs: 1 });
    expect(autoEpochs(10_000).epochs).toBe(2);
    expect(autoEpochs(8).rule).toBe('8 examples × 3 epochs is under 100 examples seen, so 12 (100 ÷ 8, at most 25)');
  });
});
