import { describe, expect, it } from 'vitest';
import { parseCdcRecord, type CdcRow } from '../../processors/normalizer/cdc.js';
import { decide, MAX_OCCURRED_AFTER_RECEIVED_MICROS, validateRow, type Decision } from '../../processors/normalizer/rules.js';
import { debeziumValue, stagingRow, type StagingRow } from '../support/debezium.js';

const rules = { baseCurrency: 'USD' };
/** A row through the same bytes Debezium writes, then the rules. */
const decideRow = (op: 'c' | 'r' | 'u' | 'd', after: Partial<StagingRow> | null, before: StagingRow | null = null): Decision =>
  decide(parseCdcRecord(debeziumValue(op, { before, after: after === null ? null : stagingRow(after) })), rules);
const reasonOf = (overrides: Partial<StagingRow>) => {
  const d = decideRow('c', overrides);
  return d.action === 'dead-letter' ? d.reason : d.action;
};

describe('docs/domain.md rules for an INSERT', () => {
  it.each([
    ['customer_onboarded', { amount_minor: null, currency: null }],
    ['deposit_made', {}],
    ['withdrawal_made', {}],
    ['investment_made', { metadata: '{"product": "bonds"}' }],
  ] as const)('accepts a valid %s', (type, extra) => {
    const d = decideRow('c', { event_type: type, ...extra });
    expect(d.action).toBe('event');
  });

  it('treats a snapshot read (op r) like an insert', () => {
    expect(decideRow('r', {}).action).toBe('event');
    expect(decideRow('r', { currency: 'EUR' })).toMatchObject({ action: 'dead-letter', reason: 'currency_mismatch' });
  });

  it('keeps amounts above 2^53 exact', () => {
    const d = decideRow('c', { amount_minor: 2n ** 63n - 1n });
    expect(d.action === 'event' && d.event.amountMinor).toBe(9223372036854775807n);
    const e = decideRow('c', { amount_minor: 2n ** 53n + 1n });
    expect(e.action === 'event' && e.event.amountMinor).toBe(9007199254740993n);
  });

  it.each([
    ['unknown_event_type', { event_type: 'loan_granted' }],
    ['unknown_event_type', { event_type: 'Deposit_Made' }],
    ['missing_field:event_type', { event_type: null }],
    ['missing_field:agent_id', { agent_id: null }],
    ['missing_field:agent_id', { agent_id: '   ' }],
    ['missing_field:customer_id', { customer_id: null }],
    ['missing_field:customer_id', { event_type: 'customer_onboarded', customer_id: null, amount_minor: null, currency: null }],
    ['missing_field:customer_id', { event_type: 'investment_made', customer_id: '' }],
    ['missing_field:amount_minor', { amount_minor: null }],
    ['missing_field:amount_minor', { event_type: 'withdrawal_made', amount_minor: null }],
    ['missing_field:currency', { currency: null }],
    ['missing_field:currency', { event_type: 'investment_made', currency: null }],
    ['missing_field:occurred_at', { occurred_at: null }],
    ['missing_field:received_at', { received_at: null }],
    ['invalid_amount', { amount_minor: 0n }],
    ['invalid_amount', { amount_minor: -100n }],
    ['invalid_amount', { event_type: 'withdrawal_made', amount_minor: -(2n ** 63n) }],
    ['invalid_amount', { amount_minor: 2n ** 63n }],
    ['currency_mismatch', { currency: 'EUR' }],
    ['currency_mismatch', { currency: 'usd' }],
    ['currency_mismatch', { event_type: 'investment_made', currency: 'GBP' }],
    ['invalid_timestamp', { occurred_at: '2026-11-03T10:00:00Z', received_at: '2026-11-01T10:00:00Z' }],
    ['invalid_timestamp', { occurred_at: 'not a time' }],
    ['invalid_timestamp', { received_at: '2026-02-30T00:00:00Z' }],
  ] as const)('dead-letters with %s (case %#)', (reason, overrides) => {
    expect(reasonOf(overrides as Partial<StagingRow>)).toBe(reason);
  });

  it('does not require money fields of customer_onboarded, and ignores them when present', () => {
    expect(reasonOf({ event_type: 'customer_onboarded', amount_minor: null, currency: null })).toBe('event');
    const d = decideRow('c', { event_type: 'customer_onboarded', amount_minor: -5n, currency: 'EUR' });
    expect(d.action === 'event' && d.event).toMatchObject({ amountMinor: null, currency: null });
  });

  it('uses the configured base currency', () => {
    const row = parseCdcRecord(debeziumValue('c', { after: stagingRow({ currency: 'EUR' }) }));
    expect(decide(row, { baseCurrency: 'EUR' }).action).toBe('event');
    expect(decide(row, { baseCurrency: 'USD' })).toMatchObject({ reason: 'currency_mismatch', error: expect.stringContaining('base currency USD') });
  });

  it('reports the first problem in column order', () => {
    expect(reasonOf({ event_type: 'nope', agent_id: null })).toBe('unknown_event_type');
    expect(reasonOf({ customer_id: null, amount_minor: 0n })).toBe('missing_field:customer_id');
    expect(reasonOf({ amount_minor: 0n, currency: 'EUR' })).toBe('invalid_amount');
    expect(reasonOf({ currency: 'EUR', occurred_at: '2030-01-01T00:00:00Z' })).toBe('currency_mismatch');
  });

  it('says what is wrong in the error text', () => {
    expect(decideRow('c', { amount_minor: -7n })).toMatchObject({ error: 'amount_minor -7 must be greater than 0' });
    expect(decideRow('c', { event_type: 'x' })).toMatchObject({ error: expect.stringContaining('"x" is not one of customer_onboarded') });
  });
});

