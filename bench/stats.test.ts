import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mean, median, quantile, summarize } from './stats';

describe('bench statistics', { timeout: 10_000 }, () => {
  it('medians of odd and even counts by nearest rank, unsorted input left as it is', () => {
    const xs = [5, 1, 3];
    assert.equal(median(xs), 3);
    assert.deepEqual(xs, [5, 1, 3]);
    assert.equal(median([4, 1, 3, 2]), 2);
    assert.equal(median([7]), 7);
  });
  it('a quantile is always one of the samples: the nearest rank', () => {
    const xs = Array.from({ length: 10 }, (_, i) => (i + 1) * 10); // 10..100
    assert.equal(quantile(xs, 0), 10);
    assert.equal(quantile(xs, 1), 100);
    assert.equal(quantile(xs, 0.9), 90);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantile(hundred, 0.07), 7); // 0.07 * 100 is 7.000000000000001 in floating point
    assert.equal(quantile(hundred, 0.57), 57); // and 0.57 * 100 is 56.99999999999999
    assert.equal(quantile(xs, 0.91), 100);
    assert.equal(quantile(xs, 0.99), 100);
    assert.equal(quantile([0, 10], 0.25), 0);
    assert.throws(() => quantile(xs, 1.5), RangeError);
  });
  it('mean, summary, and NaN for no samples', () => {
    assert.equal(mean([1, 2, 3, 6]), 3);
    assert.deepEqual(summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), { n: 11, mean: 6, median: 6, p10: 2, p90: 10, p99: 11 });
    assert.ok(Number.isNaN(median([])));
    assert.ok(Number.isNaN(mean([])));
  });
});
