import type { ColumnChunk, Compressors, FileMetaData, SchemaElement } from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { decompressPage } from 'hyparquet/src/datapage.js';
import { readRleBitPackedHybrid } from 'hyparquet/src/encoding.js';
// hyparquet's internal modules (src/*): not its public API, so package.json pins hyparquet's exact version;
// an upgrade must pass test/unit/parquet-chunk-decoder.test.ts, which compares this decoder with hyparquet's own.

/**
 * Decodes one column chunk of a flat Parquet column straight into typed arrays, for the
 * encodings the lake's writers (arrow-rs through parquet-wasm) produce: dictionary pages
 * (PLAIN), data pages v1 and v2 with RLE definition levels and PLAIN or RLE_DICTIONARY
 * values, any codec hyparquet's `decompressPage` knows (zstd, snappy, none).
 *
 * Why: hyparquet turns a nullable column into a JS array of bigint | null (or string | null)
 * plus a JS array of definition levels per page; over a month of the lake that garbage is
 * a quarter of the report's time. Here a nullable INT64 chunk becomes one BigInt64Array (0
 * where null) and a Uint8Array of presence, a string chunk the strings once (a dictionary
 * page's values, or a PLAIN page's) and an Int32Array of indices into them (-1 where null).
 *
 * Anything else (nested columns, other encodings or physical types) throws
 * UnsupportedChunkError before decoding a value: the caller reads that row group with
 * hyparquet instead (files written by other tools).
 */

export class UnsupportedChunkError extends Error {}

export interface Int64Column {
  kind: 'int64';
  /** One value per row, 0 where the row is null. */
  values: BigInt64Array;
  /** 1 where the row has a value; undefined when no row is null. */
  present: Uint8Array | undefined;
}

export interface StringColumn {
  kind: 'string';
  /** The chunk's distinct decoded strings (a dictionary page's) followed by PLAIN pages' values. */
  strings: string[];
  /** Per row, an index into `strings`; -1 where null. */
  indices: Int32Array;
}

export type TypedColumn = Int64Column | StringColumn;

interface Reader {
  view: DataView;
  offset: number;
}

/** The flat column's schema element and its maximum definition level (0 required, 1 optional); unsupported shapes throw. */
export function flatColumn(metadata: FileMetaData, name: string): { element: SchemaElement; maxDefinition: number } {
  const root = metadata.schema[0];
  const children = metadata.schema.slice(1);
  if (!root || children.length !== Number(root.num_children ?? 0) || children.some((e) => e.num_children)) throw new UnsupportedChunkError('not a flat schema');
  const element = children.find((e) => e.name === name);
  if (!element) throw new UnsupportedChunkError(`no column ${name}`);
  if (element.repetition_type === 'REPEATED') throw new UnsupportedChunkError(`${name} is repeated`);
  return { element, maxDefinition: element.repetition_type === 'OPTIONAL' ? 1 : 0 };
}

/** The chunk's byte range in the file: from its dictionary page (if any) through its last data page. */
export function chunkRange(chunk: ColumnChunk): { start: number; end: number } {
  const m = chunk.meta_data;
  if (!m) throw new UnsupportedChunkError('column chunk without metadata');
  const dictionary = m.dictionary_page_offset;
  const start = Number(dictionary !== undefined && dictionary > 0n && dictionary < m.data_page_offset ? dictionary : m.data_page_offset);
  return { start, end: start + Number(m.total_compressed_size) };
}

/**
 * Decodes `rows` rows of a column chunk from its bytes (the whole chunk, as chunkRange
 * gives it). `name` is the column's name at the top of a flat schema.
 */
