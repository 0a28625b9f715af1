import { statSync, rmSync } from 'node:fs';
import { DuckDBInstance, DuckDBTimestampTZValue } from '@duckdb/node-api';
import { COLUMNS } from '../gen.mjs';

export const compressions = ['snappy', 'zstd'];
const SQL = { string: 'VARCHAR', int64: 'BIGINT', int32: 'INTEGER', timestamp_us: 'TIMESTAMPTZ' };
export async function create({ compression, out }) {
  const instance = await DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  await con.run(`SET TimeZone = 'UTC'`);
  await con.run(`CREATE TABLE batch (${COLUMNS.map(([n, k, nl]) => `"${n}" ${SQL[k]}${nl ? '' : ' NOT NULL'}`).join(', ')})`);
  const app = await con.createAppender('batch');
  const kinds = COLUMNS.map(([, k]) => k), names = COLUMNS.map(([n]) => n);
  return {
    append(r) {
      for (let c = 0; c < kinds.length; c++) {
        const v = r[names[c]];
        if (v === null || v === undefined) { app.appendNull(); continue; }
        switch (kinds[c]) {
          case 'string': app.appendVarchar(v); break;
          case 'int32': app.appendInteger(v); break;
          case 'int64': app.appendBigInt(BigInt(v)); break;
          default: app.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(v)));
        }
      }
      app.endRow();
    },
    async finish() {
      app.closeSync();
      rmSync(out, { force: true });
      await con.run(`COPY batch TO '${out}' (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE 131072)`);
      con.closeSync(); instance.closeSync?.();
      return statSync(out).size;
    },
  };
}
