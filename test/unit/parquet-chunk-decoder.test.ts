import { parquetMetadata, parquetReadObjects, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { describe, expect, it } from 'vitest';
import { ParquetBatchWriter, parquetWasm } from '../../processors/core/parquet/batch-writer.js';
import { chunkRange, decodeChunk, UnsupportedChunkError, type TypedColumn } from '../../processors/core/parquet/chunk-decoder.js';
import { typedFromHyparquet } from '../../processors/core/parquet/s3-columns.js';
import type { LakeRow, LakeSchema } from '../../processors/core/parquet/lake-schema.js';

/**
 * The typed chunk decoder against hyparquet on the same files, written by parquet-wasm
 * (arrow-rs, the lake's writer) with the settings that change the page layout: data page v1
 * and v2, several pages per chunk, dictionaries that fall back to PLAIN, no dictionary, the
 * three codecs (arrow-rs writes DELTA_* encodings for v2 pages without a dictionary: those go
 * to the fallback, tested below); values beyond 2^53, negative ones, nulls, all-null pages and chunks.
 */

const schema: LakeSchema = {
  columns: [
    { name: 'event_id', type: 'string', nullable: false },
    { name: 'agent_id', type: 'string', nullable: true },
    { name: 'customer_id', type: 'string', nullable: true },
    { name: 'amount_minor', type: 'int64', nullable: true },
    { name: 'kafka_offset', type: 'int64', nullable: false },
    { name: 'nothing', type: 'int64', nullable: true },
  ],
};
const COLUMNS = schema.columns.map((c) => c.name);

function row(i: number): LakeRow {
  const big = [2n ** 53n + 1n, 2n ** 62n + 3n, -(2n ** 63n), 2n ** 63n - 1n, -5n, 2n ** 32n, 2n ** 32n - 1n];
  return {
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    // Sorted runs of agents, a null run in the middle (all-null pages with small pages), UTF-8 beyond ASCII.
    agent_id: i >= 3000 && i < 4500 ? null : `agent-${Math.floor(i / 97)}-café-日本`,
    customer_id: i % 5 === 0 ? null : `cust-${i % 1711}`,
    amount_minor: i % 7 === 0 ? null : i % 11 === 0 ? big[i % big.length]! : (i * 7919) % 100_000,
    kafka_offset: BigInt(i) * 1_000_003n,
    nothing: null,
  };
}

interface Layout {
  name: string;
  v2?: boolean;
  pageBytes?: number;
  dictionaryBytes?: number;
  dictionary?: boolean;
  codec: 'zstd' | 'snappy' | 'none';
  rowGroup?: number;
}

function write(rows: number, l: Layout): Uint8Array {
  const pw = parquetWasm();
  const writer = new ParquetBatchWriter(schema, { compression: 'none' });
  for (let i = 0; i < rows; i++) writer.append(row(i));
  const table = pw.Table.fromIPCStream(writer.toArrowIPC());
  let props = new pw.WriterPropertiesBuilder()
    .setCompression({ zstd: pw.Compression.ZSTD, snappy: pw.Compression.SNAPPY, none: pw.Compression.UNCOMPRESSED }[l.codec])
    .setMaxRowGroupSize(l.rowGroup ?? 4096)
    .setWriterVersion(l.v2 ? pw.WriterVersion.V2 : pw.WriterVersion.V1);
  if (l.pageBytes) props = props.setDataPageSizeLimit(l.pageBytes).setWriteBatchSize(64);
  if (l.dictionaryBytes) props = props.setDictionaryPageSizeLimit(l.dictionaryBytes);
  if (l.dictionary === false) props = props.setDictionaryEnabled(false);
  return pw.writeParquet(table, props.build());
}

/** Every column of every row group through decodeChunk, as row values (null where null). */
function decodeAll(file: Uint8Array, metadata: FileMetaData): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = Object.fromEntries(COLUMNS.map((c) => [c, []]));
  for (const group of metadata.row_groups) {
    for (const name of COLUMNS) {
      const chunk = group.columns.find((c) => c.meta_data?.path_in_schema[0] === name)!;
      const { start, end } = chunkRange(chunk);
      const column = decodeChunk(file.subarray(start, end), metadata, chunk, name, Number(group.num_rows), compressors);
      out[name]!.push(...values(column));
    }
  }
  return out;
}

function values(c: TypedColumn): unknown[] {
  if (c.kind === 'int64') return [...c.values].map((v, i) => (c.present && c.present[i] === 0 ? null : v));
  return [...c.indices].map((k) => (k < 0 ? null : c.strings[k]));
}

async function reference(file: Uint8Array): Promise<Record<string, unknown[]>> {
  const buffer = file.slice().buffer;
  const rows = (await parquetReadObjects({ file: buffer, compressors })) as Record<string, unknown>[];
  return Object.fromEntries(COLUMNS.map((c) => [c, rows.map((r) => r[c] ?? null)]));
}

function pageTypes(file: Uint8Array, metadata: FileMetaData, name: string): { pages: number; encodings: Set<string> } {
  let pages = 0;
  const encodings = new Set<string>();
  for (const g of metadata.row_groups) {
    const m = g.columns.find((c) => c.meta_data?.path_in_schema[0] === name)!.meta_data!;
    for (const e of m.encodings) encodings.add(e);
    pages += (m.encoding_stats ?? []).reduce((n, s) => n + (s.page_type === 'DATA_PAGE' || s.page_type === 'DATA_PAGE_V2' ? s.count : 0), 0);
  }
  void file;
  return { pages, encodings };
}

