import { LakeValueError } from '../../core/parquet/columns.js';
import type { ColumnType } from '../outputs/s3.js';
import type { SqlColumn } from '../outputs/sql.js';

/**
 * Records -> lines of PostgreSQL's COPY text format, checked against the declared column
 * types on the way (a value that does not fit its type is a LakeValueError: the record
 * goes to the DLQ with `schema_mismatch` before any database sees it). What the database
 * itself refuses (a constraint, a NUL in text, a range of the target column) is found
 * when loading, and isolated there.
 */

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const NULL = '\\N';

type Encode = (value: unknown, column: string) => string;

/** Encodes one record (an object) to a COPY line without its newline. */
export interface CopyLineEncoder {
  (record: unknown): string;
  /** The key columns' COPY text of the last record encoded (tab-joined): equal keys in the database have equal texts here. */
  readonly lastKey: string;
}

/**
 * `keyColumns`: columns whose text `lastKey` gives after each line, so a batch can tell
 * whether it holds a key twice (one MERGE source row per key needs a DISTINCT ON only then).
 */
export function copyLineEncoder(columns: readonly SqlColumn[], keyColumns: readonly string[] = []): CopyLineEncoder {
  const encoders = columns.map((c) => ({ name: c.name, nullable: c.nullable, encode: ENCODERS[c.type], key: keyColumns.includes(c.name) }));
  const keyed = keyColumns.length > 0;
  let lastKey = '';
  const encode = (record: unknown): string => {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new LakeValueError('(record)', `the record is ${record === null ? 'null' : Array.isArray(record) ? 'an array' : typeof record}, not an object with the declared columns`);
    }
    const r = record as Record<string, unknown>;
    let line = '';
    let key = '';
    for (let i = 0; i < encoders.length; i++) {
      const c = encoders[i]!;
      const v = r[c.name];
      if (i > 0) line += '\t';
      let text: string;
      if (v === null || v === undefined) {
        if (!c.nullable) throw new LakeValueError(c.name, 'null or absent in a non-nullable column');
        text = NULL;
      } else text = c.encode(v, c.name);
      line += text;
      if (keyed && c.key) key = key ? `${key}\t${text}` : text;
    }
    lastKey = key;
    return line;
  };
  return Object.defineProperty(encode, 'lastKey', { get: () => lastKey }) as CopyLineEncoder;
}

function fail(column: string, expected: string, value: unknown): never {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value) : typeof value === 'bigint' ? `${value}n` : String(value);
  throw new LakeValueError(column, `expected ${expected}, got ${typeof value} ${shown}`);
}

/** COPY text escapes: backslash, and the delimiter and line characters. */
export function escapeText(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r')) : s;
}

function int64(value: unknown, column: string): bigint {
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) throw new LakeValueError(column, `${value} is out of the int64 range`);
    return value;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  return fail(column, 'a 64-bit integer (a safe integer number or a bigint)', value);
}

/** Epoch micros -> `YYYY-MM-DD HH:MM:SS.ffffff+00` (UTC, exact to the microsecond). */
export function microsToTimestamp(micros: bigint | number, column: string): string {
  if (typeof micros === 'number') {
    if (!Number.isSafeInteger(micros)) throw new LakeValueError(column, `${micros} microseconds is not an integer count of microseconds`);
    return safeMicrosToTimestamp(micros, column);
  }
  if (micros >= -MAX_SAFE && micros <= MAX_SAFE) return safeMicrosToTimestamp(Number(micros), column);
  let ms = micros / 1000n;
  let us = micros % 1000n;
  if (us < 0n) {
    us += 1000n;
    ms -= 1n;
  }
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) throw new LakeValueError(column, `${micros} microseconds is out of the timestamp range`);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ (or +YYYYYY-... beyond year 9999)
  if (!/^\d{4}-/.test(iso)) throw new LakeValueError(column, `${iso} is out of the range a timestamp column holds here (years 0000-9999)`);
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${us.toString().padStart(3, '0')}+00`;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const DAY_US = 86_400_000_000;
const HOUR_US = 3_600_000_000;
const MINUTE_US = 60_000_000;
const SECOND_US = 1_000_000;

/** The date part of the last day formatted: a batch's timestamps mostly share a few days. */
let cachedDay = NaN;
let cachedDate = '';

/**
 * The same text for a safe-integer count of micros, in number arithmetic (exact below 2^53)
 * and with the day's date cached: two timestamps a row, so no BigInt, Date or ISO string per value.
 */
function safeMicrosToTimestamp(micros: number, column: string): string {
  const day = Math.floor(micros / DAY_US);
  let rest = micros - day * DAY_US;
  if (day !== cachedDay) {
    const iso = new Date(day * 86_400_000).toISOString();
    if (!/^\d{4}-/.test(iso)) throw new LakeValueError(column, `${iso} is out of the range a timestamp column holds here (years 0000-9999)`);
    cachedDate = `${iso.slice(0, 10)} `;
    cachedDay = day;
  }
  const h = Math.floor(rest / HOUR_US);
  rest -= h * HOUR_US;
  const m = Math.floor(rest / MINUTE_US);
  rest -= m * MINUTE_US;
  const s = Math.floor(rest / SECOND_US);
  rest -= s * SECOND_US;
  return `${cachedDate}${two(h)}:${two(m)}:${two(s)}.${rest < 100_000 ? String(rest).padStart(6, '0') : rest}+00`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

function timestamp(perUnit: number): Encode {
  return (value, column) => {
    if (typeof value === 'number' && Number.isSafeInteger(value)) {
      const micros = value * perUnit;
      if (Number.isSafeInteger(micros)) return safeMicrosToTimestamp(micros, column);
    }
    if (value instanceof Date) return microsToTimestamp(BigInt(value.getTime()) * 1000n, column);
    return microsToTimestamp(int64(value, column) * BigInt(perUnit), column);
  };
}

const ENCODERS: Record<ColumnType, Encode> = {
  string: (v, c) => (typeof v === 'string' ? escapeText(v) : fail(c, 'a string', v)),
  boolean: (v, c) => (typeof v === 'boolean' ? (v ? 't' : 'f') : fail(c, 'a boolean', v)),
  int32: (v, c) => (typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? String(v) : fail(c, 'a 32-bit integer', v)),
  int64: (v, c) => int64(v, c).toString(),
  float: (v, c) => (typeof v === 'number' ? floatText(v) : fail(c, 'a number', v)),
  double: (v, c) => (typeof v === 'number' ? floatText(v) : fail(c, 'a number', v)),
  timestamp_us: timestamp(1),
  timestamp_ms: timestamp(1000),
  date: (v, c) => {
    if (v instanceof Date) return v.toISOString().slice(0, 10);
    if (typeof v === 'number' && Number.isInteger(v)) return new Date(v * 86_400_000).toISOString().slice(0, 10);
    return fail(c, 'days since 1970-01-01 or a Date', v);
  },
  bytes: (v, c) => (v instanceof Uint8Array ? `\\\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}` : fail(c, 'bytes', v)),
};

function floatText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return String(v);
}
