// DuckDB via data chunks: column vectors filled in JS (numbers straight into vector memory,
// strings one native call each), appended 2048 rows at a time, then COPY TO parquet.
import { statSync, rmSync } from 'node:fs';
import { DuckDBInstance, DuckDBDataChunk, DuckDBTimestampTZValue, VARCHAR, BIGINT, INTEGER, TIMESTAMPTZ } from '@duckdb/node-api';
import { COLUMNS } from '../gen.mjs';

export const compressions = ['snappy', 'zstd'];
const SQL = { string: 'VARCHAR', int64: 'BIGINT', int32: 'INTEGER', timestamp_us: 'TIMESTAMPTZ' };
const TYPE = { string: VARCHAR, int64: BIGINT, int32: INTEGER, timestamp_us: TIMESTAMPTZ };
const SIZE = 2048;
export async function create({ compression, out }) {
  const instance = await DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  await con.run(`SET TimeZone = 'UTC'`);
  await con.run(`CREATE TABLE batch (${COLUMNS.map(([n, k, nl]) => `"${n}" ${SQL[k]}${nl ? '' : ' NOT NULL'}`).join(', ')})`);
  const app = await con.createAppender('batch');
  const kinds = COLUMNS.map(([, k]) => k), names = COLUMNS.map(([n]) => n), types = kinds.map((k) => TYPE[k]);
  let chunk, vectors, k = 0;
  const fresh = () => { chunk = DuckDBDataChunk.create(types, SIZE); chunk.rowCount = SIZE; vectors = types.map((_, c) => chunk.getColumnVector(c)); k = 0; };
  const flush = () => { if (!k) return; for (const v of vectors) v.flush(); chunk.rowCount = k; app.appendDataChunk(chunk); fresh(); };
  fresh();
  return {
    append(r) {
      for (let c = 0; c < kinds.length; c++) {
        const v = r[names[c]];
        if (v === null || v === undefined) { vectors[c].setItem(k, null); continue; }
        switch (kinds[c]) {
          case 'string': case 'int32': vectors[c].setItem(k, v); break;
          case 'int64': vectors[c].setItem(k, BigInt(v)); break;
          default: vectors[c].setItem(k, new DuckDBTimestampTZValue(BigInt(v)));
        }
      }
      if (++k === SIZE) flush();
    },
    async finish() {
      flush();
      app.closeSync();
      rmSync(out, { force: true });
      await con.run(`COPY batch TO '${out}' (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE 131072)`);
      con.closeSync();
      return statSync(out).size;
    },
  };
}
