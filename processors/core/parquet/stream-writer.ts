import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReadableStream } from 'node:stream/web';
import { setImmediate } from 'node:timers/promises';
import { ParquetBatchWriter, parquetWasm, writerProperties, type ParquetBatchWriterOptions } from './batch-writer.js';
import type { LakeRow, LakeSchema } from './lake-schema.js';

/**
 * Writes one Parquet file of any size to a local path, a batch of rows at a time, through
 * parquet-wasm's streaming writer (arrow-rs's ArrowWriter): memory holds one batch of rows in
 * Arrow buffers and the row group being encoded, not the file. For compaction's outputs, whose
 * rows come from a merge; ParquetBatchWriter stays the writer of the export's small files.
 */

export interface StreamWriteOptions extends ParquetBatchWriterOptions {
  /** Rows converted to Arrow at once (default 65,536). */
  batchRows?: number;
  /** Stop after this many rows (the iterator keeps the rest for the next file). */
  maxRows?: number;
}

/** Writes rows from `rows` (each row object may be reused by the iterator) until it ends or maxRows; resolves with the rows written. */
export async function writeParquetFile(path: string, schema: LakeSchema, rows: Iterator<LakeRow>, o: StreamWriteOptions): Promise<{ rows: number }> {
  const pw = parquetWasm();
  const batchRows = o.batchRows ?? 65_536;
  const maxRows = o.maxRows ?? Number.POSITIVE_INFINITY;
  let written = 0;
  async function* batches(): AsyncGenerator<unknown> {
    for (;;) {
      const writer = new ParquetBatchWriter(schema, { compression: o.compression });
      while (writer.rowCount < batchRows && written < maxRows) {
        const next = rows.next();
        if (next.done) break;
        writer.append(next.value);
        written++;
      }
      if (writer.rowCount === 0) return;
      const table = pw.Table.fromIPCStream(writer.toArrowIPC());
      const list = table.recordBatches();
      table.free();
      for (const b of list) yield b;
      await setImmediate(); // let the event loop breathe between batches
      if (written >= maxRows) return;
    }
  }
  const source = ReadableStream.from(batches());
  const encoded = await pw.transformParquetStream(source as unknown as globalThis.ReadableStream, writerProperties(o));
  await pipeline(Readable.fromWeb(encoded as unknown as ReadableStream<Uint8Array>), createWriteStream(path, { flags: 'wx' }));
  return { rows: written };
}
