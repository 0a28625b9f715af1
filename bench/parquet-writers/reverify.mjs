// Re-verifies the files of a results JSON against DuckDB's reference files (when the
// reference was written after them): node bench/reverify.mjs out/results-....json
import { readFileSync, writeFileSync } from 'node:fs';
import { verify } from './verify.mjs';
const path = process.argv[2];
const results = JSON.parse(readFileSync(path, 'utf8'));
for (const r of results) {
  if (r.writer === 'baseline') continue;
  const suffix = r.batchRows && r.batchRows !== r.rows ? `-b${r.batchRows}` : '';
  const out = `${process.cwd()}/out/${r.writer}-${r.compression}${suffix}.parquet`;
  const files = suffix ? `${out}.*` : out;
  const ref = r.writer === 'duckdb-appender' && !suffix ? undefined : `${process.cwd()}/out/duckdb-appender-${r.compression}.parquet`;
  const v = await verify(files, r.rows, ref);
  Object.assign(r, { exact: v.exact, problems: v.problems, tsType: v.tsType });
  console.error(`${r.writer} ${r.compression}: ${v.exact ? 'exact' : v.problems.join('; ')}`);
}
writeFileSync(path, JSON.stringify(results, null, 1));
