import { Field, makeData, RecordBatch, Schema, Struct, Table, tableToIPC } from 'apache-arrow';
import { createRequire } from 'node:module';
import { setImmediate } from 'node:timers/promises';
import type * as ParquetWasm from 'parquet-wasm';
import { PermanentError } from '../errors/errors.js';
import { columnBuilder, LakeValueError, type ColumnBuilder } from './columns.js';
import type { LakeRow, LakeSchema } from './lake-schema.js';

/**
 * Buffers one batch of lake rows and encodes it as one Parquet file, in memory.
 *
 * Rows go straight into Arrow column buffers (columns.ts); finish() hands the columns to
 * parquet-wasm (the Rust arrow-rs Parquet writer compiled to WebAssembly), which writes
 * the file: int64 exact, timestamps as TIMESTAMP(isAdjustedToUTC=true) logical types, UTF-8
 * strings, optional columns where the schema is nullable, dictionary encoding and
 * statistics, snappy or zstd (or none). No native binary, so `npm ci` works on any platform.
 *
 * Memory: while appending, about approxBytes (the batch's Arrow size, buffers grow by
 * doubling so up to 2x that is reserved). finish() copies the batch to Arrow IPC, then into
 * WebAssembly memory, and returns the file: budget ~4x approxBytes at the peak of a finish.
 * WebAssembly memory grows to the largest batch finished and is not returned to the OS, so
 * bound batches (by rows and bytes) rather than relying on a large one being freed.
 * finish() encodes synchronously between awaits: ~3 s of CPU per million DOMAIN rows, so
 * keep batches well below that when the event loop must stay responsive.
 */

/** Page compression; the s3 output's `compression` values. */
export type ParquetCompression = 'snappy' | 'zstd' | 'none';
/** parquet_wasm's Compression values (a const enum of its bindings). */
const CODECS: Record<ParquetCompression, ParquetWasm.Compression> = {
  snappy: 1 as ParquetWasm.Compression.SNAPPY,
  zstd: 5 as ParquetWasm.Compression.ZSTD,
  none: 0 as ParquetWasm.Compression.UNCOMPRESSED,
};

/**
 * parquet-wasm, loaded on first use: its compiled WebAssembly costs a process ~22 MB, which a
 * runner encoding on worker threads (encode-pool.ts) never needs on its main thread.
 */
let wasm: typeof ParquetWasm | undefined;
export function parquetWasm(): typeof ParquetWasm {
  if (!wasm) {
    wasm = createRequire(import.meta.url)('parquet-wasm') as typeof ParquetWasm;
    for (const [name, code] of Object.entries(CODECS)) {
      const expected = { snappy: wasm.Compression.SNAPPY, zstd: wasm.Compression.ZSTD, none: wasm.Compression.UNCOMPRESSED }[name];
      if (code !== expected) throw new PermanentError(`parquet-wasm's compression code for ${name} is ${expected}, not ${code}: update CODECS`);
    }
  }
  return wasm;
}

export interface ParquetBatchWriterOptions {
  compression: ParquetCompression;
  /** Rows per row group; default 131072 (at most one row group for typical batches). */
  rowGroupSize?: number | undefined;
  /** Key-value metadata written in the file footer (e.g. the Avro schema id). */
  metadata?: Readonly<Record<string, string>> | undefined;
  /** `created_by` of the footer; default `sluice`. */
  createdBy?: string | undefined;
}

/** append() after finish(), or finish() twice: a bug in the caller. */
export class WriterClosedError extends PermanentError {}

const DEFAULT_ROW_GROUP_SIZE = 131_072;

export class ParquetBatchWriter {
  private readonly builders: ColumnBuilder<unknown>[];
  private readonly names: string[];
  private readonly nullable: boolean[];
  private readonly scratch: unknown[];
  private rows = 0;
  private finished = false;

  constructor(
    readonly schema: LakeSchema,
    private readonly options: ParquetBatchWriterOptions,
  ) {
    if (schema.columns.length === 0) throw new PermanentError('a Parquet file needs at least one column');
    const seen = new Set<string>();
    for (const c of schema.columns) {
      if (seen.has(c.name)) throw new PermanentError(`column ${c.name} appears twice in the lake schema`);
      seen.add(c.name);
    }
    if (!Object.hasOwn(CODECS, options.compression)) {
      throw new PermanentError(`compression must be one of ${Object.keys(CODECS).join(', ')}, got ${String(options.compression)}`);
    }
    this.builders = schema.columns.map(columnBuilder);
    this.names = schema.columns.map((c) => c.name);
    this.nullable = schema.columns.map((c) => c.nullable);
    this.scratch = new Array<unknown>(schema.columns.length);
  }

