import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parquetMetadata, parquetMetadataAsync, parquetRead, type AsyncBuffer, type ColumnChunk, type DecodedArray, type FileMetaData } from 'hyparquet';
import { compressors as jsCompressors } from 'hyparquet-compressors';
import { ZSTDDecoder } from 'zstddec';
import { download } from '../s3/objects.js';
import { chunkRange, decodeChunk, UnsupportedChunkError, type TypedColumn } from './chunk-decoder.js';

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

/**
 * Compiles and instantiates the zstd decoder now instead of at the first object read: 0.07-0.19 s
 * of a thread's first report on a loaded 2-core machine (BENCHMARKS.md, Reports). A reader
 * thread started ahead of the first report calls it before it says it is ready.
 */
export async function prepareDecompressors(): Promise<void> {
  await decompressors();
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

interface OpenObject {
  file: AsyncBuffer;
  metadata: FileMetaData;
  /** The whole object when it was fetched in one GET. */
  whole: Uint8Array | undefined;
  fetched: () => number;
}

/** The object's footer, and a way to read its bytes: whole (one GET) when small, else by ranged GETs. */
async function openObject(s3: S3Client, bucket: string, o: ReadColumnsOptions): Promise<OpenObject> {
  let bytesFetched = 0;
  const fetched = () => bytesFetched;
  if (o.size <= (o.wholeFileBytes ?? WHOLE_FILE_BYTES)) {
    const bytes = await download(s3, bucket, o.key);
    bytesFetched += bytes.byteLength;
    const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
    return { file: buffer, metadata: parquetMetadata(buffer), whole: new Uint8Array(buffer), fetched };
  }
  const file: AsyncBuffer = {
    byteLength: o.size,
    slice: async (start: number, end?: number) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key, Range: `bytes=${start}-${(end ?? o.size) - 1}` }));
      const bytes = await object.Body!.transformToByteArray();
      bytesFetched += bytes.byteLength;
      return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
    },
  };
  return { file, metadata: await parquetMetadataAsync(file, { initialFetchSize: Math.min(FOOTER_FETCH, o.size) }), whole: undefined, fetched };
}

/** Calls `onRowGroup` with the columns of every row group read (in file order); resolves when the object is read. */
export async function readColumns(
  s3: S3Client,
  bucket: string,
  o: ReadColumnsOptions,
  onRowGroup: (columns: Map<string, DecodedArray>, rows: number) => void,
): Promise<ReadColumnsResult> {
  const { file, metadata, fetched } = await openObject(s3, bucket, o);
  const groups = rowGroupsToRead(metadata, o.prune);
  for (const g of groups) onRowGroup(await readRowGroupWithHyparquet(file, metadata, o, g), g.end - g.start);
  return { rowGroups: metadata.row_groups.length, rowGroupsSkipped: metadata.row_groups.length - groups.length, bytesFetched: fetched() };
}

/**
 * Like readColumns, but each column comes as typed arrays (chunk-decoder.ts): INT64 as a
 * BigInt64Array and a presence bitmap, strings as their distinct values and an Int32Array of
 * indices. The chunks are decoded by chunk-decoder.ts when written in the encodings our
 * writers use, by hyparquet otherwise (then converted). A large object's needed chunks are
 * fetched by parallel ranged GETs (adjacent ones coalesced), the next row group's while
 * this one is decoded.
 */
export async function readTypedColumns(
  s3: S3Client,
  bucket: string,
  o: ReadColumnsOptions,
  onRowGroup: (columns: Map<string, TypedColumn>, rows: number) => void,
): Promise<ReadColumnsResult> {
  const opened = await openObject(s3, bucket, o);
  const { metadata } = opened;
  const groups = rowGroupsToRead(metadata, o.prune);
  const compressors = await decompressors();
  const fetchGroup = (g: { index: number }) => fetchChunks(s3, bucket, o, opened, g.index);
  let next = groups.length > 0 ? fetchGroup(groups[0]!) : undefined;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    const chunks = await next!;
    next = i + 1 < groups.length ? fetchGroup(groups[i + 1]!) : undefined;
    next?.catch(() => undefined); // awaited on the next turn; not an unhandled rejection if this row group throws first
    let columns: Map<string, TypedColumn>;
    try {
      columns = new Map();
      for (const name of o.columns) {
        const c = chunks.get(name);
        if (!c) throw new UnsupportedChunkError(`no chunk of ${name}`);
        columns.set(name, decodeChunk(c.bytes, metadata, c.chunk, name, g.end - g.start, compressors));
      }
    } catch (error) {
      if (!(error instanceof UnsupportedChunkError)) throw new Error(`s3://${bucket}/${o.key}: ${(error as Error).message}`, { cause: error });
      const decoded = await readRowGroupWithHyparquet(opened.file, metadata, o, g);
      columns = new Map([...decoded].map(([name, data]) => [name, typedFromHyparquet(data, name, o.key)]));
    }
    onRowGroup(columns, g.end - g.start);
  }
  return { rowGroups: metadata.row_groups.length, rowGroupsSkipped: metadata.row_groups.length - groups.length, bytesFetched: opened.fetched() };
}

