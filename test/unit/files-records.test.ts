import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../processors/core/config/settings.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { reasonOf } from '../../processors/files/reasons.js';
import { readRecords, type FileRecord } from '../../processors/files/records.js';
import { filesSettings, type FileSource } from '../../processors/files/settings.js';

/** The record reader of `sluice files` on in-memory bytes, cut into awkward chunks. */

const csv: FileSource = { name: 'p', format: 'csv', delimiter: ',', channel: 'backend' };
const jsonl: FileSource = { name: 'p', format: 'jsonl', delimiter: ',', channel: 'backend' };

async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function read(bytes: Uint8Array | string, source: FileSource, chunkSize = 7, maxRecordBytes = 1024 * 1024): Promise<FileRecord[]> {
  const out: FileRecord[] = [];
  for await (const r of readRecords(chunks(typeof bytes === 'string' ? Buffer.from(bytes) : bytes, chunkSize), { source, maxRecordBytes })) out.push(r);
  return out;
}

const HEADER = 'event_id,event_type,customer_id,occurred_at,metadata';

describe('readRecords (CSV)', () => {
  it('reads quoted fields with line breaks and quotes, a BOM, CRLF, and gives each record the line it starts on', async () => {
    const text = `\uFEFF${HEADER}\r\n1,deposit_made,c1,t,"{""a"":""x, y""}"\r\n2,deposit_made,"c\r\n2",t,\r\n\r\n3,deposit_made,c3,t,\r\n`;
    for (const size of [1, 3, 1000]) {
      const records = await read(text, csv, size);
      expect(records.map((r) => [r.kind, r.index, r.line])).toEqual([
        ['row', 0, 2],
        ['row', 1, 3],
        ['row', 2, 6],
      ]);
      const [a, b] = records as Extract<FileRecord, { kind: 'row' }>[];
      expect(a!.fields.event_id).toBe('1');
      expect(JSON.stringify(a!.fields.metadata)).toBe('{"a":"x, y"}');
      expect(b!.fields.customer_id).toBe('c\r\n2');
      expect('metadata' in b!.fields).toBe(false);
    }
  });

  it('is the same gzipped, whatever the chunking', async () => {
    const text = `${HEADER}\n${Array.from({ length: 500 }, (_, i) => `${i},deposit_made,c${i},t,`).join('\n')}\n`;
    const records = await read(gzipSync(text), csv, 13);
    expect(records).toHaveLength(500);
    expect(records[499]).toMatchObject({ kind: 'row', index: 499, line: 501 });
  });

  it('fails the file at once on a header without the required columns, or with unknown ones', async () => {
    await expect(read('id,type\n1,2\n', csv)).rejects.toMatchObject({ reason: 'missing_columns', message: expect.stringContaining('event_id, event_type, customer_id, occurred_at') });
    await expect(read(`${HEADER},colour\n`, csv)).rejects.toMatchObject({ reason: 'unknown_columns', message: expect.stringContaining('colour') });
    await expect(read(`${HEADER},event_id\n`, csv)).rejects.toMatchObject({ reason: 'duplicate_columns' });
  });

  it('rejects a record with the wrong number of fields or a stray quote, and goes on', async () => {
    const records = await read(`${HEADER}\n1,deposit_made,c1,t,,extra\n2,deposit_"made,c2,t,\n3,deposit_made,c3,t,\n`, csv);
    expect(records.map((r) => (r.kind === 'bad' ? r.reason : r.kind))).toEqual(['column_count_mismatch', 'malformed_csv', 'row']);
    expect(records.map((r) => r.index)).toEqual([0, 1, 2]);
  });

  it('fails on bytes that are not UTF-8, a truncated or corrupt gzip, an empty object and a record over the limit', async () => {
    await expect(read(Buffer.concat([Buffer.from(`${HEADER}\n1,deposit_made,caf`), Buffer.from([0xe9]), Buffer.from(',t,\n')]), csv)).rejects.toMatchObject({ reason: 'invalid_encoding' });
    const gz = gzipSync(`${HEADER}\n${'1,deposit_made,c,t,\n'.repeat(1000)}`);
    await expect(read(gz.subarray(0, gz.length - 20), csv)).rejects.toMatchObject({ reason: 'truncated_gzip' });
    const corrupt = Buffer.from(gz);
    corrupt.fill(0x41, 20, 60);
    await expect(read(corrupt, csv)).rejects.toMatchObject({ reason: 'invalid_gzip' });
    await expect(read('', csv)).rejects.toMatchObject({ reason: 'empty_file' });
    await expect(read(`${HEADER}\n1,deposit_made,${'c'.repeat(5000)},t,\n`, csv, 100, 2048)).rejects.toMatchObject({ reason: 'record_too_large', line: 2 });
  });
  it('reads quote-free lines, quoted records, stray quotes, lone CRs and a last line without its break as csv-parse does, whatever the chunking', async () => {
    // Expected values: what the reader gave when every byte went through csv-parse (lone CRs count as line breaks for line numbers).
    const cases: [string, unknown[]][] = [
      [
        `${HEADER}\r\n1,a,\r,t,\r\r\n2,a,c,t,\n3,a,c,t,\r`,
        [
          ['row', 0, 2, '1,a,\r,t,\r', { event_id: '1', event_type: 'a', customer_id: '\r', occurred_at: 't', metadata: '\r' }],
          ['row', 1, 5, '2,a,c,t,', { event_id: '2', event_type: 'a', customer_id: 'c', occurred_at: 't' }],
          ['row', 2, 6, '3,a,c,t,', { event_id: '3', event_type: 'a', customer_id: 'c', occurred_at: 't', metadata: '\r' }],
        ],
      ],
      [
        `${HEADER}\n1,"a\nb",c,t,\n2,a"b,c,t,\n3,"x"y,c,t,\n4,a,c,t,`,
        [
          ['row', 0, 2, '1,"a\nb",c,t,', { event_id: '1', event_type: 'a\nb', customer_id: 'c', occurred_at: 't' }],
          ['malformed_csv', 1, 4, '2,a"'],
          ['malformed_csv', 2, 5, '3,"x"'],
          ['malformed_csv', 3, 6, '3,"x"y,c,t,\n4,a,c,t,'],
        ],
      ],
      [`${HEADER}\n1,"unclosed,c,t,\n2,a,c,t,\n3,a,${'c'.repeat(3000)},t,\n`, [['throws', 'record_too_large', 2]]],
    ];
    for (const [text, expected] of cases) {
      for (const size of [1, 5, 1000]) {
        const out: unknown[] = [];
        try {
          for (const r of await read(text, csv, size, 2048)) out.push(r.kind === 'row' ? [r.kind, r.index, r.line, r.raw, r.fields] : [r.reason, r.index, r.line, r.raw]);
        } catch (e) {
          out.push(['throws', (e as { reason?: string }).reason, (e as { line?: number }).line]);
        }
        expect(out).toEqual(expected);
      }
    }
  });
});

