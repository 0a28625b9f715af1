/**
 * Durations and byte sizes as people write them in config: `500ms`, `1s`, `1m30s`;
 * `64MiB`, `5MB`, `1048576`. Parsed once at load time into milliseconds and bytes.
 */

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g;

export const DURATION_FIX = 'expected a duration like 1s, 500ms or 5m; units: ns, us, ms, s, m, h, d';

/** Milliseconds of a duration text (Go's syntax: `1h30m`, `250ms`), or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const compact = text.trim();
  if (!DURATION.test(compact)) return undefined;
  let total = 0;
  for (const [, amount, unit] of compact.matchAll(DURATION_PART)) total += Number(amount) * DURATION_UNITS[unit!]!;
  return total;
}

/** A duration in the shortest exact words: 1500 -> `1.5s`, 60000 -> `1m`, 30 days -> `30d`. */
export function formatDuration(ms: number): string {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`; // whole days only: 36h stays 36h
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && Number.isInteger((ms / size) * 1000)) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};
const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i;

export const BYTE_SIZE_FIX = 'expected a size like 64MiB, 512KiB, 5MB or a number of bytes';

/** Bytes of a size text (`64MiB` = 64 x 1024^2, `5MB` = 5 x 10^6, `1024`), or undefined. */
export function parseByteSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const m = BYTE_SIZE.exec(value.trim().replaceAll('_', ''));
  if (!m) return undefined;
  const bytes = Number(m[1]) * BYTE_UNITS[(m[2] ?? 'b').toLowerCase()]!;
  return Number.isInteger(bytes) ? bytes : Math.round(bytes);
}

/** A byte count in binary units when exact: 67108864 -> `64MiB`. */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
