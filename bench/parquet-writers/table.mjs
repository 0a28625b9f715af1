// Markdown table from results JSON files: node bench/table.mjs out/results-a.json [more.json ...]
// Rows of later files replace rows of earlier ones for the same writer, compression and batch size.
import { readFileSync } from 'node:fs';
const NOTES = {
  'parquetjs-lite': 'int64 through parseInt: 2^53+1 -> 2^53 (silent); timestamps as legacy TIMESTAMP_MICROS (DuckDB: TIMESTAMP, no TZ); no zstd; last release 2024',
  'dsnp-parquetjs': 'values exact; timestamps only as legacy converted TIMESTAMP_MICROS (DuckDB: TIMESTAMP, no TZ); no zstd; 1.9.3 on npm ships no code (dist missing), 1.8.9 declares node >=24.18',
  'hyparquet-writer': 'pure JS, exact; zstd needs a compressor the caller brings (none built in; Node 20 has no zlib zstd); holds whole columns as JS arrays',
  'parquet-wasm-builders': 'arrow-rs via WASM; Arrow JS builders: slow and memory-hungry; their Timestamp builders take ms, so µs go through Int64',
  'parquet-wasm-direct': 'arrow-rs via WASM; Arrow columns from typed arrays (bench prototype: strings joined at the end)',
  'sluice-module': 'the chosen design: processors/core/parquet (parquet-wasm + Arrow buffers filled on append)',
  'duckdb-appender': 'native (68 MB linux-x64 binary); appender -> in-memory table -> COPY TO file (no in-memory output)',
  'duckdb-chunks': 'native; DataChunk vectors filled in JS, appendDataChunk, COPY TO file',
  baseline: 'harness only (row generation untimed; this is the loop + RSS floor)',
};
const byKey = new Map();
for (const f of process.argv.slice(2)) for (const r of JSON.parse(readFileSync(f, 'utf8'))) byKey.set(`${r.writer}|${r.compression}|${r.batchRows ?? r.rows}`, r);
const groups = new Map();
for (const r of byKey.values()) {
  const k = `${r.writer}|${r.batchRows ?? r.rows}`;
  if (!groups.has(k)) groups.set(k, {});
  groups.get(k)[r.compression] = r;
}
const fmt = (n) => n.toLocaleString('en-US');
const mb = (b) => (b / 1048576).toFixed(1);
console.log('| writer | version | rows/file | rows/s median snappy (runs) | rows/s median zstd (runs) | peak RSS MB snappy / zstd | file MB snappy / zstd | exact readback | notes |');
console.log('|---|---|---:|---:|---:|---:|---:|---|---|');
for (const [k, g] of groups) {
  const [writer, batch] = k.split('|');
  const s = g.snappy, z = g.zstd, any = s ?? z;
  if (writer === 'baseline') continue;
  const rate = (r) => (r ? `**${fmt(r.rowsPerSecMedian)}** (${r.rowsPerSecAll.map(fmt).join(', ')})` : 'n/a');
  const problems = [...new Set([s, z].filter(Boolean).flatMap((r) => r.problems))];
  const kinds = [];
  if (problems.some((p) => /2\^53\+1 row/.test(p))) kinds.push('2^53+1 read back as 2^53');
  if (problems.some((p) => /type of occurred_at/.test(p))) kinds.push('timestamps read as TIMESTAMP, not TIMESTAMP WITH TIME ZONE');
  const other = problems.filter((p) => !/2\^5|2\^62|amount|type of (occurred|received)_at|logical type|reference file/.test(p));
  kinds.push(...other);
  const exact = problems.length === 0 ? 'yes' : `**no**: ${kinds.join('; ')}`;
  console.log(`| ${writer} | ${any.packages.map((p) => p.replace('@v', '@')).join(' + ')} | ${fmt(Number(batch))} | ${rate(s)} | ${rate(z)} | ${s?.peakRssMBMedian ?? '–'} / ${z?.peakRssMBMedian ?? '–'} | ${s ? mb(s.bytes) : '–'} / ${z ? mb(z.bytes) : '–'} | ${exact} | ${NOTES[writer] ?? ''} |`);
}
