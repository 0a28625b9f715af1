import { tableFromIPC, type Table } from 'apache-arrow';
import * as parquetWasm from 'parquet-wasm';

/**
 * Reads a Parquet file (bytes) into an Arrow table, with the same arrow-rs code the writer
 * uses (parquet-wasm). int64 columns come back as BigInt, timestamps as epoch numbers in
 * their unit. For the lake's readers (demo, reports); tests read with DuckDB instead, an
 * independent implementation.
 */
export function readParquetTable(bytes: Uint8Array): Table {
  const wasmTable = parquetWasm.readParquet(bytes);
  return tableFromIPC(wasmTable.intoIPCStream());
}
