// One measurement in a fresh process: node bench/run-one.mjs WRITER COMPRESSION ROWS OUT [BATCH_ROWS]
// With BATCH_ROWS, a new writer (a new file OUT.k) is started every BATCH_ROWS rows, as the
// export pipeline rolls files; the figures then cover all the files.
import { row } from './gen.mjs';
const [writerName, compression, rowsArg, out, batchArg] = process.argv.slice(2);
const N = Number(rowsArg);
const BATCH = batchArg ? Number(batchArg) : N;
const mod = await import(`./writers/${writerName}.mjs`);
const CHUNK = 8192;
const rssBefore = process.memoryUsage().rss;
let ns = 0n;
let bytes = 0;
let t = process.hrtime.bigint();
let files = 0;
let inBatch = 0;
let w = await mod.create({ compression, out: BATCH === N ? out : `${out}.${files}` });
ns += process.hrtime.bigint() - t;
const chunk = new Array(CHUNK);
for (let start = 0; start < N; start += CHUNK) {
  const len = Math.min(CHUNK, N - start);
  for (let j = 0; j < len; j++) chunk[j] = row(start + j); // generation is not timed
  t = process.hrtime.bigint();
  for (let j = 0; j < len; j++) {
    if (w.appendAsync) await w.appendAsync(chunk[j]); else w.append(chunk[j]);
    if (++inBatch === BATCH && start + j + 1 < N) {
      bytes += await w.finish();
      w = await mod.create({ compression, out: `${out}.${++files}` });
      inBatch = 0;
    }
  }
  ns += process.hrtime.bigint() - t;
}
t = process.hrtime.bigint();
bytes += await w.finish();
ns += process.hrtime.bigint() - t;
const secs = Number(ns) / 1e9;
console.log(JSON.stringify({ writer: writerName, compression, rows: N, batchRows: BATCH, files: files + 1, secs, rowsPerSec: Math.round(N / secs), bytes,
  peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024), startRssMB: Math.round(rssBefore / 1048576) }));
