import { parse as parseCsvSync, type Options as CsvOptions } from 'csv-parse/sync';
import { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { isUtf8 } from 'node:buffer';
import { createGunzip } from 'node:zlib';
import { isJsonObject, parseJsonBody } from '../ingest-api/body.js';
import { EVENT_FIELDS } from '../ingest-api/validation.js';
import { FileFormatError, type RowReason } from './reasons.js';
import type { FileSource } from './settings.js';

/**
 * An object's bytes as a stream of records, never the whole file in memory: gzip when it
 * starts with gzip's magic bytes (1f 8b), strict UTF-8, then CSV with a header (csv-parse:
 * quoted fields, embedded line breaks, BOM) or JSON lines. Each record carries its index
 * (data records only, in file order: what the ledger's committed_rows counts), the line
 * it starts on and its original text. Problems of one record are records too (`bad`);
 * problems of the file are thrown as FileFormatError.
 */

export type FileRecord =
  | { kind: 'row'; index: number; line: number; raw: string; fields: Record<string, unknown> }
  | { kind: 'bad'; index: number; line: number; raw: string; reason: RowReason; message: string };

/** The columns a CSV header must have: what every event type requires (agent_id may come from the customer's assignment). */
export const REQUIRED_COLUMNS = ['event_id', 'event_type', 'customer_id', 'occurred_at'] as const;

/** What a rejected record keeps of an oversized original. */
export const MAX_KEPT_ORIGINAL = 64 * 1024;

export interface RecordOptions {
  source: FileSource;
  maxRecordBytes: number;
}

/** Counts the bytes that pass (after decompression), for the receipt and the metrics. */
export interface ByteCounter {
  compressed: number;
  uncompressed: number;
}

export async function* readRecords(body: AsyncIterable<Uint8Array>, options: RecordOptions, counter: ByteCounter = { compressed: 0, uncompressed: 0 }): AsyncGenerator<FileRecord> {
  const bytes = decompressed(body, counter);
  if (options.source.format === 'csv') yield* csvRecords(utf8(bytes), options);
  else yield* jsonLines(bytes, options);
}

/** The same bytes as a Buffer, without a copy (Buffer.from(Uint8Array) copies). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The object's bytes, gunzipped when they start with gzip's magic bytes. */
async function* decompressed(body: AsyncIterable<Uint8Array>, counter: ByteCounter): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 2 && !done) {
    const next = await it.next();
    if (next.done) done = true;
    else head = Buffer.concat([head, next.value]);
  }
  counter.compressed += head.length;
  if (head.length === 0) throw new FileFormatError('empty_file', 'the object has no bytes');
  async function* rest(): AsyncGenerator<Buffer> {
    yield head;
    if (done) return;
    for (let next = await it.next(); !next.done; next = await it.next()) {
      counter.compressed += next.value.length;
      yield asBuffer(next.value);
    }
  }
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    for await (const chunk of rest()) {
      counter.uncompressed += chunk.length;
      yield chunk;
    }
    return;
  }
  // One chunk buffered ahead of gunzip (Readable.from's default is 16): a chunk that waits
  // across several collections of the parsing thread's young generation moves to its old
  // space, and its memory (outside the heap) waits there for a major collection.
  const compressed = Readable.from(rest(), { highWaterMark: 1 });
  const gunzip = createGunzip();
  // pipe() does not forward a source error (a connection reset while reading S3): without
  // this the error would be unhandled and the gunzip stream would wait for ever.
  compressed.once('error', (error) => gunzip.destroy(error));
  compressed.pipe(gunzip);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      counter.uncompressed += chunk.length;
      yield chunk;
    }
  } catch (error) {
    if (error instanceof FileFormatError) throw error;
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(e.message)) {
      throw new FileFormatError('truncated_gzip', `the gzip stream ends after ${counter.compressed} compressed bytes (${counter.uncompressed} uncompressed) without its end marker: the file was cut short`);
    }
    if (typeof e.code === 'string' && e.code.startsWith('Z_')) throw new FileFormatError('invalid_gzip', `gzip data is corrupt after ${counter.uncompressed} uncompressed bytes: ${e.message}`);
    throw error;
  } finally {
    gunzip.destroy();
    compressed.destroy();
  }
}