export function decodeChunk(bytes: Uint8Array, metadata: FileMetaData, chunk: ColumnChunk, name: string, rows: number, compressors: Compressors | undefined): TypedColumn {
  const m = chunk.meta_data!;
  const { element, maxDefinition } = flatColumn(metadata, name);
  const isString = m.type === 'BYTE_ARRAY' && (element.converted_type === 'UTF8' || element.logical_type?.type === 'STRING');
  const isInt64 = m.type === 'INT64' && (element.logical_type === undefined || (element.logical_type.type === 'INTEGER' && element.logical_type.isSigned)) && (element.converted_type === undefined || element.converted_type === 'INT_64');
  if (!isString && !isInt64) throw new UnsupportedChunkError(`${name}: ${m.type} ${element.converted_type ?? ''} not decoded here`);
  const out = isString ? new StringDecoder(rows) : new Int64Decoder(rows, maxDefinition > 0);
  const reader: Reader = { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 };
  let row = 0;
  while (row < rows) {
    if (reader.offset >= bytes.byteLength) throw new Error(`parquet column ${name}: chunk ended after ${row} of ${rows} rows`);
    const header = parquetHeader(reader);
    const compressed = bytes.subarray(reader.offset, reader.offset + header.compressed_page_size);
    reader.offset += header.compressed_page_size;
    if (header.type === 'DICTIONARY_PAGE') {
      const h = header.dictionary_page_header!;
      if (h.encoding !== 'PLAIN' && h.encoding !== 'PLAIN_DICTIONARY') throw new UnsupportedChunkError(`${name}: dictionary encoding ${h.encoding}`);
      out.dictionary(decompressPage(compressed, header.uncompressed_page_size, m.codec, compressors), h.num_values);
    } else if (header.type === 'DATA_PAGE') {
      const h = header.data_page_header!;
      if (maxDefinition > 0 && h.definition_level_encoding !== 'RLE') throw new UnsupportedChunkError(`${name}: definition levels ${h.definition_level_encoding}`);
      checkEncoding(name, h.encoding);
      const page = decompressPage(compressed, header.uncompressed_page_size, m.codec, compressors);
      const r: Reader = { view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: 0 };
      const levels = maxDefinition > 0 ? readLevels(r, h.num_values, undefined) : undefined;
      out.page(page, r.offset, h.encoding, row, h.num_values, levels);
      row += h.num_values;
    } else if (header.type === 'DATA_PAGE_V2') {
      const h = header.data_page_header_v2!;
      checkEncoding(name, h.encoding);
      if (h.repetition_levels_byte_length !== 0) throw new UnsupportedChunkError(`${name}: repetition levels`);
      const levelBytes = h.definition_levels_byte_length;
      const levels = maxDefinition > 0 ? readLevels({ view: new DataView(compressed.buffer, compressed.byteOffset, levelBytes), offset: 0 }, h.num_values, levelBytes) : undefined;
      const values = compressed.subarray(levelBytes);
      const page = h.is_compressed ? decompressPage(values, header.uncompressed_page_size - levelBytes, m.codec, compressors) : values;
      out.page(page, 0, h.encoding, row, h.num_values, levels);
      row += h.num_values;
    } else {
      throw new UnsupportedChunkError(`${name}: page type ${header.type}`);
    }
  }
  if (row !== rows) throw new Error(`parquet column ${name}: pages hold ${row} rows, the row group ${rows}`);
  return out.result();
}

function checkEncoding(name: string, encoding: string): void {
  if (encoding !== 'PLAIN' && encoding !== 'RLE_DICTIONARY' && encoding !== 'PLAIN_DICTIONARY') throw new UnsupportedChunkError(`${name}: encoding ${encoding}`);
}

/** Definition levels (max 1) as a Uint8Array of 0/1; `length` undefined = a 4-byte length prefix (data page v1). */
function readLevels(r: Reader, count: number, length: number | undefined): Uint8Array {
  const levels = new Uint8Array(count);
  readRleBitPackedHybrid(r, 1, levels, length);
  return levels;
}

/** Dictionary indices of an RLE_DICTIONARY page's `count` values (bit width byte, then RLE/bit-packed runs to the page's end). */
function readIndices(page: Uint8Array, offset: number, count: number): Int32Array {
  const indices = new Int32Array(count);
  if (count === 0) return indices;
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const width = view.getUint8(offset);
  if (width === 0) return indices;
  if (width > 32) throw new Error(`parquet dictionary index bit width ${width}`);
  readRleBitPackedHybrid({ view, offset: offset + 1 }, width, indices, page.byteLength - offset - 1);
  return indices;
}

function countPresent(levels: Uint8Array | undefined, count: number): number {
  if (!levels) return count;
  let n = 0;
  for (let i = 0; i < count; i++) n += levels[i]!;
  return n;
}

class Int64Decoder {
  private readonly values: BigInt64Array;
  private readonly words: Int32Array;
  private readonly present: Uint8Array | undefined;
  private nulls = 0;
  private dict: Int32Array | undefined;

  constructor(rows: number, nullable: boolean) {
    this.values = new BigInt64Array(rows);
    this.words = new Int32Array(this.values.buffer);
    this.present = nullable ? new Uint8Array(rows) : undefined;
  }

