// The project module (processors/core/parquet), compiled: see module-path.mjs.
import { writeFileSync } from 'node:fs';
import { sluiceWriterUrl } from '../module-path.mjs';
const { ParquetBatchWriter } = await import(sluiceWriterUrl);
import { COLUMNS } from '../gen.mjs';

export const compressions = ['snappy', 'zstd'];
const TYPE = { string: 'string', int64: 'int64', int32: 'int32', timestamp_us: 'timestamp_us' };
export async function create({ compression, out }) {
  const w = new ParquetBatchWriter({ columns: COLUMNS.map(([name, k, nullable]) => ({ name, type: TYPE[k], nullable })) }, { compression });
  return {
    append: (r) => w.append(r),
    async finish() { const bytes = await w.finish(); writeFileSync(out, bytes); return bytes.byteLength; },
  };
}
