import { writeFileSync } from 'node:fs';
import { Utf8, Int64, Int32, TimestampMicrosecond, Field, Schema, Table, RecordBatch, tableToIPC, makeData, Struct } from 'apache-arrow';
import * as pw from 'parquet-wasm';
import { COLUMNS } from '../gen.mjs';

export const compressions = ['snappy', 'zstd'];
const arrowType = (k) => k === 'string' ? new Utf8() : k === 'int64' ? new Int64() : k === 'int32' ? new Int32() : new TimestampMicrosecond('UTC');

class Validity {
  bits = new Uint8Array(1024); nulls = 0;
  set(i, valid) {
    if ((i >> 3) >= this.bits.length) { const b = new Uint8Array(this.bits.length * 2); b.set(this.bits); this.bits = b; }
    if (valid) this.bits[i >> 3] |= 1 << (i & 7); else this.nulls++;
  }
}
class StringCol {
  values = []; validity = new Validity();
  append(i, v) { const ok = v !== null && v !== undefined; this.validity.set(i, ok); this.values.push(ok ? v : ''); }
  data(type, n) {
    const joined = this.values.join('');
    const bytes = Buffer.from(joined, 'utf8');
    const offsets = new Int32Array(n + 1);
    let o = 0;
    if (bytes.length === joined.length) { for (let i = 0; i < n; i++) { o += this.values[i].length; offsets[i + 1] = o; } }
    else { for (let i = 0; i < n; i++) { o += Buffer.byteLength(this.values[i]); offsets[i + 1] = o; } }
    return makeData({ type, length: n, nullCount: this.validity.nulls, nullBitmap: this.validity.nulls ? this.validity.bits : undefined, valueOffsets: offsets, data: bytes });
  }
}
class Int64Col {
  big = new BigInt64Array(1024); i32 = new Int32Array(this.big.buffer); validity = new Validity();
  append(i, v) {
    if (i >= this.big.length) { const b = new BigInt64Array(this.big.length * 2); b.set(this.big); this.big = b; this.i32 = new Int32Array(b.buffer); }
    const ok = v !== null && v !== undefined; this.validity.set(i, ok);
    if (!ok) return;
    if (typeof v === 'number') { this.i32[2 * i] = v >>> 0; this.i32[2 * i + 1] = Math.floor(v / 4294967296); }
    else this.big[i] = v;
  }
  data(type, n) { return makeData({ type, length: n, nullCount: this.validity.nulls, nullBitmap: this.validity.nulls ? this.validity.bits : undefined, data: this.big.subarray(0, n) }); }
}
class Int32Col {
  vals = new Int32Array(1024); validity = new Validity();
  append(i, v) {
    if (i >= this.vals.length) { const b = new Int32Array(this.vals.length * 2); b.set(this.vals); this.vals = b; }
    const ok = v !== null && v !== undefined; this.validity.set(i, ok); if (ok) this.vals[i] = v;
  }
  data(type, n) { return makeData({ type, length: n, nullCount: this.validity.nulls, nullBitmap: this.validity.nulls ? this.validity.bits : undefined, data: this.vals.subarray(0, n) }); }
}

export async function create({ compression, out }) {
  const fields = COLUMNS.map(([n, k, nl]) => new Field(n, arrowType(k), nl));
  const cols = COLUMNS.map(([, k]) => k === 'string' ? new StringCol() : k === 'int32' ? new Int32Col() : new Int64Col());
  const names = COLUMNS.map(([n]) => n);
  let n = 0;
  return {
    append(r) { for (let c = 0; c < cols.length; c++) cols[c].append(n, r[names[c]]); n++; },
    async finish() {
      const schema = new Schema(fields);
      const children = cols.map((col, c) => col.data(fields[c].type, n));
      const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, nullCount: 0, children }));
      const wasmTable = pw.Table.fromIPCStream(tableToIPC(new Table(schema, [batch]), 'stream'));
      const props = new pw.WriterPropertiesBuilder()
        .setCompression(compression === 'zstd' ? pw.Compression.ZSTD : pw.Compression.SNAPPY)
        .setMaxRowGroupSize(131072).build();
      const bytes = pw.writeParquet(wasmTable, props);
      writeFileSync(out, bytes);
      return bytes.byteLength;
    },
  };
}