const LAYOUTS: Layout[] = [
  { name: 'the lake writer defaults (v1, dictionary, zstd)', codec: 'zstd' },
  { name: 'data page v2', codec: 'zstd', v2: true },
  { name: 'many small pages (v1), dictionary falling back to PLAIN', codec: 'zstd', pageBytes: 512, dictionaryBytes: 2048 },
  { name: 'many small pages (v2), snappy', codec: 'snappy', v2: true, pageBytes: 512 },
  { name: 'no dictionary, uncompressed', codec: 'none', dictionary: false },
  { name: 'no dictionary, small v1 pages', codec: 'zstd', dictionary: false, pageBytes: 1024 },
];

describe('typed chunk decoder vs hyparquet', () => {
  for (const layout of LAYOUTS) {
    it(`decodes the same values: ${layout.name}`, async () => {
      const file = write(10_000, layout);
      const metadata = parquetMetadata(file.slice().buffer);
      expect(metadata.row_groups.length).toBeGreaterThan(1);
      const got = decodeAll(file, metadata);
      const want = await reference(file);
      for (const name of COLUMNS) expect(got[name], name).toEqual(want[name]);
      // The data really is what the case says.
      expect(got.amount_minor!.filter((v) => typeof v === 'bigint' && (v > 2n ** 53n || v < -(2n ** 53n))).length).toBeGreaterThan(100);
      expect(got.nothing!.every((v) => v === null)).toBe(true);
      expect(got.agent_id!.filter((v) => v === null)).toHaveLength(1500);
      if (layout.pageBytes) expect(pageTypes(file, metadata, 'agent_id').pages).toBeGreaterThan(metadata.row_groups.length * 3);
      if (layout.dictionaryBytes) expect([...pageTypes(file, metadata, 'event_id').encodings]).toContain('PLAIN');
      if (layout.dictionary !== false) expect([...pageTypes(file, metadata, 'agent_id').encodings]).toContain('RLE_DICTIONARY');
    });
  }

  it('refuses encodings it does not decode (the reader falls back to hyparquet), and the fallback converts to the same typed values', async () => {
    const pw = parquetWasm();
    const writer = new ParquetBatchWriter(schema, { compression: 'none' });
    for (let i = 0; i < 5000; i++) writer.append(row(i));
    const table = pw.Table.fromIPCStream(writer.toArrowIPC());
    const props = new pw.WriterPropertiesBuilder()
      .setCompression(pw.Compression.ZSTD)
      .setWriterVersion(pw.WriterVersion.V2)
      .setDictionaryEnabled(false)
      .setColumnEncoding('amount_minor', pw.Encoding.DELTA_BINARY_PACKED)
      .setColumnEncoding('agent_id', pw.Encoding.DELTA_BYTE_ARRAY)
      .build();
    const file = pw.writeParquet(table, props);
    const metadata = parquetMetadata(file.slice().buffer);
    const group = metadata.row_groups[0]!;
    for (const name of ['amount_minor', 'agent_id']) {
      const chunk = group.columns.find((c) => c.meta_data?.path_in_schema[0] === name)!;
      const { start, end } = chunkRange(chunk);
      expect(() => decodeChunk(file.subarray(start, end), metadata, chunk, name, Number(group.num_rows), compressors)).toThrow(UnsupportedChunkError);
    }
    const want = await reference(file);
    const rows = (await parquetReadObjects({ file: file.slice().buffer, compressors, columns: ['amount_minor', 'agent_id'] })) as Record<string, unknown>[];
    const amounts = typedFromHyparquet(
      rows.map((r) => r.amount_minor as bigint | null),
      'amount_minor',
      'k',
    );
    const agents = typedFromHyparquet(
      rows.map((r) => r.agent_id as string | null),
      'agent_id',
      'k',
    );
    expect(values(amounts)).toEqual(want.amount_minor);
    expect(values(agents)).toEqual(want.agent_id);
    expect(values(typedFromHyparquet(new BigInt64Array([1n, 2n ** 62n]), 'x', 'k'))).toEqual([1n, 2n ** 62n]);
    expect(() => typedFromHyparquet([1.5, 2], 'x', 'k')).toThrow(/x holds number values/);
  });

  it('rejects a truncated chunk with an error, not wrong values', () => {
    const file = write(2000, { name: 'defaults', codec: 'none', dictionary: false });
    const metadata = parquetMetadata(file.slice().buffer);
    const group = metadata.row_groups[0]!;
    const chunk = group.columns.find((c) => c.meta_data?.path_in_schema[0] === 'kafka_offset')!;
    const { start, end } = chunkRange(chunk);
    expect(() => decodeChunk(file.subarray(start, start + Math.floor((end - start) / 2)), metadata, chunk, 'kafka_offset', Number(group.num_rows), compressors)).toThrow();
    expect(() => decodeChunk(file.subarray(start, end), metadata, chunk, 'kafka_offset', Number(group.num_rows) + 1, compressors)).toThrow(/rows/);
  });
});
