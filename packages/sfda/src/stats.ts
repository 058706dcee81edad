/** Summaries of per-seed values. */

export interface Stat {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single value. */
  std: number;
  /** One per seed, in seed order. */
  values: number[];
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Sample standard deviation (Bessel-corrected, n − 1); 0 for one value, NaN for none. */
export function sampleStd(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  if (values.length === 1) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
}

export function summarize(values: readonly number[]): Stat {
  return { mean: mean(values), std: sampleStd(values), values: [...values] };
}

/** An accuracy in [0, 1] as a percentage, without binary noise (0.29 → 29, not 28.999…96). */
export function percent(accuracy: number): number {
  return Math.round(accuracy * 100 * 1e9) / 1e9;
}