/**
 * The bytes, checked to be UTF-8 and cut on character boundaries, left as bytes: csv-parse
 * reads bytes, so decoding to text here only to have it encoded again would cost a copy.
 */
async function* utf8(bytes: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  let offset = 0;
  for await (const chunk of bytes) {
    const data = carry ? Buffer.concat([carry, chunk]) : chunk;
    const whole = wholeCharacters(data);
    carry = whole < data.length ? data.subarray(whole) : undefined;
    const out = data.subarray(0, whole);
    checkUtf8(out, offset);
    offset += out.length;
    if (out.length > 0) yield out;
  }
  if (carry) checkUtf8(carry, offset);
}

function checkUtf8(bytes: Buffer, offset: number): void {
  if (!isUtf8(bytes)) {
    throw new FileFormatError('invalid_encoding', `the bytes near offset ${offset} (uncompressed) are not valid UTF-8; files must be UTF-8 text (convert with iconv -f <encoding> -t UTF-8)`);
  }
}

/** How many leading bytes hold whole characters (a multi-byte one cut by the chunk's end waits for the next chunk). */
function wholeCharacters(b: Buffer): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    if (byte < 0xc0) return b.length;
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
    return needed > back ? b.length - back : b.length;
  }
  return b.length;
}

function checkHeader(header: string[]): string[] {
  const columns = header.map((h) => h.trim());
  if (columns.length === 0 || (columns.length === 1 && columns[0] === '')) throw new FileFormatError('empty_file', 'the header line is empty', 1);
  const missing = REQUIRED_COLUMNS.filter((c) => !columns.includes(c));
  if (missing.length > 0) {
    throw new FileFormatError('missing_columns', `the header lacks ${missing.join(', ')} (it has ${columns.join(', ')}); every row needs ${REQUIRED_COLUMNS.join(', ')}`, 1);
  }
  const unknown = columns.filter((c) => !(EVENT_FIELDS as readonly string[]).includes(c));
  if (unknown.length > 0) throw new FileFormatError('unknown_columns', `the header has columns that are not event fields: ${unknown.join(', ')}; the fields are ${EVENT_FIELDS.join(', ')}`, 1);
  const twice = columns.filter((c, i) => columns.indexOf(c) !== i);
  if (twice.length > 0) throw new FileFormatError('duplicate_columns', `the header names ${[...new Set(twice)].join(', ')} more than once`, 1);
  return columns;
}

interface CsvSkip extends Error {
  code?: string;
  lines?: number;
}

/** Line breaks inside a record's text (its own trailing one left out). */
const innerBreaks = (raw: string): number => (raw.replace(/(\r\n|\n|\r)$/, '').match(/\r\n|\n|\r/g) ?? []).length;

/** csv-parse's raw text of a record, without its line break (with CRLF it keeps the CR). */
const withoutBreak = (raw: string): string => raw.replace(/(\r\n|\n|\r)$/, '');

const CR = 0x0d;
/** Text of records with quotes is parsed once it reaches this size even when its quotes look unbalanced (then at twice that, ...). */
const SEGMENT_CHECK_CHARS = 64 * 1024;

/**
 * CSV records, in file order, each with the line it starts on. A line without a quote
 * character is a record of its own whose cells are the text between delimiters (what
 * RFC 4180, and csv-parse, make of it): it is split here, at a fraction of the cost of a
 * parser's byte-by-byte state machine, which on a million-row file was a quarter of the
 * parsing thread's time. Every other record (quoted fields, line breaks inside quotes, a
 * stray quote, a record near files.maxRecordBytes) goes through csv-parse, from a record
 * boundary to the end of a line where csv-parse is not inside quotes, so its rules and
 * errors are the ones a file gets.
 */