describe('the 24 h rule (occurred_at more than 24 h after received_at)', () => {
  const received = '2026-11-01T10:00:00.000000Z';
  it('accepts exactly 24 h', () => {
    expect(reasonOf({ received_at: received, occurred_at: '2026-11-02T10:00:00.000000Z' })).toBe('event');
  });
  it('rejects 24 h and one microsecond', () => {
    expect(reasonOf({ received_at: received, occurred_at: '2026-11-02T10:00:00.000001Z' })).toBe('invalid_timestamp');
  });
  it('compares instants, not wall clocks', () => {
    expect(reasonOf({ received_at: received, occurred_at: '2026-11-02T12:00:00.000000+02:00' })).toBe('event');
    expect(reasonOf({ received_at: received, occurred_at: '2026-11-02T12:00:00.000001+02:00' })).toBe('invalid_timestamp');
  });
  it('accepts events that occurred long before they were received', () => {
    expect(reasonOf({ received_at: received, occurred_at: '2020-01-01T00:00:00Z' })).toBe('event');
  });
  it('is 24 h in microseconds', () => {
    expect(MAX_OCCURRED_AFTER_RECEIVED_MICROS).toBe(86_400_000_000);
  });
});

describe('updates, deletes and the rest', () => {
  it('dead-letters an UPDATE with immutable_event_mutated, naming the changed columns', () => {
    const before = stagingRow();
    const d = decide(parseCdcRecord(debeziumValue('u', { before, after: { ...before, amount_minor: 999n, currency: 'EUR' } })), rules);
    expect(d).toMatchObject({ action: 'dead-letter', reason: 'immutable_event_mutated' });
    expect(d.action === 'dead-letter' && d.error).toContain(`event ${before.event_id} was updated (changed: amount_minor, currency)`);
  });

  it('dead-letters an UPDATE even when the new row is itself valid or has no before image', () => {
    const row = stagingRow();
    expect(decide(parseCdcRecord(debeziumValue('u', { before: row, after: row })), rules)).toMatchObject({ reason: 'immutable_event_mutated' });
    expect(decide(parseCdcRecord(debeziumValue('u', { before: null, after: row })), rules)).toMatchObject({
      reason: 'immutable_event_mutated',
      error: expect.stringContaining('REPLICA IDENTITY FULL'),
    });
  });

  it('ignores DELETE, tombstones, heartbeats, truncates and messages', () => {
    expect(decide(parseCdcRecord(debeziumValue('d', { before: stagingRow() })), rules)).toEqual({ action: 'ignore', kind: 'delete' });
    expect(decide(parseCdcRecord(null), rules)).toEqual({ action: 'ignore', kind: 'tombstone' });
    expect(decide(parseCdcRecord(Buffer.from('{"ts_ms":1}')), rules)).toEqual({ action: 'ignore', kind: 'heartbeat' });
    expect(decide(parseCdcRecord(Buffer.from('{"op":"t","before":null,"after":null}')), rules)).toEqual({ action: 'ignore', kind: 'truncate' });
    expect(decide(parseCdcRecord(Buffer.from('{"op":"m"}')), rules)).toEqual({ action: 'ignore', kind: 'message' });
  });

  it('dead-letters what is not a change event with unparseable_record', () => {
    expect(decide(parseCdcRecord(Buffer.from('\u0000\u0001garbage')), rules)).toMatchObject({ action: 'dead-letter', reason: 'unparseable_record' });
  });
});

describe('validateRow', () => {
  it('maps every column of a valid row', () => {
    const row: CdcRow = {
      event_id: 'e-1',
      event_type: 'investment_made',
      agent_id: 'a',
      customer_id: 'c',
      amount_minor: 2n ** 53n + 3n,
      currency: 'USD',
      occurred_at: '2026-11-01T10:00:00.000001Z',
      received_at: '2026-11-01T10:00:02Z',
      source: 'agent_app',
      session_id: 's',
      correlation_id: 'k',
      metadata: '{"product": "gold", "n": 12345678901234567890}',
    };
    expect(validateRow(row, rules)).toEqual({
      ok: true,
      event: {
        eventId: 'e-1',
        eventType: 'investment_made',
        agentId: 'a',
        customerId: 'c',
        amountMinor: 9007199254740995n,
        currency: 'USD',
        occurredAtMicros: Date.UTC(2026, 10, 1, 10) * 1000 + 1,
        receivedAtMicros: Date.UTC(2026, 10, 1, 10, 0, 2) * 1000,
        source: 'agent_app',
        sessionId: 's',
        correlationId: 'k',
        metadata: '{"product": "gold", "n": 12345678901234567890}',
      },
    });
  });

  it('accepts an amount sent as a digit string (decimal.handling.mode=string)', () => {
    const v = validateRow({ ...stagingRow(), amount_minor: '9007199254740995' }, rules);
    expect(v.ok && v.event.amountMinor).toBe(9007199254740995n);
    expect(validateRow({ ...stagingRow(), amount_minor: 10.5 }, rules)).toMatchObject({ ok: false, reason: 'invalid_amount' });
  });

  it('requires event_id', () => {
    expect(validateRow({ ...stagingRow(), event_id: null }, rules)).toMatchObject({ ok: false, reason: 'missing_field:event_id' });
  });
});
