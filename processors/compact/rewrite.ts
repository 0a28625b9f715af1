import { makeVector, type Data, type Table } from 'apache-arrow';
import { PermanentError } from '../core/errors/errors.js';
import { ParquetBatchWriter, type ParquetCompression } from '../core/parquet/batch-writer.js';
import type { LakeColumn, LakeRow, LakeSchema, LakeValue } from '../core/parquet/lake-schema.js';
import { readParquetTable, stringColumn } from '../core/parquet/reader.js';

/**
 * The rows of a group of lake files rewritten into a few sorted files: every event_id once
 * (the first copy in offset order; repeats the export's bounded dedupe let through are
 * copies of the same event), ordered by agent_id (UTF-8 byte order, as Parquet statistics
 * compare) then occurred_at then event_id, cut into `parts` files of equal row counts.
 * Values are copied exactly: int64 and timestamps through their 64-bit buffers, never through
 * a JS number.
 */

export interface RewriteOptions {
  schema: LakeSchema;
  compression: ParquetCompression;
  rowGroupSize: number;
  parts: number;
  metadata: Record<string, string>;
  idColumn?: string;
  agentColumn?: string;
  timeColumn?: string;
}

export interface RewrittenPart {
  body: Uint8Array;
  rows: number;
  /** The event ids it holds (latin1 keys of the UTF-8 bytes). */
  ids: Set<string>;
}

export interface RewriteResult {
  parts: RewrittenPart[];
  inputRows: number;
  duplicates: number;
}

type Getter = (i: number) => LakeValue;

function isNullAt(data: Data, i: number): boolean {
  if (data.nullCount === 0 || !data.nullBitmap) return false;
  const j = data.offset + i;
  return (data.nullBitmap[j >> 3]! & (1 << (j & 7))) === 0;
}

/** Reads one column of one batch with its exact values, typed as the lake column says. */
function getter(column: LakeColumn, data: Data): Getter {
  switch (column.type) {
    case 'string': {
      const s = stringColumn(data);
      return (i) => (s.isNull(i) ? null : s.text(i));
    }
    case 'int64':
    case 'time_us':
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'local_timestamp_us':
    case 'local_timestamp_ms': {
      const v = data.values as unknown as BigInt64Array | Int32Array;
      const big = v instanceof BigInt64Array ? v : new BigInt64Array(v.buffer, v.byteOffset, v.length / 2);
      return (i) => (isNullAt(data, i) ? null : big[data.offset + i]!);
    }
    case 'int32':
    case 'date':
    case 'time_ms':
    case 'float':
    case 'double': {
      const v = data.values as Int32Array | Float32Array | Float64Array;
      return (i) => (isNullAt(data, i) ? null : v[data.offset + i]!);
    }
    case 'boolean':
    case 'bytes':
    {
      // Rare in the lake: read through Arrow's own getter.
      const vector = makeVector(data);
      return (i) => (isNullAt(data, i) ? null : (vector.get(i) as LakeValue));
    }
    default:
      throw new PermanentError(`compaction cannot copy column ${column.name} of type ${String(column.type)}`);
  }
}

interface Batch {
  get: Getter[];
  id: (i: number) => string;
  agent: (i: number) => string;
  time: (i: number) => number;
}

export async function rewrite(inputs: readonly Uint8Array[], o: RewriteOptions): Promise<RewriteResult> {
  const idColumn = o.idColumn ?? 'event_id';
  const agentColumn = o.agentColumn ?? 'agent_id';
  const timeColumn = o.timeColumn ?? 'occurred_at';
  const names = o.schema.columns.map((c) => c.name);
  for (const required of [idColumn, agentColumn, timeColumn]) {
    if (!names.includes(required)) throw new PermanentError(`compaction needs column ${required} in the pipeline's output.s3.columns`);
  }
  const batches: Batch[] = [];
  const seen = new Set<string>();
  const batchOf: number[] = [];
  const rowOf: number[] = [];
  const agentRank = new Map<string, number>();
  let inputRows = 0;
  let duplicates = 0;
  for (const bytes of inputs) {
    const table: Table = readParquetTable(bytes);
    for (const rb of table.batches) {
      const dataOf = (name: string) => {
        const child = rb.getChild(name);
        if (!child) throw new PermanentError(`a lake file has no column ${name}: compaction copies every column of the pipeline's output.s3.columns`);
        return child.data[0]!;
      };
      const ids = stringColumn(dataOf(idColumn));
      const agents = stringColumn(dataOf(agentColumn));
      const timeGet = getter(o.schema.columns.find((c) => c.name === timeColumn)!, dataOf(timeColumn));
      const b: Batch = {
        get: o.schema.columns.map((c) => getter(c, dataOf(c.name))),
        id: (i) => ids.key(i),
        agent: (i) => (agents.isNull(i) ? '' : agents.key(i)),
        time: (i) => Number(timeGet(i) ?? 0),
      };
      const index = batches.push(b) - 1;
      for (let i = 0; i < rb.numRows; i++) {
        inputRows++;
        const id = b.id(i);
        if (seen.has(id)) {
          duplicates++;
          continue;
        }
        seen.add(id);
        batchOf.push(index);
        rowOf.push(i);
        const agent = b.agent(i);
        if (!agentRank.has(agent)) agentRank.set(agent, 0);
      }
    }
  }
  // Agents ranked by their UTF-8 bytes (the latin1 keys compare byte for byte).
  [...agentRank.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).forEach((a, rank) => agentRank.set(a, rank));
  const n = batchOf.length;
  const rank = new Uint32Array(n);
  const time = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const b = batches[batchOf[r]!]!;
    rank[r] = agentRank.get(b.agent(rowOf[r]!))!;
    time[r] = b.time(rowOf[r]!);
  }
  const order = Array.from({ length: n }, (_, r) => r);
  order.sort((x, y) => {
    if (rank[x] !== rank[y]) return rank[x]! - rank[y]!;
    if (time[x] !== time[y]) return time[x]! - time[y]!;
    const a = batches[batchOf[x]!]!.id(rowOf[x]!);
    const b = batches[batchOf[y]!]!.id(rowOf[y]!);
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const parts: RewrittenPart[] = [];
  const count = Math.max(1, Math.min(o.parts, n));
  for (let p = 0; p < count; p++) {
    const from = Math.floor((n * p) / count);
    const to = Math.floor((n * (p + 1)) / count);
    const writer = new ParquetBatchWriter(o.schema, { compression: o.compression, rowGroupSize: o.rowGroupSize, metadata: o.metadata });
    const ids = new Set<string>();
    const row: LakeRow = {};
    for (let k = from; k < to; k++) {
      const r = order[k]!;
      const b = batches[batchOf[r]!]!;
      const i = rowOf[r]!;
      for (let c = 0; c < names.length; c++) row[names[c]!] = b.get[c]!(i);
      writer.append(row);
      ids.add(b.id(i));
    }
    parts.push({ body: await writer.finish(), rows: to - from, ids });
  }
  return { parts, inputRows, duplicates };
}

/** The event ids a written file holds, and its row count, read back from its bytes. */
export function readBackIds(bytes: Uint8Array, idColumn = 'event_id'): { rows: number; ids: Set<string> } {
  const table = readParquetTable(bytes, [idColumn]);
  const ids = new Set<string>();
  let rows = 0;
  for (const rb of table.batches) {
    const col = stringColumn(rb.getChild(idColumn)!.data[0]!);
    for (let i = 0; i < rb.numRows; i++) {
      rows++;
      ids.add(col.key(i));
    }
  }
  return { rows, ids };
}
