// Where the compiled project module is: $SLUICE_PARQUET_WRITER, else the repo's dist/ (run
// `npm run build` at the repo root first), else the scratch project's.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const candidates = [
  new URL('../../dist/processors/core/parquet/batch-writer.js', import.meta.url), // <repo>/bench/parquet-writers/
  new URL('../proj/dist/processors/core/parquet/batch-writer.js', import.meta.url), // /tmp/pqbench/bench/
];
export const sluiceWriterUrl = process.env.SLUICE_PARQUET_WRITER
  ? pathToFileURL(process.env.SLUICE_PARQUET_WRITER).href
  : (candidates.find((u) => existsSync(u)) ?? candidates[0]).href;