/** Ranges closer than this are fetched as one (a request costs more than the bytes between). */
const COALESCE_GAP = 256 * 1024;

/** The bytes of the needed column chunks of a row group (from the whole object, or by ranged GETs at once). */
async function fetchChunks(s3: S3Client, bucket: string, o: ReadColumnsOptions, opened: OpenObject, index: number): Promise<Map<string, { chunk: ColumnChunk; bytes: Uint8Array }>> {
  const out = new Map<string, { chunk: ColumnChunk; bytes: Uint8Array }>();
  const wanted: { name: string; chunk: ColumnChunk; start: number; end: number }[] = [];
  for (const name of o.columns) {
    const chunk = opened.metadata.row_groups[index]!.columns.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === name);
    if (!chunk || chunk.file_path) continue; // left to the fallback (which reports a missing column)
    let range: { start: number; end: number };
    try {
      range = chunkRange(chunk);
    } catch {
      continue;
    }
    if (range.start < 0 || range.end > o.size) continue;
    wanted.push({ name, chunk, ...range });
  }
  if (opened.whole) {
    for (const w of wanted) out.set(w.name, { chunk: w.chunk, bytes: opened.whole.subarray(w.start, w.end) });
    return out;
  }
  const sorted = [...wanted].sort((a, b) => a.start - b.start);
  const ranges: { start: number; end: number; members: typeof wanted }[] = [];
  for (const w of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && w.start - last.end <= COALESCE_GAP) {
      last.end = Math.max(last.end, w.end);
      last.members.push(w);
    } else ranges.push({ start: w.start, end: w.end, members: [w] });
  }
  await Promise.all(
    ranges.map(async (r) => {
      const bytes = new Uint8Array(await opened.file.slice(r.start, r.end));
      for (const w of r.members) out.set(w.name, { chunk: w.chunk, bytes: bytes.subarray(w.start - r.start, w.end - r.start) });
    }),
  );
  return out;
}

/** hyparquet's decoded column as a TypedColumn (for files our decoder does not read). */
export function typedFromHyparquet(data: DecodedArray, name: string, key: string): TypedColumn {
  if (data instanceof BigInt64Array) return { kind: 'int64', values: data, present: undefined };
  const values = data as unknown as ArrayLike<unknown>;
  const n = values.length;
  let kind: 'int64' | 'string' | undefined;
  for (let i = 0; i < n && kind === undefined; i++) {
    const v = values[i];
    if (typeof v === 'bigint') kind = 'int64';
    else if (typeof v === 'string') kind = 'string';
    else if (v !== null && v !== undefined) throw new Error(`s3://.../${key}: column ${name} holds ${typeof v} values, not int64 or string`);
  }
  if (kind === 'int64' || kind === undefined) {
    const out = new BigInt64Array(n);
    const present = new Uint8Array(n);
    let nulls = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v === 'bigint') {
        out[i] = v;
        present[i] = 1;
      } else if (v === null || v === undefined) nulls++;
      else throw new Error(`s3://.../${key}: column ${name} mixes bigint and ${typeof v}`);
    }
    if (kind === 'int64' || n === 0) return { kind: 'int64', values: out, present: nulls > 0 ? present : undefined };
    // All null: as a string column with no value (agent_id and customer_id are strings; a sum of nothing is nothing either way).
    return { kind: 'string', strings: [], indices: new Int32Array(n).fill(-1) };
  }
  const strings: string[] = [];
  const indices = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') {
      indices[i] = strings.length;
      strings.push(v);
    } else if (v === null || v === undefined) indices[i] = -1;
    else throw new Error(`s3://.../${key}: column ${name} mixes strings and ${typeof v}`);
  }
  return { kind: 'string', strings, indices };
}

/** One row group's columns as hyparquet decodes them. */
async function readRowGroupWithHyparquet(file: AsyncBuffer, metadata: FileMetaData, o: ReadColumnsOptions, g: { start: number; end: number }): Promise<Map<string, DecodedArray>> {
  const compressors = await decompressors();
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
  return columns;
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
