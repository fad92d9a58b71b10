/**
 * The statistics every bench reports, one definition for all of them: a quantile is the
 * nearest rank (the smallest sample with at least q of the samples at or below it), so every
 * figure printed is a sample that was measured, never a value between two. The median of an
 * even count is the lower of the middle two. An empty sample gives NaN.
 */

/** The q-quantile (0 <= q <= 1) of `xs` by nearest rank; `xs` need not be sorted. */
export function quantile(xs: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`a quantile is between 0 and 1, not ${q}`);
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  // q * n in binary floating point can land just above a whole rank (0.07 * 100 is
  // 7.000000000000001), which ceil would push one rank too high: a rank is a whole count.
  const rank = Math.ceil(Number((q * s.length).toPrecision(12)));
  return s[Math.max(0, rank - 1)]!;
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface Summary {
  n: number;
  mean: number;
  median: number;
  p10: number;
  p90: number;
  p99: number;
}

export function summarize(xs: readonly number[]): Summary {
  return { n: xs.length, mean: mean(xs), median: median(xs), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9), p99: quantile(xs, 0.99) };
}