describe('readRecords (JSON lines)', () => {
  it('reads objects, skips blank lines, rejects malformed JSON, non-objects and an oversized line without holding it', async () => {
    const big = JSON.stringify({ event_id: 'x', blob: 'y'.repeat(200_000) });
    const text = `{"event_id":"a","amount_minor":9007199254740993}\n\n[1]\n{oops\n${big}\n{"event_id":"b"}`;
    const records = await read(text, jsonl, 4096, 100_000);
    expect(records.map((r) => [r.kind === 'bad' ? r.reason : r.kind, r.line, r.index])).toEqual([
      ['row', 1, 0],
      ['not_an_object', 3, 1],
      ['malformed_json', 4, 2],
      ['record_too_large', 5, 3],
      ['row', 6, 4],
    ]);
    // Numbers stay exact (lossless), as the ingest API reads them.
    expect(String((records[0] as Extract<FileRecord, { kind: 'row' }>).fields.amount_minor)).toBe('9007199254740993');
    expect(records[3]!.raw.length).toBeLessThanOrEqual(64 * 1024 + 1);
  });
});

describe('files settings and reasons', () => {
  const base = { SLUICE_FILES_SOURCES: 'partner-a:csv,partner-b:jsonl,partner-c:csv:;' };
  it('reads sources from env as name:format[:delimiter], or a JSON list', () => {
    const s = loadSettings(filesSettings, { env: base }).files;
    expect(s.sources).toEqual([
      { name: 'partner-a', format: 'csv', delimiter: ',', channel: 'backend' },
      { name: 'partner-b', format: 'jsonl', delimiter: ',', channel: 'backend' },
      { name: 'partner-c', format: 'csv', delimiter: ';', channel: 'backend' },
    ]);
    expect(s.afterProcessing).toBe('move');
    const json = loadSettings(filesSettings, { env: { SLUICE_FILES_SOURCES: '[{"name":"x","format":"jsonl","channel":"mobile"}]' } }).files;
    expect(json.sources[0]).toMatchObject({ name: 'x', channel: 'mobile' });
  });

  it('names the env var and the fix for a bad or missing source list', () => {
    for (const env of [{}, { SLUICE_FILES_SOURCES: 'a:xml' }, { SLUICE_FILES_SOURCES: 'a:csv,a:jsonl' }, { SLUICE_FILES_SOURCES: 'Bad Name:csv' }]) {
      let error: unknown;
      try {
        loadSettings(filesSettings, { env });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).toContain('SLUICE_FILES_SOURCES');
    }
  });

  it('writes validation errors as docs/domain.md reason codes', () => {
    expect(reasonOf({ code: 'missing_field', field: 'customer_id' })).toBe('missing_field:customer_id');
    expect(reasonOf({ code: 'invalid_amount', field: 'amount_minor' })).toBe('invalid_amount');
    expect(reasonOf({ code: 'invalid_value', field: 'event_id' })).toBe('invalid_value:event_id');
  });
});
