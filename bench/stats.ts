/** Nearest-rank percentile: reports a value that was actually measured. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

export function max(values: readonly number[]): number {
  return values.reduce((a, b) => (b > a ? b : a), Number.NEGATIVE_INFINITY);
}

export function min(values: readonly number[]): number {
  return values.reduce((a, b) => (b < a ? b : a), Number.POSITIVE_INFINITY);
}

/** Microseconds from milliseconds, rounded for a table. */
export const us = (ms: number): string => (ms * 1000).toFixed(1);