async function* csvRecords(bytes: AsyncIterable<Buffer>, options: RecordOptions): AsyncGenerator<FileRecord> {
  const records = new CsvRecords(options);
  const delimiter = options.source.delimiter;
  // A line longer than this may be near files.maxRecordBytes: csv-parse decides.
  const fastChars = Math.floor(options.maxRecordBytes / 4);
  // Text of records with quotes (whole lines) not yet known to end outside quotes.
  let segment = '';
  let oddQuotes = false;
  let nextCheck = SEGMENT_CHECK_CHARS;
  let nextCarryCheck = options.maxRecordBytes;
  // The start of a line whose end has not come yet.
  let carry: string[] = [];
  let carried = 0;
  let first = true;

  /** One whole line, text[from..nl] (nl: its LF, or text.length at the end of the file). */
  const line = function* (text: string, from: number, nl: number, hasQuote: boolean, hasCr: boolean): Generator<FileRecord> {
    if (segment === '' && !hasQuote && nl - from <= fastChars) {
      // A CR before the LF is part of the record delimiter (CRLF); a lone CR at the file's end is text.
      const end = nl < text.length && nl > from && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      const body = text.slice(from, end);
      // A lone CR inside the line is data to CSV, and a line break to the line numbers (as for csv-parse's records).
      if (!hasCr) yield* records.record(body.split(delimiter), body, 0);
      else yield* records.record(body.split(delimiter), withoutBreak(text.slice(from, nl + 1)), innerBreaks(text.slice(from, nl + 1)));
      return;
    }
    segment += text.slice(from, nl + 1);
    if (hasQuote) oddQuotes = oddQuotes !== oddCount(text, from, nl);
    if (!oddQuotes || segment.length >= nextCheck) {
      if (oddQuotes) nextCheck *= 2;
      yield* parseSegment(false);
    }
  };

  /** csv-parse over the segment; kept whole (nothing yielded) while it ends inside quotes. */
  const parseSegment = function* (final: boolean): Generator<FileRecord> {
    const out = parseCsvSegment(segment, options);
    const last = out[out.length - 1];
    if (!final && last && 'error' in last && last.error.code === 'CSV_QUOTE_NOT_CLOSED') return;
    segment = '';
    oddQuotes = false;
    nextCheck = SEGMENT_CHECK_CHARS;
    for (const o of out) {
      if ('error' in o) yield* records.skip(o.error, o.raw);
      else yield* records.record(o.record, withoutBreak(o.raw), innerBreaks(o.raw));
    }
  };

  for await (const chunk of bytes) {
    let text = chunk.toString('utf8');
    if (first) {
      first = false;
      // The BOM of the file's first bytes, as csv-parse's `bom` option drops it.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let from = 0;
    let nl = text.indexOf('\n');
    if (carried > 0) {
      if (nl === -1) {
        carry.push(text);
        carried += text.length;
        if (carried > nextCarryCheck) yield* tooLong();
        continue;
      }
      const joined = carry.join('') + text.slice(0, nl + 1);
      carry = [];
      carried = 0;
      nextCarryCheck = options.maxRecordBytes;
      yield* line(joined, 0, joined.length - 1, joined.includes('"'), crWithin(joined, 0, joined.length - 1));
      from = nl + 1;
      nl = text.indexOf('\n', from);
    }
    // The next quote and CR of the text, found once for all the lines before them.
    let quote = text.indexOf('"', from);
    let cr = text.indexOf('\r', from);
    for (; nl !== -1; nl = text.indexOf('\n', from)) {
      while (cr !== -1 && cr === nl - 1) cr = text.indexOf('\r', cr + 1);
      yield* line(text, from, nl, quote !== -1 && quote < nl, cr !== -1 && cr < nl);
      from = nl + 1;
      if (quote !== -1 && quote < from) quote = text.indexOf('"', from);
      if (cr !== -1 && cr < from) cr = text.indexOf('\r', from);
    }
    if (from < text.length) {
      carry.push(from === 0 ? text : text.slice(from));
      carried += text.length - from;
      if (carried > nextCarryCheck) yield* tooLong();
    }
  }
  if (carried > 0) {
    const rest = carry.join('');
    carry = [];
    carried = 0;
    yield* line(rest, 0, rest.length, rest.includes('"'), rest.includes('\r'));
  }
  if (segment !== '') yield* parseSegment(true);
  if (!records.columns) throw new FileFormatError('empty_file', 'the file has no header line (and no rows)');

  /** A line longer than files.maxRecordBytes with no end yet: csv-parse says if its record is over the limit. */
  function* tooLong(): Generator<FileRecord> {
    nextCarryCheck *= 2;
    const text = segment + carry.join('');
    const out = parseCsvSegment(text, options);
    // Over the limit: the records before it are yielded, then it fails the file (as a parse of the whole stream does).
    if (!out.some((o) => 'error' in o && o.error.code === 'CSV_MAX_RECORD_SIZE')) return;
    for (const o of out) {
      if ('error' in o) yield* records.skip(o.error, o.raw);
      else yield* records.record(o.record, withoutBreak(o.raw), innerBreaks(o.raw));
    }
  }
}

/** Whether text[from..nl) holds a CR that is not the CR of a CRLF ending at nl. */
function crWithin(text: string, from: number, nl: number): boolean {
  const cr = text.indexOf('\r', from);
  return cr !== -1 && cr < nl - 1;
}

/** Whether text[from..to) holds an odd number of quote characters (a record can only end where the count so far is even). */
function oddCount(text: string, from: number, to: number): boolean {
  let odd = false;
  for (let i = text.indexOf('"', from); i !== -1 && i < to; i = text.indexOf('"', i + 1)) odd = !odd;
  return odd;
}

type CsvOut = { record: string[]; raw: string } | { error: CsvSkip; raw: string };

/** csv-parse's records and skipped records of a text that starts at a record boundary, in order. */
function parseCsvSegment(text: string, options: RecordOptions): CsvOut[] {
  const out: CsvOut[] = [];
  parseCsvSync(text, {
    delimiter: options.source.delimiter,
    record_delimiter: ['\r\n', '\n'],
    raw: true,
    relax_column_count: true,
    skip_records_with_error: true,
    max_record_size: options.maxRecordBytes,
    on_record: (record: { record: string[]; raw: string }) => {
      out.push(record);
      return null;
    },
    on_skip: (error: CsvSkip | undefined, raw: string | undefined) => {
      if (error) out.push({ error, raw: raw ?? '' });
      return undefined;
    },
  } as unknown as CsvOptions);
  return out;
}

/**
 * The records of a CSV file as the rest of the reader sees them: the header is the first
 * record, checked here, and names each row's cells, so a row with another number of cells
 * is told apart here too. Empty lines are counted (line numbers stay exact) and skipped.
 */
class CsvRecords {
  columns: string[] | undefined;
  private index = 0;
  // csv-parse's own line counts are off for CRLF inside quotes: lines are counted from the text.
  private linesBefore = 0;

  constructor(private readonly options: RecordOptions) {}

  /** A record: its cells, its text without its line break, the line breaks inside it. */
  *record(cells: string[], raw: string, breaks: number): Generator<FileRecord> {
    const line = this.linesBefore + 1;
    this.linesBefore += breaks + 1;
    if (cells.length === 1 && cells[0] === '' && raw === '') return;
    if (!this.columns) {
      this.columns = checkHeader(cells);
      return;
    }
    if (cells.length !== this.columns.length) {
      yield { kind: 'bad', index: this.index++, line, raw, reason: 'column_count_mismatch', message: `the record has ${cells.length} fields, the header ${this.columns.length}` };
      return;
    }
    yield { kind: 'row', index: this.index++, line, raw, fields: csvFields(this.columns, cells) };
  }

  /** A record csv-parse could not read. */
  *skip(error: CsvSkip, raw: string): Generator<FileRecord> {
    const line = this.linesBefore + 1;
    if (error.code === 'CSV_MAX_RECORD_SIZE') {
      throw new FileFormatError('record_too_large', `the record at line ${line} is longer than ${this.options.maxRecordBytes} bytes (files.maxRecordBytes); often an unclosed quote`, line);
    }
    if (!this.columns) throw new FileFormatError('missing_columns', `the header line cannot be parsed as CSV: ${error.message.replace(/ at line \d+/, '')}`, line);
    this.linesBefore += innerBreaks(raw) + 1;
    yield { kind: 'bad', index: this.index++, line, raw: keep(withoutBreak(raw)), reason: 'malformed_csv', message: error.message.replace(/ at line \d+/, '') };
  }
}

/** CSV cells as event fields: an empty cell is an absent field; metadata is JSON text. */
function csvFields(columns: readonly string[], cells: readonly string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) {
    const k = columns[i]!;
    const v = cells[i];
    if (v === '' || v === undefined) continue;
    if (k === 'metadata') {
      try {
        fields[k] = parseJsonBody(v);
      } catch {
        // Left as text: validation then says metadata must be a JSON object.
        fields[k] = v;
      }
    } else fields[k] = v;
  }
  return fields;
}

