import { statSync } from 'node:fs';
import { COLUMNS } from '../gen.mjs';
import parquet from '@dsnp/parquetjs';

const TYPE = { string: 'UTF8', int64: 'INT64', int32: 'INT32', timestamp_us: 'TIMESTAMP_MICROS' };
export const compressions = ['snappy'];
export async function create({ compression, out }) {
  const fields = {};
  for (const [name, kind, nullable] of COLUMNS) fields[name] = { type: TYPE[kind], optional: nullable, compression: compression.toUpperCase() };
  const writer = await parquet.ParquetWriter.openFile(new parquet.ParquetSchema(fields), out, { rowGroupSize: 100000 });
  return {
    // appendRow must be awaited row by row (see parquetjs-lite.mjs)
    appendAsync: (r) => writer.appendRow(r),
    async finish() { await writer.close(); return statSync(out).size; },
  };
}
