import avro from 'avsc';
import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS, deadLetterMessage, readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { defaultSchemasDir, loadContract } from '../../processors/normalizer/contract.js';
import { routeRecords } from '../../processors/normalizer/transform.js';
import { debeziumKey, debeziumValue, stagingRow } from '../support/debezium.js';

const contract = loadContract(defaultSchemasDir(), 'agent-event');
const type = avro.Type.forSchema(contract.schema as avro.Schema, { typeHook: exactLongHook });
const options = { rules: { baseCurrency: 'USD' }, contract, encode: async (v: unknown) => type.toBuffer(v), processor: 'normalizer', now: () => 1_800_000_000_000 };

let offset = 100;
const record = (value: Buffer | null, key: Buffer | null = Buffer.from('{"event_id":"k"}')) => ({
  topic: 'cdc',
  partition: 2,
  message: { key, value, offset: String(offset++), timestamp: '1795382632480', headers: { '__debezium.context.taskId': Buffer.from('0') }, attributes: 0 } as KafkaMessage,
});

describe('routing a chunk of CDC records', () => {
  it('writes valid inserts as Avro keyed by agent_id, dead-letters the rest with the original record, ignores deletes', async () => {
    const good = stagingRow({ agent_id: 'agent-A', amount_minor: 2n ** 53n + 3n });
    const bad = stagingRow({ currency: 'EUR' });
    const badBytes = debeziumValue('c', { after: bad });
    const updated = debeziumValue('u', { before: good, after: { ...good, amount_minor: 1n } });
    const records = [
      record(debeziumValue('c', { after: good }), debeziumKey(good.event_id)),
      record(badBytes, debeziumKey(bad.event_id)),
      record(updated, debeziumKey(good.event_id)),
      record(debeziumValue('d', { before: good }), debeziumKey(good.event_id)),
      record(null),
      record(Buffer.from('garbage')),
      record(debeziumValue('r', { after: stagingRow({ agent_id: 'agent-B', event_type: 'customer_onboarded', amount_minor: null, currency: null }) })),
    ];
    const out = await routeRecords(records, options);

    expect(out.events).toHaveLength(2);
    expect(out.events.map((e) => e.key)).toEqual(['agent-A', 'agent-B']);
    expect(out.events[0]!.timestamp).toBe('1795382632480');
    const decoded = type.fromBuffer(out.events[0]!.value as Buffer) as { id: string; data: Record<string, { amount_minor: bigint }> };
    expect(decoded.id).toBe(good.event_id);
    expect(decoded.data['io.sluice.events.DepositMade']!.amount_minor).toBe(9007199254740995n);

    expect(out.deadLetters.map((d) => readDeadLetterHeaders(d.headers)?.reason)).toEqual(['currency_mismatch', 'immutable_event_mutated', 'unparseable_record']);
    const dl = out.deadLetters[0]!;
    expect(dl.value).toBe(badBytes); // the original bytes, untouched
    expect(dl.key).toEqual(debeziumKey(bad.event_id));
    expect(readDeadLetterHeaders(dl.headers)).toEqual({
      reason: 'currency_mismatch',
      error: 'currency "EUR" is not the deployment\'s base currency USD',
      topic: 'cdc',
      partition: 2,
      offset: records[1]!.message.offset,
      timestamp: '1795382632480',
      failedAt: '1800000000000',
      processor: 'normalizer',
    });
    expect(dl.headers?.['__debezium.context.taskId']).toEqual(Buffer.from('0'));
    expect(out.deadLetters[1]!.value).toBe(updated);

    expect(out.stats).toEqual({
      records: { c: 2, u: 1, d: 1, tombstone: 1, unparseable: 1, r: 1 },
      events: { deposit_made: 1, customer_onboarded: 1 },
      deadLetters: { currency_mismatch: 1, immutable_event_mutated: 1, unparseable_record: 1 },
      ignored: { delete: 1, tombstone: 1 },
      duplicates: {},
      beyondWindow: {},
    });
  });

  it('dead-letters with schema_violation when the contract rejects a mapped event', async () => {
    const out = await routeRecords([record(debeziumValue('c', { after: stagingRow() }))], {
      ...options,
      encode: async () => {
        throw new Error('field tenant has no default');
      },
    });
    expect(out.events).toHaveLength(0);
    expect(readDeadLetterHeaders(out.deadLetters[0]!.headers)).toMatchObject({ reason: 'schema_violation', error: expect.stringContaining('field tenant has no default') });
  });
});

describe('dead-letter headers', () => {
  it('replaces earlier sluice.dlq.* headers (a redriven record tells its latest failure) and cuts long errors', () => {
    const msg = deadLetterMessage(
      { topic: 't', partition: 0, message: { key: null, value: Buffer.from('x'), offset: '5', timestamp: '1', headers: { [DLQ_HEADERS.reason]: 'old', other: 'kept' } } },
      { reason: 'new', error: 'e'.repeat(5000) },
      'p',
      42,
    );
    expect(msg.headers?.[DLQ_HEADERS.reason]).toBe('new');
    expect(msg.headers?.other).toBe('kept');
    expect((msg.headers?.[DLQ_HEADERS.error] as string).length).toBe(2000);
    expect(readDeadLetterHeaders({})).toBeUndefined();
  });
});