function keep(raw: string): string {
  return raw.length > MAX_KEPT_ORIGINAL ? `${raw.slice(0, MAX_KEPT_ORIGINAL)}…` : raw;
}

/** JSON lines, split on the bytes (so an oversized line is skipped without being held whole). */
async function* jsonLines(bytes: AsyncIterable<Buffer>, options: RecordOptions): AsyncGenerator<FileRecord> {
  const decoder = () => new TextDecoder('utf-8', { fatal: true });
  let parts: Buffer[] = [];
  let length = 0;
  let oversized = false;
  let line = 0;
  let index = 0;
  let offset = 0;
  let lineStart = 0;
  const finish = (): FileRecord | undefined => {
    line++;
    const data = Buffer.concat(parts);
    parts = [];
    const wasOversized = oversized;
    const total = length;
    length = 0;
    oversized = false;
    let text: string;
    try {
      text = decoder().decode(data);
    } catch {
      if (!wasOversized) throw new FileFormatError('invalid_encoding', `line ${line} (from byte ${lineStart}, uncompressed) is not valid UTF-8; files must be UTF-8 text`, line);
      text = new TextDecoder('utf-8').decode(data);
    }
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    text = text.replace(/\r$/, '');
    if (wasOversized) return { kind: 'bad', index: index++, line, raw: keep(text), reason: 'record_too_large', message: `the line is ${total} bytes long; at most ${options.maxRecordBytes} (files.maxRecordBytes)` };
    if (text.trim() === '') return undefined;
    let value: unknown;
    try {
      value = parseJsonBody(text);
    } catch (error) {
      return { kind: 'bad', index: index++, line, raw: text, reason: 'malformed_json', message: (error as Error).message };
    }
    if (!isJsonObject(value)) return { kind: 'bad', index: index++, line, raw: text, reason: 'not_an_object', message: 'each line must be one JSON object (an event)' };
    return { kind: 'row', index: index++, line, raw: text, fields: value };
  };
  const add = (piece: Buffer) => {
    length += piece.length;
    if (oversized) {
      const kept = parts.reduce((n, p) => n + p.length, 0);
      if (kept < MAX_KEPT_ORIGINAL) parts.push(piece.subarray(0, MAX_KEPT_ORIGINAL - kept));
      return;
    }
    parts.push(piece);
    if (length > options.maxRecordBytes) {
      oversized = true;
      const all = Buffer.concat(parts);
      parts = [all.subarray(0, MAX_KEPT_ORIGINAL)];
    }
  };
  for await (const chunk of bytes) {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a, from); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
      add(chunk.subarray(from, nl));
      const record = finish();
      if (record) yield record;
      from = nl + 1;
      lineStart = offset + from;
    }
    if (from < chunk.length) add(chunk.subarray(from));
    offset += chunk.length;
  }
  if (length > 0 || parts.length > 0) {
    const record = finish();
    if (record) yield record;
  }
}
