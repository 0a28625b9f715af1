import { statSync } from 'node:fs';
import { join } from 'node:path';
import { makeVector, type Data } from 'apache-arrow';
import { parquetMetadata } from 'hyparquet';
import { PermanentError } from '../core/errors/errors.js';
import type { ParquetCompression } from '../core/parquet/batch-writer.js';
import type { LakeColumn, LakeRow, LakeSchema, LakeValue } from '../core/parquet/lake-schema.js';
import { readParquetTable, stringColumn } from '../core/parquet/reader.js';
import { writeParquetFile } from '../core/parquet/stream-writer.js';
import { ExternalSorter, kindOf, type SortedRow } from './external-sort.js';
import { bucketCount, IdBuckets } from './id-check.js';

/**
 * The rows of a group of lake files rewritten into a few sorted files on local disk: every
 * event_id once (the first copy in input order, which is offset order; repeats the export's
 * bounded dedupe let through are copies of the same event), ordered by agent_id (UTF-8 byte
 * order, as Parquet statistics compare) then occurred_at then event_id, cut into `parts` files
 * of ceil(input rows / parts) rows (copies are only known once merged, so the last is smaller). Values are copied exactly: int64 and timestamps through their 64-bit
 * buffers, never through a JS number.
 *
 * Memory is bounded by `memoryBytes`, not by the rows: inputs are read a row group at a time
 * into an external sort (external-sort.ts) that spills sorted runs to `dir`, and the outputs
 * are written by a streaming Parquet writer. The ids written go to hash buckets on disk for the
 * read-back check (id-check.ts). The caller owns `dir` (and removes it).
 */

export interface RewriteOptions {
  schema: LakeSchema;
  compression: ParquetCompression;
  rowGroupSize: number;
  parts: number;
  metadata: Record<string, string>;
  /** A local directory for sorted runs, id buckets and the output files. */
  dir: string;
  /** Bytes of rows the sort holds in memory (also one id bucket's budget in the check). */
  memoryBytes: number;
  idColumn?: string;
  agentColumn?: string;
  timeColumn?: string;
}

export interface RewrittenPart {
  /** The output file on local disk. */
  path: string;
  rows: number;
  bytes: number;
}

export interface RewriteResult {
  parts: RewrittenPart[];
  inputRows: number;
  duplicates: number;
  /** The event ids written, in hash buckets (closed), for compareIds against the read-back. */
  written: IdBuckets;
  /** Sorted runs the sort used (1: it fitted in memory) and the bytes it spilled to disk. */
  runs: number;
  spilledBytes: number;
}

type Getter = (i: number) => LakeValue;

function isNullAt(data: Data, i: number): boolean {
  if (data.nullCount === 0 || !data.nullBitmap) return false;
  const j = data.offset + i;
  return (data.nullBitmap[j >> 3]! & (1 << (j & 7))) === 0;
}

/** Reads one column of one batch with its exact values, by the column's kind (external-sort.ts's table). */
function getter(column: LakeColumn, data: Data): Getter {
  switch (kindOf(column)) {
    case 'string': {
      const s = stringColumn(data);
      return (i) => (s.isNull(i) ? null : s.text(i));
    }
    case 'i64': {
      const v = data.values as unknown as BigInt64Array | Int32Array;
      const big = v instanceof BigInt64Array ? v : new BigInt64Array(v.buffer, v.byteOffset, v.length / 2);
      return (i) => (isNullAt(data, i) ? null : big[data.offset + i]!);
    }
    case 'i32':
    case 'f32':
    case 'f64': {
      const v = data.values as Int32Array | Float32Array | Float64Array;
      return (i) => (isNullAt(data, i) ? null : v[data.offset + i]!);
    }
    case 'bool':
    case 'bytes': {
      // Rare in the lake: read through Arrow's own getter.
      const vector = makeVector(data);
      return (i) => (isNullAt(data, i) ? null : (vector.get(i) as LakeValue));
    }
  }
}

/** Adds every row of a Parquet file to the sort, a row group at a time. */
function addFile(sorter: ExternalSorter, bytes: Uint8Array, columns: readonly LakeColumn[]): number {
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
  const groups = parquetMetadata(buffer).row_groups.length;
  const values = new Array<LakeValue>(columns.length);
  let rows = 0;
  for (let g = 0; g < groups; g++) {
    const table = readParquetTable(bytes, undefined, [g]);
    for (const rb of table.batches) {
      const get = columns.map((c) => {
        const child = rb.getChild(c.name);
        if (!child) throw new PermanentError(`a lake file has no column ${c.name}: compaction copies every column of the pipeline's output.s3.columns`);
        return getter(c, child.data[0]!);
      });
      for (let i = 0; i < rb.numRows; i++) {
        for (let c = 0; c < get.length; c++) values[c] = get[c]!(i);
        sorter.add(values);
        rows++;
      }
    }
  }
  return rows;
}

export async function rewrite(inputs: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, o: RewriteOptions): Promise<RewriteResult> {
  const columns = o.schema.columns;
  const names = columns.map((c) => c.name);
  const index = (name: string) => {
    const i = names.indexOf(name);
    if (i < 0) throw new PermanentError(`compaction needs column ${name} in the pipeline's output.s3.columns`);
    return i;
  };
  const keys = { id: index(o.idColumn ?? 'event_id'), agent: index(o.agentColumn ?? 'agent_id'), time: index(o.timeColumn ?? 'occurred_at') };
  const sorter = new ExternalSorter({ dir: o.dir, columns, keys, memoryBytes: o.memoryBytes });
  let inputRows = 0;
  for await (const bytes of inputs) inputRows += addFile(sorter, bytes, columns);

  const written = new IdBuckets(o.dir, 'written', bucketCount(inputRows, o.memoryBytes));
  const stats = { dropped: 0 };
  const merged = sorter.merged(stats);
  // One row of lookahead, so that a part is only started when a row is left for it; the merge
  // reuses its value arrays, so it advances only when the writer asks for the next row.
  let ahead: IteratorResult<SortedRow> = merged.next();
  let consumed = false;
  const peek = () => {
    if (consumed) {
      ahead = merged.next();
      consumed = false;
    }
    return ahead;
  };
  const row: LakeRow = {};
  const rows: Iterator<LakeRow> = {
    next: () => {
      const r = peek();
      if (r.done) return { done: true, value: undefined };
      consumed = true;
      for (let c = 0; c < names.length; c++) row[names[c]!] = r.value.values[c];
      written.add(r.value.id);
      return { done: false, value: row };
    },
  };
  const count = Math.max(1, Math.min(o.parts, inputRows));
  const perPart = Math.ceil(inputRows / count);
  const parts: RewrittenPart[] = [];
  try {
    for (let p = 0; p < count && !peek().done; p++) {
      const path = join(o.dir, `part-${p}.parquet`);
      const last = p === count - 1;
      const { rows: n } = await writeParquetFile(path, o.schema, rows, {
        compression: o.compression,
        rowGroupSize: o.rowGroupSize,
        metadata: o.metadata,
        ...(last ? {} : { maxRows: perPart }),
      });
      parts.push({ path, rows: n, bytes: statSync(path).size });
    }
  } finally {
    written.close();
    void merged.return?.(undefined);
  }
  return { parts, inputRows, duplicates: stats.dropped, written, runs: sorter.runCount, spilledBytes: sorter.spilledBytes };
}
