// Where a batch's memory goes: node --expose-gc bench/mem-module.mjs BATCH_ROWS BATCHES [compression]
import * as pw from 'parquet-wasm';
import { sluiceWriterUrl } from './module-path.mjs';
const { ParquetBatchWriter } = await import(sluiceWriterUrl);
import { COLUMNS, row } from './gen.mjs';
const TYPE = { string: 'string', int64: 'int64', int32: 'int32', timestamp_us: 'timestamp_us' };
const [B, K, comp] = [Number(process.argv[2] ?? 100000), Number(process.argv[3] ?? 5), process.argv[4] ?? 'zstd'];
const schema = { columns: COLUMNS.map(([name, k, nullable]) => ({ name, type: TYPE[k], nullable })) };
const mb = (x) => Math.round(x / 1048576);
let i = 0;
for (let k = 0; k < K; k++) {
  const w = new ParquetBatchWriter(schema, { compression: comp });
  for (let j = 0; j < B; j++) w.append(row(i++));
  const m1 = process.memoryUsage();
  const bytes = await w.finish();
  const m2 = process.memoryUsage();
  globalThis.gc?.();
  const m3 = process.memoryUsage();
  console.log(JSON.stringify({ batch: k, approxMB: mb(w.approxBytes ?? 0), fileMB: mb(bytes.length), beforeFinish: { rss: mb(m1.rss), heap: mb(m1.heapUsed), ab: mb(m1.arrayBuffers) }, afterFinish: { rss: mb(m2.rss), ab: mb(m2.arrayBuffers) }, afterGC: { rss: mb(m3.rss), heap: mb(m3.heapUsed), ab: mb(m3.arrayBuffers) }, wasmMB: mb(pw.wasmMemory().buffer.byteLength), maxRssMB: mb(process.resourceUsage().maxRSS * 1024) }));
}
