import { stringify as losslessStringify } from 'lossless-json';
import { ParquetBatchWriter, type ParquetCompression, type ParquetEncoder } from '../core/parquet/batch-writer.js';
import { columnBuilder, LakeValueError, type ColumnBuilder } from '../core/parquet/columns.js';
import type { LakeRow, LakeSchema } from '../core/parquet/lake-schema.js';
import type { OutputFormat } from './outputs/s3.js';
import { csvField, csvTextField } from '../core/text/csv.js';

/**
 * One output file being filled: rows are checked against the file's columns on append
 * (a value that does not fit throws LakeValueError and leaves the file unchanged: the
 * record goes to the DLQ as `schema_mismatch`), then encoded at finish().
 */
export interface FileWriter {
  append(row: LakeRow): void;
  readonly rowCount: number;
  /** About the bytes the file's rows hold in memory (what batching by bytes counts). */
  readonly approxBytes: number;
  /** The file's bytes; Parquet is encoded by `encoder` (a worker thread) when given. */
  finish(encoder?: ParquetEncoder): Promise<Uint8Array>;
}

/** User metadata on every object the export writes (x-amz-meta-*): the Kafka offsets it holds. */
export const OBJECT_METADATA = { firstOffset: 'sluice-first-offset', lastOffset: 'sluice-last-offset', records: 'sluice-records' } as const;

export const CONTENT_TYPES: Record<OutputFormat, string> = {
  parquet: 'application/vnd.apache.parquet',
  jsonl: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
};

export function createFileWriter(format: OutputFormat, schema: LakeSchema, compression: ParquetCompression, metadata: Record<string, string>): FileWriter {
  switch (format) {
    case 'parquet':
      return new ParquetBatchWriter(schema, { compression, metadata });
    case 'jsonl':
      return new TextWriter(schema, jsonLine, undefined);
    case 'csv':
      return new TextWriter(schema, csvLine, schema.columns.map((c) => csvField(c.name)).join(',') + '\n');
  }
}

type LineEncoder = (values: unknown[], schema: LakeSchema) => string;

/** JSON Lines and CSV: rows checked with the same column rules as Parquet, encoded as text lines. */
class TextWriter implements FileWriter {
  private readonly checkers: ColumnBuilder<unknown>[];
  private readonly chunks: string[] = [];
  private bytes = 0;
  private rows = 0;

  constructor(
    private readonly schema: LakeSchema,
    private readonly encode: LineEncoder,
    header: string | undefined,
  ) {
    this.checkers = schema.columns.map(columnBuilder);
    if (header !== undefined) this.push(header);
  }

  append(row: LakeRow): void {
    const values = this.schema.columns.map((c, i) => {
      const v = row[c.name];
      if (v === null || v === undefined) {
        if (!c.nullable) throw new LakeValueError(c.name, 'required column is null or missing');
        return null;
      }
      this.checkers[i]!.check(v);
      return v;
    });
    this.push(this.encode(values, this.schema));
    this.rows++;
  }

  private push(text: string): void {
    this.chunks.push(text);
    this.bytes += text.length;
  }

  get rowCount(): number {
    return this.rows;
  }

  get approxBytes(): number {
    return this.bytes;
  }

  async finish(): Promise<Uint8Array> {
    return Buffer.from(this.chunks.join(''), 'utf8');
  }
}

function jsonLine(values: unknown[], schema: LakeSchema): string {
  const object: Record<string, unknown> = {};
  schema.columns.forEach((c, i) => {
    object[c.name] = textValue(values[i], c.type, false);
  });
  return `${losslessStringify(object)}\n`;
}

/**
 * Text columns are neutralised against spreadsheet formulas as the reports are (OWASP:
 * a value starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, core/text/csv.ts);
 * numbers, times and base64 bytes are written as they are (`-1500` stays a number).
 */
function csvLine(values: unknown[], schema: LakeSchema): string {
  return `${values
    .map((v, i) => {
      if (v === null) return '';
      const type = schema.columns[i]!.type;
      const text = String(textValue(v, type, true));
      return type === 'string' ? csvTextField(text) : csvField(text);
    })
    .join(',')}\n`;
}

/** Timestamps as RFC 3339 UTC text, bytes as base64, integers exact. */
function textValue(v: unknown, type: string, csv: boolean): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (type === 'timestamp_us' || type === 'timestamp_ms') return rfc3339(v, type === 'timestamp_us' ? 1000n : 1n);
  if (type === 'date' && typeof v === 'number') return new Date(v * 86_400_000).toISOString().slice(0, 10);
  if (csv && typeof v === 'bigint') return v.toString();
  return v;
}

function rfc3339(v: unknown, perMilli: bigint): string {
  if (v instanceof Date) return v.toISOString();
  const units = BigInt(v as number | bigint);
  const ms = units / perMilli - (units % perMilli < 0n ? 1n : 0n);
  const iso = new Date(Number(ms)).toISOString(); // ...SSSZ
  if (perMilli === 1n) return iso;
  const micros = ((units % 1000n) + 1000n) % 1000n;
  return `${iso.slice(0, -1)}${micros.toString().padStart(3, '0')}Z`;
}