  dictionary(page: Uint8Array, count: number): void {
    if (page.byteLength < count * 8) throw new Error(`parquet INT64 dictionary page: ${page.byteLength} bytes for ${count} values`);
    const copy = new Int32Array(count * 2);
    new Uint8Array(copy.buffer).set(page.subarray(0, count * 8));
    this.dict = copy;
  }

  page(page: Uint8Array, offset: number, encoding: string, row: number, count: number, levels: Uint8Array | undefined): void {
    const present = countPresent(levels, count);
    if (levels) this.present!.set(levels, row);
    else this.present?.fill(1, row, row + count);
    this.nulls += count - present;
    let dense: Int32Array;
    if (encoding === 'PLAIN') {
      if (page.byteLength - offset < present * 8) throw new Error(`parquet INT64 page: ${page.byteLength - offset} bytes for ${present} values`);
      if (present === count) {
        new Uint8Array(this.values.buffer, row * 8, count * 8).set(page.subarray(offset, offset + count * 8));
        return;
      }
      dense = new Int32Array(present * 2);
      new Uint8Array(dense.buffer).set(page.subarray(offset, offset + present * 8));
    } else {
      if (!this.dict) throw new Error('parquet INT64 dictionary-encoded page without a dictionary page');
      const indices = readIndices(page, offset, present);
      const dict = this.dict;
      const size = dict.length / 2;
      dense = new Int32Array(present * 2);
      for (let i = 0; i < present; i++) {
        const k = indices[i]!;
        if (k >= size || k < 0) throw new Error(`parquet dictionary index ${k} out of ${size}`);
        dense[2 * i] = dict[2 * k]!;
        dense[2 * i + 1] = dict[2 * k + 1]!;
      }
      if (present === count) {
        this.words.set(dense, row * 2);
        return;
      }
    }
    const words = this.words;
    for (let i = 0, j = 0; i < count; i++) {
      if (levels![i] === 0) continue;
      words[2 * (row + i)] = dense[2 * j]!;
      words[2 * (row + i) + 1] = dense[2 * j + 1]!;
      j++;
    }
  }

  result(): Int64Column {
    return { kind: 'int64', values: this.values, present: this.nulls > 0 ? this.present : undefined };
  }
}

class StringDecoder {
  private readonly indices: Int32Array;
  private readonly strings: string[] = [];
  private dictionarySize = -1;

  constructor(rows: number) {
    this.indices = new Int32Array(rows);
  }

  dictionary(page: Uint8Array, count: number): void {
    if (this.dictionarySize >= 0) throw new Error('parquet column chunk with two dictionary pages');
    readByteArrays(page, 0, count, this.strings);
    this.dictionarySize = count;
  }

  page(page: Uint8Array, offset: number, encoding: string, row: number, count: number, levels: Uint8Array | undefined): void {
    const present = countPresent(levels, count);
    let dense: Int32Array;
    if (encoding === 'PLAIN') {
      const first = this.strings.length;
      readByteArrays(page, offset, present, this.strings);
      dense = new Int32Array(present);
      for (let i = 0; i < present; i++) dense[i] = first + i;
    } else {
      if (this.dictionarySize < 0) throw new Error('parquet string dictionary-encoded page without a dictionary page');
      dense = readIndices(page, offset, present);
      for (let i = 0; i < present; i++) if (dense[i]! >= this.dictionarySize || dense[i]! < 0) throw new Error(`parquet dictionary index ${dense[i]} out of ${this.dictionarySize}`);
    }
    if (present === count) {
      this.indices.set(dense, row);
      return;
    }
    const out = this.indices;
    for (let i = 0, j = 0; i < count; i++) out[row + i] = levels![i] === 0 ? -1 : dense[j++]!;
  }

  result(): StringColumn {
    return { kind: 'string', strings: this.strings, indices: this.indices };
  }
}

/** `count` PLAIN byte arrays (4-byte length, bytes) from `offset`, decoded as UTF-8 and appended to `into`. */
function readByteArrays(page: Uint8Array, offset: number, count: number, into: string[]): void {
  const buffer = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (at + 4 > buffer.length) throw new Error(`parquet BYTE_ARRAY page ended after ${i} of ${count} values`);
    const length = buffer.readUInt32LE(at);
    at += 4;
    if (at + length > buffer.length) throw new Error(`parquet BYTE_ARRAY value of ${length} bytes past the page's end`);
    into.push(buffer.toString('utf8', at, at + length));
    at += length;
  }
}
