import { parse, parseNumberAndBigInt } from 'lossless-json';

/**
 * Debezium change events as the connector writes them (JsonConverter, schemas disabled):
 * `{before, after, source, op, ts_ms, ...}`. A bigint column (amount_minor) arrives as a
 * JSON number literal, which JSON.parse rounds beyond 2^53; those records are parsed
 * again with lossless-json, where every integer literal becomes an exact bigint.
 */

/**
 * A table row as Debezium sends it: column name -> JSON value. The money column is
 * exact: a safe-integer number, or a bigint when it lies beyond 2^53.
 */
export type CdcRow = Record<string, unknown>;

/** The bigint columns whose exact value matters downstream. */
const EXACT_COLUMNS = ['amount_minor'] as const;

/**
 * Whether JSON.parse may have rounded a money column: a JSON integer literal within
 * ±(2^53 - 1) parses to exactly that integer, and one beyond parses to a double of at
 * least 2^53 in magnitude, which is no safe integer. So a safe integer is exact, and
 * anything else (unsafe, fractional) is parsed again losslessly to decide.
 */
function mayBeRounded(doc: Record<string, unknown>): boolean {
  for (const image of [doc.after, doc.before]) {
    if (!isObject(image)) continue;
    for (const column of EXACT_COLUMNS) {
      const v = image[column];
      if (typeof v === 'number' && !Number.isSafeInteger(v)) return true;
    }
  }
  return false;
}

export type CdcRecord =
  /** c = insert, r = snapshot read, u = update, d = delete. */
  | { kind: 'change'; op: 'c' | 'r' | 'u' | 'd'; before: CdcRow | null; after: CdcRow | null }
  /** op t (TRUNCATE) and op m (logical decoding message): nothing to normalize. */
  | { kind: 'truncate' }
  | { kind: 'message' }
  /** A null value: what Debezium writes after a delete when tombstones are on. */
  | { kind: 'tombstone' }
  /** A Debezium heartbeat (`{"ts_ms": ...}`), should one be routed to this topic. */
  | { kind: 'heartbeat' }
  | { kind: 'unparseable'; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Classifies one CDC record value; never throws. */
export function parseCdcRecord(value: Buffer | null | undefined): CdcRecord {
  if (value === null || value === undefined) return { kind: 'tombstone' };
  const text = value.toString('utf8');
  let parsed: unknown;
  try {
    // JSON.parse is ~4x faster than lossless-json; the rare record it may round is re-read.
    parsed = JSON.parse(text);
  } catch (error) {
    return { kind: 'unparseable', error: `not JSON: ${(error as Error).message}` };
  }
  // With value.converter.schemas.enable=true the same change sits under `payload`.
  const unwrap = (d: unknown) => (isObject(d) && 'schema' in d && isObject(d.payload) ? d.payload : d);
  const fast = unwrap(parsed);
  if (!isObject(fast)) return { kind: 'unparseable', error: 'not a JSON object (expected a Debezium change event)' };
  const doc = mayBeRounded(fast) ? (unwrap(parse(text, null, parseNumberAndBigInt)) as Record<string, unknown>) : fast;

  const op = doc.op;
  if (op === undefined) {
    const keys = Object.keys(doc);
    if (keys.length > 0 && keys.every((k) => k === 'ts_ms')) return { kind: 'heartbeat' };
    return { kind: 'unparseable', error: 'no `op` field (expected a Debezium change event)' };
  }
  switch (op) {
    case 't':
      return { kind: 'truncate' };
    case 'm':
      return { kind: 'message' };
    case 'c':
    case 'r':
    case 'u':
    case 'd': {
      const before = doc.before ?? null;
      const after = doc.after ?? null;
      if (before !== null && !isObject(before)) return { kind: 'unparseable', error: '`before` is not an object' };
      if (after !== null && !isObject(after)) return { kind: 'unparseable', error: '`after` is not an object' };
      if ((op === 'c' || op === 'r' || op === 'u') && after === null) return { kind: 'unparseable', error: `op ${op} without an \`after\` row` };
      return { kind: 'change', op: op as 'c' | 'r' | 'u' | 'd', before, after };
    }
    default:
      return { kind: 'unparseable', error: `unknown op ${JSON.stringify(op)}` };
  }
}

/**
 * A Debezium ZonedTimestamp (time.precision.mode=connect renders timestamptz as
 * ISO-8601, e.g. 2026-11-01T10:00:00.123456Z) in UTC microseconds since the epoch.
 * Undefined when it is not such a string or is outside the range a JS number holds
 * exactly (beyond ~year 2255), so callers can call it an invalid timestamp.
 */
export function isoToMicros(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone] = m as unknown as [string, string, string, string, string, string, string, string | undefined, string];
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s), 0);
  // Reject what Date would roll over (month 13, Feb 30, 24:00:61...).
  if (date.getUTCFullYear() !== Number(y) || date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d) || date.getUTCHours() !== Number(h) || date.getUTCMinutes() !== Number(mi) || date.getUTCSeconds() !== Number(s)) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || '0');
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const micros = (date.getTime() - offsetMinutes * 60_000) * 1000 + Number(frac.padEnd(6, '0').slice(0, 6));
  return Number.isSafeInteger(micros) ? micros : undefined;
}
