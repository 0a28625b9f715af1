import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import { COLUMNS } from '../gen.mjs';
const parquet = createRequire(import.meta.url)('parquetjs-lite');

const TYPE = { string: 'UTF8', int64: 'INT64', int32: 'INT32', timestamp_us: 'TIMESTAMP_MICROS' };
export const compressions = ['snappy'];
export async function create({ compression, out }) {
  const fields = {};
  for (const [name, kind, nullable] of COLUMNS) fields[name] = { type: TYPE[kind], optional: nullable, compression: compression.toUpperCase() };
  const writer = await parquet.ParquetWriter.openFile(new parquet.ParquetSchema(fields), out, { rowGroupSize: 100000 });
  return {
    // appendRow must be awaited row by row: an un-awaited call during a row-group flush
    // shreds into the buffer being written and the library writes that row group twice.
    appendAsync: (r) => writer.appendRow(r),
    async finish() { await writer.close(); return statSync(out).size; },
  };
}