  /**
   * Adds one row (keys are column names; a missing key is null; other keys are ignored).
   * A value that does not fit throws LakeValueError and leaves the batch unchanged.
   */
  append(row: LakeRow): void {
    if (this.finished) throw new WriterClosedError('append() after finish(): start a new ParquetBatchWriter for the next batch');
    const { builders, names, nullable, scratch } = this;
    const n = builders.length;
    // Check every value first, so that a bad one leaves no half-appended row behind.
    for (let c = 0; c < n; c++) {
      const v = row[names[c]!];
      if (v === null || v === undefined) {
        if (!nullable[c]) throw new LakeValueError(names[c]!, 'required column is null or missing');
        scratch[c] = null;
      } else scratch[c] = builders[c]!.check(v);
    }
    for (let c = 0; c < n; c++) builders[c]!.append(scratch[c]);
    this.rows++;
  }

  get rowCount(): number {
    return this.rows;
  }

  /** The batch's size in Arrow buffers (≈ uncompressed Parquet size): what batching by bytes should count. */
  get approxBytes(): number {
    let total = 0;
    for (const b of this.builders) total += b.bytes;
    return total;
  }

  /**
   * Encodes the batch (possibly empty) as a Parquet file. The writer cannot be used
   * afterwards. With an `encoder` (a ParquetEncodePool) the Parquet encoding runs on a
   * worker thread and only the copy of the columns to Arrow IPC stays on this one.
   */
  async finish(encoder?: ParquetEncoder): Promise<Uint8Array> {
    const ipc = this.toIPC();
    const options = { compression: this.options.compression, rowGroupSize: this.options.rowGroupSize, metadata: this.options.metadata, createdBy: this.options.createdBy };
    if (encoder) return encoder.encode(ipc, options);
    await setImmediate();
    return encodeArrowIPC(ipc, options);
  }

  /** The batch as one Arrow IPC stream, for a streaming writer (stream-writer.ts); the writer cannot be used afterwards. */
  toArrowIPC(): Uint8Array {
    return this.toIPC();
  }

  /** The batch as one Arrow IPC stream (the column buffers are let go). */
  private toIPC(): Uint8Array {
    if (this.finished) throw new WriterClosedError('finish() called twice');
    this.finished = true;
    const fields = this.schema.columns.map((c, i) => new Field(c.name, this.builders[i]!.type, c.nullable));
    const arrowSchema = new Schema(fields);
    const children = this.builders.map((b) => b.toData());
    const batch = new RecordBatch(arrowSchema, makeData({ type: new Struct(fields), length: this.rows, nullCount: 0, children }));
    const ipc = tableToIPC(new Table(arrowSchema, [batch]), 'stream');
    this.builders.length = 0; // let the column buffers go before WebAssembly takes its copy
    return ipc;
  }
}

/** Encodes Arrow IPC as Parquet elsewhere (a worker thread): see encode-pool.ts. */
export interface ParquetEncoder {
  encode(ipc: Uint8Array, options: ParquetBatchWriterOptions): Promise<Uint8Array>;
}

/** An Arrow IPC stream -> a Parquet file (parquet-wasm), synchronously. */
export function encodeArrowIPC(ipc: Uint8Array, options: ParquetBatchWriterOptions): Uint8Array {
  const pw = parquetWasm();
  const table = pw.Table.fromIPCStream(ipc);
  // writeParquet takes ownership of (and frees) the wasm table and properties.
  return pw.writeParquet(table, writerProperties(options));
}

/** parquet-wasm's writer properties for these options (whoever takes them frees them). */
export function writerProperties(options: ParquetBatchWriterOptions): ParquetWasm.WriterProperties {
  const pw = parquetWasm();
  let props = new pw.WriterPropertiesBuilder()
    .setCompression(CODECS[options.compression])
    .setMaxRowGroupSize(options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE)
    .setCreatedBy(options.createdBy ?? 'sluice');
  if (options.metadata && Object.keys(options.metadata).length > 0) {
    props = props.setKeyValueMetadata(new Map(Object.entries(options.metadata)));
  }
  return props.build();
}
