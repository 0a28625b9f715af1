import { writeFileSync } from 'node:fs';
import { makeBuilder, Utf8, Int64, Int32, TimestampMicrosecond, Field, Schema, Table, RecordBatch, tableToIPC, makeData, Struct } from 'apache-arrow';
import * as pw from 'parquet-wasm';
import { COLUMNS } from '../gen.mjs';

export const compressions = ['snappy', 'zstd'];
const arrowType = (k) => k === 'string' ? new Utf8() : k === 'int64' ? new Int64() : k === 'int32' ? new Int32() : new TimestampMicrosecond('UTC');
export async function create({ compression, out }) {
  const fields = COLUMNS.map(([n, k, nl]) => new Field(n, arrowType(k), nl));
  // Arrow JS's Timestamp builders take epoch *milliseconds* (they compute BigInt(ms * 1000)),
  // which cannot carry µs exactly: build timestamps as Int64 and re-type the finished Data.
  const builders = fields.map((f) => makeBuilder({ type: f.type instanceof TimestampMicrosecond ? new Int64() : f.type, nullValues: [null, undefined] }));
  const isBig = COLUMNS.map(([, k]) => k === 'int64' || k === 'timestamp_us');
  return {
    append(r) {
      for (let c = 0; c < COLUMNS.length; c++) {
        const v = r[COLUMNS[c][0]];
        builders[c].append(isBig[c] && v !== null ? BigInt(v) : v);
      }
    },
    async finish() {
      const schema = new Schema(fields);
      const datas = builders.map((b, c) => {
        const d = b.finish().flush();
        return fields[c].type instanceof TimestampMicrosecond ? d.clone(fields[c].type) : d;
      });
      const n = datas[0].length;
      const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, nullCount: 0, children: datas }));
      const table = new Table(schema, [batch]);
      const wasmTable = pw.Table.fromIPCStream(tableToIPC(table, 'stream'));
      const props = new pw.WriterPropertiesBuilder()
        .setCompression(compression === 'zstd' ? pw.Compression.ZSTD : pw.Compression.SNAPPY)
        .setMaxRowGroupSize(131072).build();
      const bytes = pw.writeParquet(wasmTable, props);
      writeFileSync(out, bytes);
      return bytes.byteLength;
    },
  };
}
