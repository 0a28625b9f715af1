import type { Message } from 'kafkajs';
import type { ParquetCompression, ParquetEncoder } from '../core/parquet/batch-writer.js';
import type { LakeRow } from '../core/parquet/lake-schema.js';
import type { OutputFormat } from '../core/pipeline/components/s3-output.js';
import { eventTimeMillis, renderPathTemplate, type PathTemplate, type TimeFormat } from '../core/pipeline/path-template.js';
import { createFileWriter, type FileWriter } from './formats.js';
import type { RowShape } from './shape.js';
import type { PartitionSteps } from './steps.js';

/**
 * The open batch of one input partition: its records grouped into files by rendered key
 * (event type, day, ... and row shape), the dead letters waiting to be sent, and the
 * offset to commit once everything is durable. Nothing here does I/O; the runner uploads
 * what `seal()` returns, sends the dead letters, then commits `nextOffset`.
 *
 * Keys are deterministic: a file's key carries the partition and the offset of its first
 * record, and a batch always starts at the committed offset, so a replay after a crash or
 * a rebalance starts every file at the offset it had and overwrites the object it wrote.
 */

export interface OutputSettings {
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

export class PartitionBatch {
  private readonly files = new Map<string, OpenFile>();
  readonly deadLetters: { message: Message; reason: string }[] = [];
  readonly dropped = new Map<string, number>();
  /** Records in files. */
  records = 0;
  /** Input bytes of the records in this batch (what `batching.bytes` counts). */
  bytes = 0;
  /** Messages consumed into this batch (records, dead letters and dropped). */
  consumed = 0;
  /** When the first message of this batch arrived (ms), for `batching.period`. */
  openedAt: number | undefined;
  /** The offset to commit once this batch is durable. */
  nextOffset: bigint | undefined;
  /** Kafka timestamp (ms) of the batch's first message: the oldest uncommitted record, for lag in seconds. */
  oldestTimestamp: number | undefined;
  /** The offset of the batch's first message: where to read again if the batch fails. */
  startOffset: string | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly steps: PartitionSteps,
    private readonly out: OutputSettings,
  ) {}

  /** Marks a message as consumed into this batch (whatever its outcome). */
  consumedMessage(offset: string, size: number, now: number, timestamp?: number): void {
    this.openedAt ??= now;
    if (timestamp !== undefined) this.oldestTimestamp ??= timestamp;
    this.startOffset ??= offset;
    this.consumed++;
    this.bytes += size;
    this.nextOffset = BigInt(offset) + 1n;
  }

  /** After a whole fetched batch: its last offset may be a transaction marker past the last record. */
  consumedUpTo(lastOffset: string): void {
    const next = BigInt(lastOffset) + 1n;
    if (this.nextOffset === undefined || next > this.nextOffset) this.nextOffset = next;
  }

  /**
   * Adds a record to its file. Throws (LakeValueError, TemplateValueError) when it cannot
   * be written, leaving the batch unchanged: the caller dead-letters it.
   */
  add(value: unknown, shape: RowShape, offset: string): void {
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
    this.records++;
  }

  deadLetter(message: Message, reason: string): void {
    this.deadLetters.push({ message, reason });
  }

  drop(by: string): void {
    this.dropped.set(by, (this.dropped.get(by) ?? 0) + 1);
  }

  get fileCount(): number {
    return this.files.size;
  }

  /** Whether anything waits to be made durable (files, dead letters, or an offset to commit). */
  get pending(): boolean {
    return this.consumed > 0;
  }

  /** Set by seal(): the batch's files are handed out once; a second flush of it would commit nothing written. */
  sealed = false;

  /** The files to write, with their final keys; the batch must not be added to afterwards. */
  seal(): SealedFile[] {
    if (this.sealed) throw new Error('a partition batch is sealed once');
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
