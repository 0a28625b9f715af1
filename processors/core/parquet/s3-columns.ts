import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parquetMetadata, parquetMetadataAsync, parquetRead, type AsyncBuffer, type DecodedArray, type FileMetaData } from 'hyparquet';
import { compressors as jsCompressors } from 'hyparquet-compressors';
import { ZSTDDecoder } from 'zstddec';
import { download } from '../s3/objects.js';

/**
 * Reads some columns of a Parquet object on S3, a row group at a time, with hyparquet (a
 * pure-JS reader that exposes the footer's column-chunk offsets and statistics):
 * - a small object (<= wholeFileBytes) is fetched in one GET: one request beats several;
 * - a large one is read by ranges: the footer (last 512 KiB), then per row group only the
 *   needed column chunks, fetched by parallel ranged GETs (hyparquet coalesces adjacent
 *   chunks into one range), so memory stays at a row group's chunks whatever the file size;
 * - row groups whose min/max statistics of `prune.column` hold none of `prune.values` are
 *   skipped without fetching them (compacted files are sorted by agent_id, so each row
 *   group covers a narrow range of agents).
 * The columns come as hyparquet decodes them: strings as JS strings (a dictionary-encoded
 * column gives the same string object for repeats), INT64 as BigInt64Array or an array of
 * bigint | null when nullable.
 */

export interface ReadColumnsOptions {
  key: string;
  size: number;
  columns: readonly string[];
  /** Skip row groups whose statistics of this column exclude every value (UTF-8 byte order). */
  prune?: { column: string; values: readonly Uint8Array[] } | undefined;
  /** Objects up to this size are fetched whole (default 8 MiB). */
  wholeFileBytes?: number;
}

export interface ReadColumnsResult {
  rowGroups: number;
  rowGroupsSkipped: number;
  bytesFetched: number;
}

const WHOLE_FILE_BYTES = 8 * 1024 * 1024;

/** zstd pages (the lake's compression) through the reference C decoder in WebAssembly: ~3x the pure-JS one's speed; the rest as hyparquet-compressors does them. */
const zstd = new ZSTDDecoder();
let compressors: Promise<typeof jsCompressors> | undefined;
function decompressors(): Promise<typeof jsCompressors> {
  compressors ??= zstd.init().then(() => ({ ...jsCompressors, ZSTD: (input: Uint8Array, outputLength: number) => zstd.decode(input, outputLength) }));
  return compressors;
}
const FOOTER_FETCH = 512 * 1024;

function toBytes(v: unknown): Uint8Array | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  return undefined;
}

/** Row groups that may hold one of the values (statistics absent or unreadable: kept). */
export function rowGroupsToRead(metadata: FileMetaData, prune: ReadColumnsOptions['prune']): { index: number; start: number; end: number }[] {
  const out: { index: number; start: number; end: number }[] = [];
  let start = 0;
  metadata.row_groups.forEach((g, index) => {
    const rows = Number(g.num_rows);
    const end = start + rows;
    let keep = true;
    if (prune) {
      const stats = g.columns.find((c) => c.meta_data?.path_in_schema[0] === prune.column)?.meta_data?.statistics;
      const min = toBytes(stats?.min_value ?? stats?.min);
      const max = toBytes(stats?.max_value ?? stats?.max);
      if (min && max) keep = prune.values.some((v) => Buffer.compare(min, v) <= 0 && Buffer.compare(v, max) <= 0);
    }
    if (keep && rows > 0) out.push({ index, start, end });
    start = end;
  });
  return out;
}

/** Calls `onRowGroup` with the columns of every row group read (in file order); resolves when the object is read. */
export async function readColumns(
  s3: S3Client,
  bucket: string,
  o: ReadColumnsOptions,
  onRowGroup: (columns: Map<string, DecodedArray>, rows: number) => void,
): Promise<ReadColumnsResult> {
  let bytesFetched = 0;
  let file: AsyncBuffer;
  let metadata: FileMetaData;
  if (o.size <= (o.wholeFileBytes ?? WHOLE_FILE_BYTES)) {
    const bytes = await download(s3, bucket, o.key);
    bytesFetched += bytes.byteLength;
    const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
    file = buffer;
    metadata = parquetMetadata(buffer);
  } else {
    file = {
      byteLength: o.size,
      slice: async (start: number, end?: number) => {
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key, Range: `bytes=${start}-${(end ?? o.size) - 1}` }));
        const bytes = await object.Body!.transformToByteArray();
        bytesFetched += bytes.byteLength;
        return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
      },
    };
    metadata = await parquetMetadataAsync(file, { initialFetchSize: Math.min(FOOTER_FETCH, o.size) });
  }
  const groups = rowGroupsToRead(metadata, o.prune);
  const compressors = await decompressors();
  for (const g of groups) {
    const chunks = new Map<string, { start: number; data: DecodedArray }[]>();
    await parquetRead({
      file,
      metadata,
      columns: [...o.columns],
      rowStart: g.start,
      rowEnd: g.end,
      compressors,
      onChunk: (c) => {
        const list = chunks.get(c.columnName) ?? [];
        list.push({ start: c.rowStart, data: c.columnData });
        chunks.set(c.columnName, list);
      },
    });
    const columns = new Map<string, DecodedArray>();
    for (const name of o.columns) {
      const list = (chunks.get(name) ?? []).sort((a, b) => a.start - b.start);
      columns.set(name, sliceRows(list, g.start, g.end, name, o.key));
    }
    onRowGroup(columns, g.end - g.start);
  }
  return { rowGroups: metadata.row_groups.length, rowGroupsSkipped: metadata.row_groups.length - groups.length, bytesFetched };
}

/** The rows [start, end) of a column from its decoded chunks (one a page, sorted and disjoint): copied into one array of the rows' size (a typed array stays typed). */
function sliceRows(list: { start: number; data: DecodedArray }[], start: number, end: number, name: string, key: string): DecodedArray {
  if (list.length === 1 && list[0]!.start === start && list[0]!.data.length === end - start) return list[0]!.data;
  const n = end - start;
  const first = list[0]?.data;
  type Typed = { set(a: ArrayLike<unknown>, at: number): void; subarray(s: number, e: number): ArrayLike<unknown> };
  const typed = first !== undefined && ArrayBuffer.isView(first) && list.every((c) => c.data.constructor === first.constructor);
  const out = (typed ? new (first.constructor as new (n: number) => Typed)(n) : new Array<unknown>(n)) as Typed & unknown[];
  let filled = 0;
  for (const c of list) {
    const from = Math.max(start, c.start);
    const to = Math.min(end, c.start + c.data.length);
    if (to <= from) continue;
    if (typed) out.set((c.data as unknown as Typed).subarray(from - c.start, to - c.start), from - start);
    else for (let r = from; r < to; r++) out[r - start] = c.data[r - c.start];
    filled += to - from;
  }
  if (filled !== n) throw new Error(`s3://.../${key}: column ${name} decoded ${filled} rows of ${n} in rows ${start}-${end}`);
  return out as unknown as DecodedArray;
}
