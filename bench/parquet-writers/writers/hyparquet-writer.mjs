import { writeFileSync } from 'node:fs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { COLUMNS } from '../gen.mjs';

export const compressions = ['snappy'];
function element(name, kind, nullable) {
  const repetition_type = nullable ? 'OPTIONAL' : 'REQUIRED';
  if (kind === 'string') return { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' }, repetition_type };
  if (kind === 'int32') return { name, type: 'INT32', repetition_type };
  if (kind === 'int64') return { name, type: 'INT64', repetition_type };
  return { name, type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' }, repetition_type };
}
export async function create({ compression, out }) {
  const cols = COLUMNS.map(() => []);
  return {
    append(r) {
      for (let c = 0; c < COLUMNS.length; c++) {
        const [name, kind] = COLUMNS[c];
        const v = r[name];
        // physical INT64 wants bigint
        cols[c].push(kind === 'int64' && v !== null ? BigInt(v) : v);
      }
    },
    async finish() {
      const schema = [{ name: 'root', num_children: COLUMNS.length }, ...COLUMNS.map(([n, k, nl]) => element(n, k, nl))];
      const buf = parquetWriteBuffer({
        columnData: COLUMNS.map(([name, , nullable], c) => ({ name, data: cols[c], nullable })),
        schema, codec: compression.toUpperCase(), rowGroupSize: 100000,
      });
      writeFileSync(out, new Uint8Array(buf));
      return buf.byteLength;
    },
  };
}
