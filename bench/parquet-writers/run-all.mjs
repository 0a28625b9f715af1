// Runs every writer x compression REPS times (each in a fresh process) and verifies the files
// with DuckDB.  node bench/run-all.mjs [ROWS] [REPS] [writers,...|all] [BATCH_ROWS]
// With BATCH_ROWS each run rolls a new file every BATCH_ROWS rows (as the export does).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { verify } from './verify.mjs';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 3);
// duckdb-appender first: its files are the reference the others are compared with row by row.
const ALL = ['baseline', 'duckdb-appender', 'duckdb-chunks', 'parquetjs-lite', 'dsnp-parquetjs', 'hyparquet-writer', 'parquet-wasm-builders', 'parquet-wasm-direct', 'sluice-module'];
const writers = process.argv[4] && process.argv[4] !== 'all' ? process.argv[4].split(',') : ALL;
const BATCH = process.argv[5] ? Number(process.argv[5]) : ROWS;
const tag = BATCH === ROWS ? `${ROWS}` : `${ROWS}-batch${BATCH}`;
const PKG = { 'parquetjs-lite': ['parquetjs-lite'], 'dsnp-parquetjs': ['@dsnp/parquetjs'], 'hyparquet-writer': ['hyparquet-writer'],
  'parquet-wasm-builders': ['parquet-wasm', 'apache-arrow'], 'parquet-wasm-direct': ['parquet-wasm', 'apache-arrow'], 'duckdb-appender': ['@duckdb/node-api'], 'sluice-module': ['parquet-wasm', 'apache-arrow'], 'duckdb-chunks': ['@duckdb/node-api'], baseline: [] };
const RUN_ONE = fileURLToPath(new URL('./run-one.mjs', import.meta.url));
const version = (p) => {
  const url = [new URL(`./node_modules/${p}/package.json`, import.meta.url), new URL(`../node_modules/${p}/package.json`, import.meta.url)].find((u) => existsSync(u));
  return JSON.parse(readFileSync(url, 'utf8')).version.replace(/^v/, '');
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
mkdirSync('out', { recursive: true });
const results = [];
for (const w of writers) {
  const { compressions } = await import(`./writers/${w}.mjs`);
  for (const comp of compressions) {
    const out = `${process.cwd()}/out/${w}-${comp}${BATCH === ROWS ? '' : `-b${BATCH}`}.parquet`;
    for (const f of readdirSync('out')) if (f.startsWith(out.split('/').pop() + '.')) rmSync(`out/${f}`);
    const runs = [];
    for (let r = 0; r < REPS; r++) {
      const load = loadavg()[0].toFixed(2);
      const line = execFileSync(process.execPath, [RUN_ONE, w, comp, String(ROWS), out, String(BATCH)], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop();
      const m = JSON.parse(line); m.load1 = load; runs.push(m);
      console.error(`${w} ${comp} #${r + 1}: ${m.rowsPerSec} rows/s, ${m.peakRssMB} MB peak RSS, ${m.bytes} B in ${m.files} file(s), load ${load}`);
    }
    // The reference for the row-by-row comparison: DuckDB's own single-file output.
    const reference = `${process.cwd()}/out/duckdb-appender-${comp}.parquet`;
    const files = BATCH === ROWS ? out : `${out}.*`;
    const v = w === 'baseline' ? { exact: null, problems: [] } : await verify(files, ROWS, w === 'duckdb-appender' && BATCH === ROWS ? undefined : reference);
    if (v.exact === false) console.error(`  readback problems: ${v.problems.join('; ')}`);
    results.push({ writer: w, packages: PKG[w].map((p) => `${p}@${version(p)}`), compression: comp, rows: ROWS,
      rowsPerSecMedian: median(runs.map((x) => x.rowsPerSec)), rowsPerSecAll: runs.map((x) => x.rowsPerSec), batchRows: BATCH, files: runs.at(-1).files,
      peakRssMBMedian: median(runs.map((x) => x.peakRssMB)), bytes: runs.at(-1).bytes, exact: v.exact, problems: v.problems, tsType: v.tsType, loads: runs.map((x) => x.load1) });
  }
}
writeFileSync(`out/results-${tag}-${writers.length === ALL.length ? 'all' : writers.join('+')}.json`, JSON.stringify(results, null, 1));
console.log(JSON.stringify(results, null, 1));
