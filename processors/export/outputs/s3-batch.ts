import type { ParquetCompression, ParquetEncoder } from '../../core/parquet/batch-writer.js';
import { LakeValueError } from '../../core/parquet/columns.js';
import { LakeSchemaError, LakeValueShapeError, type LakeRow } from '../../core/parquet/lake-schema.js';
import { eventTimeMillis, renderPathTemplate, TemplateValueError, type PathTemplate, type TimeFormat } from '../../core/pipeline/path-template.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { createFileWriter, type FileWriter } from '../formats.js';
import type { ShapeSource } from '../shape.js';
import type { OutputBatch, OutputRecord, Refusal } from './output.js';
import type { OutputFormat } from './s3.js';

/**
 * The S3 output's open batch of one input partition: its records grouped into files by
 * rendered key (event type, day, ... and row shape). Nothing here does I/O; the output
 * uploads what `seal()` returns.
 *
 * Keys are deterministic: a file's key carries the partition and the offset of its first
 * record, and a batch always starts at the committed offset, so a replay after a crash or
 * a rebalance starts every file at the offset it had and overwrites the object it wrote.
 */

export interface FileSettings {
  path: PathTemplate;
  format: OutputFormat;
  compression: ParquetCompression;
  timeField: string[] | undefined;
  timeFormat: TimeFormat;
  /** Key-value metadata for Parquet footers. */
  metadata: Record<string, string>;
  /** Encodes Parquet files off the event loop (encode_threads > 0). */
  encoder?: ParquetEncoder | undefined;
}

interface OpenFile {
  writer: FileWriter;
  firstOffset: string;
  lastOffset: string;
  /** The first record (for the key's field and time parts; all records of the file share them). */
  record: unknown;
  eventTimeMs: number | undefined;
}

export interface SealedFile {
  key: string;
  rows: number;
  firstOffset: string;
  lastOffset: string;
  encode(): Promise<Uint8Array>;
}

const FIRST = '\u0000first\u0000';
const LAST = '\u0000last\u0000';

export class S3Batch implements OutputBatch {
  private readonly files = new Map<string, OpenFile>();
  /** Records in files. */
  rows = 0;
  private sealed = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly out: FileSettings,
    private readonly shapes: ShapeSource,
  ) {}

  /** A record into its file; a value its column cannot hold or a path it cannot render is refused (the batch unchanged). */
  add(record: OutputRecord): Refusal | undefined {
    try {
      this.append(record);
      return undefined;
    } catch (error) {
      if (error instanceof LakeValueError || error instanceof LakeValueShapeError || error instanceof LakeSchemaError) return { reason: DLQ_REASONS.schemaMismatch, error: error.message };
      if (error instanceof TemplateValueError) return { reason: DLQ_REASONS.pathError, error: error.message };
      throw error;
    }
  }

  private append({ value, offset, reader }: OutputRecord): void {
    if (this.sealed) throw new Error('a sealed batch takes no more records');
    const shape = this.shapes.shapeFor(reader?.id, reader?.schema);
    const eventTimeMs = this.out.timeField ? eventTimeMillis(fieldAt(value, this.out.timeField), this.out.timeFormat) : undefined;
    const values = { topic: this.topic, partition: this.partition, firstOffset: FIRST, lastOffset: LAST, record: value, eventTimeMs };
    const group = `${shape.id}\u0000${renderPathTemplate(this.out.path, values)}`;
    const row: LakeRow = shape.toRow(value, { topic: this.topic, partition: this.partition, offset });
    let file = this.files.get(group);
    if (!file) {
      const writer = createFileWriter(this.out.format, shape.schema, this.out.compression, this.out.metadata);
      writer.append(row); // throws before the file exists, so a bad first row leaves nothing behind
      this.files.set(group, { writer, firstOffset: offset, lastOffset: offset, record: value, eventTimeMs });
    } else {
      file.writer.append(row);
      file.lastOffset = offset;
    }
    this.rows++;
  }

  get fileCount(): number {
    return this.files.size;
  }

  /** The files to write, with their final keys; handed out once, the batch takes no more records. */
  seal(): SealedFile[] {
    if (this.sealed) throw new Error('an S3 batch is sealed once');
    this.sealed = true;
    const sealed: SealedFile[] = [];
    for (const f of this.files.values()) {
      const key = renderPathTemplate(this.out.path, {
        topic: this.topic,
        partition: this.partition,
        firstOffset: f.firstOffset,
        lastOffset: f.lastOffset,
        record: f.record,
        ...(f.eventTimeMs !== undefined ? { eventTimeMs: f.eventTimeMs } : {}),
      });
      sealed.push({ key, rows: f.writer.rowCount, firstOffset: f.firstOffset, lastOffset: f.lastOffset, encode: () => f.writer.finish(this.out.encoder) });
    }
    this.files.clear();
    return sealed;
  }
}

function fieldAt(value: unknown, path: string[]): unknown {
  let v = value;
  for (const name of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[name] : undefined;
  return v;
}
