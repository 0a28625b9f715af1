/** Latency distributions of the benches: nearest-rank percentiles over milliseconds. */
export interface Distribution {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of sorted values (p in 0..1). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN };
}

/** `p50 12 ms, p90 30 ms, p99 48 ms, max 60 ms (n 1,200)`. */
export function describeDistribution(d: Distribution): string {
  if (d.n === 0) return 'none seen';
  const ms = (v: number) => `${Math.round(v).toLocaleString('en-US')} ms`;
  return `p50 ${ms(d.p50)}, p90 ${ms(d.p90)}, p99 ${ms(d.p99)}, max ${ms(d.max)} (n ${d.n.toLocaleString('en-US')})`;
}
