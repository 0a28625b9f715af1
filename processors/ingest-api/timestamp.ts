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
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
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
  const fractionMicros = BigInt(((m[7] ?? '') + '000000').slice(0, 6));
  const micros =
    epochMicros(year, month, day) + BigInt(((hour * 60 + minute) * 60 + second) * 1000) * MICROS_PER_MS + fractionMicros - BigInt(offsetMinutes) * 60_000_000n;
  if (micros < MIN_MICROS || micros > MAX_MICROS) return undefined;
  return { micros, iso: isoFromMicros(micros) };
}

/** The canonical form of a JavaScript Date (millisecond precision). */
export function timestampOfDate(date: Date): Timestamp {
  const micros = BigInt(date.getTime()) * MICROS_PER_MS;
  return { micros, iso: isoFromMicros(micros) };
}

function isoFromMicros(micros: bigint): string {
  const ms = floorDiv(micros, MICROS_PER_MS);
  const subMs = micros - ms * MICROS_PER_MS;
  // toISOString: YYYY-MM-DDTHH:MM:SS.mmmZ for years 1..9999.
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 23)}${subMs.toString().padStart(3, '0')}Z`;
}

function epochMicros(year: number, month: number, day: number): bigint {
  // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear does not.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return BigInt(d.getTime()) * MICROS_PER_MS;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}
