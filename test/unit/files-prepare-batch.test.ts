import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { timestampOfDate } from '../../processors/ingest-api/timestamp.js';
import { FirstCopies } from '../../processors/files/first-copies.js';
import { BatchBuilder, type PreparedBatch } from '../../processors/files/prepare-batch.js';
import type { FileRecord } from '../../processors/files/records.js';

/**
 * A batch of a file's records on the parsing thread: each event_id's first copy is written
 * once as COPY text, a later identical copy is a duplicate, a later copy with other content
 * is a conflicting_duplicate reject that names the first copy's line; with the index of
 * first copies reused from batch to batch (the parsing thread's one FirstCopies).
 */

const options = { baseCurrency: 'USD', context: { receivedAt: timestampOfDate(new Date('2026-11-20T12:00:00Z')), source: 'backend' as const, sessionId: null, correlationId: null } };

let index = 0;
function record(fields: Record<string, unknown>): FileRecord {
  const i = index++;
  return { kind: 'row', index: i, line: i + 2, raw: `raw ${i}`, fields };
}

function row(eventId: string, o: { agent?: string | null; amount?: string } = {}): Record<string, unknown> {
  const agent = o.agent === undefined ? 'agent-1' : o.agent;
  return { event_id: eventId, event_type: 'deposit_made', ...(agent === null ? {} : { agent_id: agent }), customer_id: 'cust-1', amount_minor: o.amount ?? '1500', currency: 'USD', occurred_at: '2026-11-01T10:00:00Z' };
}

const copyLines = (b: PreparedBatch) => Buffer.from(b.named.copyText).toString('utf8').split('\n').filter((l) => l !== '');

describe('BatchBuilder: copies of one event_id in a batch', () => {
  it('writes the first copy once, counts an identical copy as a duplicate row, rejects a different one with the first line', () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const batch = new BatchBuilder(options);
    const first = record(row(a));
    batch.add(first);
    batch.add(record(row(b)));
    batch.add(record(row(a)));
    const conflicting = record(row(a, { amount: '1600' }));
    batch.add(conflicting);
    const out = batch.finish();
    expect(out.read).toBe(4);
    expect(out.named.rows).toBe(3);
    expect(copyLines(out).map((l) => l.split('\t')[0])).toEqual([a, b]);
    expect(out.rejects).toEqual([{ line: conflicting.line, reasons: ['conflicting_duplicate'], message: `event_id ${a} appears earlier in the file (line ${first.line}) with different content`, original: conflicting.raw }]);
  });

  it('tells a copy that names its agent from one that names none (never the same content)', () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const batch = new BatchBuilder(options);
    batch.add(record(row(a)));
    const unnamedAfterNamed = record(row(a, { agent: null }));
    batch.add(unnamedAfterNamed);
    const firstUnnamed = record(row(b, { agent: null }));
    batch.add(firstUnnamed);
    batch.add(record(row(b, { agent: null })));
    const namedAfterUnnamed = record(row(b));
    batch.add(namedAfterUnnamed);
    const out = batch.finish();
    expect(out.rejects.map((r) => [r.line, r.reasons[0]])).toEqual([
      [unnamedAfterNamed.line, 'conflicting_duplicate'],
      [namedAfterUnnamed.line, 'conflicting_duplicate'],
    ]);
    expect(out.rejects[1]!.message).toContain(`(line ${firstUnnamed.line})`);
    expect(out.unnamed.map((e) => e.event.eventId)).toEqual([b, b]);
    expect(copyLines(out)).toHaveLength(1);
  });

  it('finds every first copy among 30,000 rows (the index grows), and forgets them in the next batch that reuses it', () => {
    const ids = Array.from({ length: 30_000 }, () => randomUUID());
    const firstCopies = new FirstCopies();
    const one = new BatchBuilder(options, undefined, firstCopies);
    for (const id of ids) one.add(record(row(id)));
    for (const id of ids) one.add(record(row(id)));
    const changed = ids.filter((_, i) => i % 1000 === 7);
    for (const id of changed) one.add(record(row(id, { amount: '99' })));
    const out = one.finish();
    expect(out.named.rows).toBe(60_000);
    expect(new Set(copyLines(out).map((l) => l.split('\t')[0]))).toEqual(new Set(ids));
    expect(copyLines(out)).toHaveLength(30_000);
    expect(out.rejects.map((r) => r.message.split(' ')[1])).toEqual(changed);

    // The next batch: the same ids again are first copies there (duplicates across batches are the database's to find).
    const two = new BatchBuilder(options, out.named.copyText.buffer as ArrayBuffer, firstCopies);
    for (const id of ids.slice(0, 100)) two.add(record(row(id, { amount: '42' })));
    const next = two.finish();
    expect(next.rejects).toEqual([]);
    expect(copyLines(next)).toHaveLength(100);
  });
});

describe('FirstCopies', () => {
  it('matches an event_id only at the start of its line, followed by a tab', () => {
    const bytes = Buffer.from('abc\tx\nabcd\ty\n');
    const index = new FirstCopies();
    index.add('abc', 0, 5, 2);
    index.add('abcd', 6, 12, 3);
    expect(index.find('abc', bytes)).toBe(0);
    expect(index.find('abcd', bytes)).toBe(1);
    expect(index.find('ab', bytes)).toBe(-1);
    expect(index.sameLine(1, bytes, 'abcd\ty')).toBe(true);
    expect(index.sameLine(1, bytes, 'abcd\tz')).toBe(false);
    expect(index.fileLine(1)).toBe(3);
    index.reset();
    expect(index.find('abc', bytes)).toBe(-1);
  });
});
