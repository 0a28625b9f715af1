import { tableFromIPC, type Data, type Table } from 'apache-arrow';
import * as parquetWasm from 'parquet-wasm';

/**
 * Reads a Parquet file (bytes) into an Arrow table, with the same arrow-rs code the writer
 * uses (parquet-wasm), optionally only some columns. int64 columns come back as BigInt,
 * timestamps as epoch numbers in their unit; `rowGroups` reads only those (memory: one row group). For the lake's readers (demo, reports); tests
 * read with DuckDB instead, an independent implementation.
 */
export function readParquetTable(bytes: Uint8Array, columns?: string[], rowGroups?: number[]): Table {
  const wasmTable = parquetWasm.readParquet(bytes, columns || rowGroups ? { ...(columns ? { columns } : {}), ...(rowGroups ? { rowGroups } : {}) } : undefined);
  return tableFromIPC(wasmTable.intoIPCStream());
}

/**
 * Fast access to one batch's UTF-8 column without decoding every value through
 * TextDecoder: `at(i)` slices the bytes as latin1 (exact for ASCII, such as UUIDs and ids;
 * `text(i)` decodes UTF-8 properly), null when the value is null.
 */
export interface StringColumn {
  length: number;
  isNull(i: number): boolean;
  /** The raw bytes as a latin1 string: a cheap, exact identity key for any value. */
  key(i: number): string;
  text(i: number): string;
}

export function stringColumn(data: Data): StringColumn {
  const values = Buffer.from(data.values.buffer, data.values.byteOffset, data.values.byteLength);
  const offsets = data.valueOffsets as Int32Array;
  const nulls = data.nullCount > 0 ? data.nullBitmap : undefined;
  const base = data.offset;
  return {
    length: data.length,
    isNull: (i) => (nulls ? (nulls[(base + i) >> 3]! & (1 << ((base + i) & 7))) === 0 : false),
    key: (i) => values.toString('latin1', offsets[base + i]!, offsets[base + i + 1]!),
    text: (i) => values.toString('utf8', offsets[base + i]!, offsets[base + i + 1]!),
  };
}

/** One batch's int64 column: the values and a null test. */
export function int64Column(data: Data): { values: BigInt64Array; isNull(i: number): boolean } {
  const values = (data.values as BigInt64Array).subarray(data.offset, data.offset + data.length);
  const nulls = data.nullCount > 0 ? data.nullBitmap : undefined;
  const base = data.offset;
  return { values, isNull: (i) => (nulls ? (nulls[(base + i) >> 3]! & (1 << ((base + i) & 7))) === 0 : false) };
}
