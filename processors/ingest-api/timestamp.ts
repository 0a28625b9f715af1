/**
 * ISO-8601 timestamps with a time zone (the RFC 3339 profile, seconds optional), read
 * exactly to the microsecond, the precision of PostgreSQL's timestamptz. The API stores
 * the canonical UTC form it computed, so the value it checked is the value stored.
 */

/** The accepted syntax; calendar and range checks come on top. */
export const ISO_WITH_ZONE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

export const MICROS_PER_HOUR = 3_600_000_000n;
const MICROS_PER_MS = 1000n;
/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: what PostgreSQL and ISO years hold. */
const MIN_MICROS = epochMicros(1, 1, 1);
const MAX_MICROS = epochMicros(9999, 12, 31) + 24n * MICROS_PER_HOUR - 1n;
const MIN_MS = Number(MIN_MICROS / MICROS_PER_MS);
/** The last millisecond (its µs up to 999 are in range too). */
const MAX_MS = Number(MAX_MICROS / MICROS_PER_MS);

export interface Timestamp {
  /** Microseconds since 1970-01-01T00:00:00Z. */
  micros: bigint;
  /** Canonical UTC form with six fraction digits: 2026-11-01T10:00:00.000000Z. */
  iso: string;
}

/**
 * Reads `2026-11-01T10:00:00Z`, `2026-11-01T12:00:00.123+02:00`, `2026-11-01T10:00Z`;
 * undefined for anything else (no zone, a date alone, Feb 30, hour 24, second 60).
 * Fraction digits beyond the sixth are dropped (truncated), as timestamptz holds µs.
 */
export function parseTimestamp(text: string): Timestamp | undefined {
  const m = ISO_WITH_ZONE.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    // Real zone offsets lie within -12:00 .. +14:00; none is beyond 14 h.
    if (om > 59 || oh * 60 + om > 14 * 60) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const fractionMicros = m[7] === undefined ? 0 : Number((m[7] + '00000').slice(0, 6));
  // Milliseconds as a double (exact: years 1..9999 are within ±2^53 ms), the rest in µs:
  // the one BigInt is built at the end (this runs for every row of a file).
  const ms = epochMs(year, month, day) + ((hour * 60 + minute) * 60 + second) * 1000 - offsetMinutes * 60_000 + Math.floor(fractionMicros / 1000);
  if (ms < MIN_MS || ms > MAX_MS) return undefined;
  return timestampOfMs(ms, fractionMicros % 1000);
}

/** The canonical form of a JavaScript Date (millisecond precision). */
export function timestampOfDate(date: Date): Timestamp {
  return timestampOfMs(date.getTime(), 0);
}

/** `ms` since the epoch plus `subMs` µs (0..999). */
function timestampOfMs(ms: number, subMs: number): Timestamp {
  // toISOString: YYYY-MM-DDTHH:MM:SS.mmmZ for years 1..9999.
  const iso = `${new Date(ms).toISOString().slice(0, 23)}${subMs < 10 ? '00' : subMs < 100 ? '0' : ''}${subMs}Z`;
  return { micros: BigInt(ms) * MICROS_PER_MS + BigInt(subMs), iso };
}

function epochMs(year: number, month: number, day: number): number {
  // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear does not.
  if (year >= 100) return Date.UTC(year, month - 1, day);
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getTime();
}

function epochMicros(year: number, month: number, day: number): bigint {
  return BigInt(epochMs(year, month, day)) * MICROS_PER_MS;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
