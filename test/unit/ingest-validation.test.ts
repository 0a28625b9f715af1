import { describe, expect, it } from 'vitest';
import { parseJsonBody } from '../../processors/ingest-api/body.js';
import { conflictingDuplicates, validateAssignment, validateEvent, type EventVerdict } from '../../processors/ingest-api/validation.js';
import { parseTimestamp, timestampOfDate } from '../../processors/ingest-api/timestamp.js';

const RECEIVED = new Date('2026-11-01T12:00:00.000Z');
const options = { baseCurrency: 'USD', receivedAtMicros: timestampOfDate(RECEIVED).micros };
const EVENT_ID = '0B4E7F1C-2D9A-4F7E-9C1A-3B5D7E9F1A2C';

/** Validates JSON text the way the API reads it: numbers as their literals. */
function check(json: string, index = 0): EventVerdict {
  return validateEvent(parseJsonBody(json) as Record<string, unknown>, index, options);
}

function deposit(overrides: Record<string, unknown> = {}, raw: Record<string, string> = {}): string {
  const base: Record<string, unknown> = {
    event_id: EVENT_ID,
    event_type: 'deposit_made',
    agent_id: 'agent-1',
    customer_id: 'customer-1',
    amount_minor: 1250,
    currency: 'USD',
    occurred_at: '2026-11-01T10:00:00Z',
    ...overrides,
  };
  for (const [k, v] of Object.entries(base)) if (v === undefined) delete base[k];
  // `raw` splices a literal into the JSON text (numbers JSON.stringify cannot write).
  let text = JSON.stringify(base);
  for (const [field, literal] of Object.entries(raw)) text = text.replace(/}$/, `,"${field}":${literal}}`);
  return text;
}

function errorsOf(verdict: EventVerdict) {
  if (verdict.ok) throw new Error('expected the event to be refused');
  return verdict.errors;
}

function onlyError(verdict: EventVerdict) {
  const errors = errorsOf(verdict);
  expect(errors).toHaveLength(1);
  return errors[0]!;
}

describe('a valid event', () => {
  it('comes out canonical: lower-case id, exact amount, UTC µs timestamp', () => {
    const v = check(deposit({ amount_minor: undefined }, { amount_minor: '9007199254740991' }));
    expect(v).toEqual({
      ok: true,
      event: {
        eventId: EVENT_ID.toLowerCase(),
        eventType: 'deposit_made',
        agentId: 'agent-1',
        customerId: 'customer-1',
        amountMinor: 9007199254740991n,
        currency: 'USD',
        occurredAt: '2026-11-01T10:00:00.000000Z',
        source: null,
        sessionId: null,
        correlationId: null,
        metadata: null,
      },
    });
  });

  it('takes amounts beyond 2^53 as decimal strings, exactly, up to the bigint maximum', () => {
    for (const s of ['9007199254740993', '9223372036854775807']) {
      const v = check(deposit({ amount_minor: s }));
      expect(v.ok && v.event.amountMinor).toBe(BigInt(s));
    }
  });

  it('needs no agent_id (resolved later from the customer) and keeps optional fields', () => {
    const v = check(`{
      "event_id": "${EVENT_ID}", "event_type": "investment_made", "customer_id": "c", "amount_minor": 1, "currency": "USD",
      "occurred_at": "2026-11-01T13:30:00.123456789+01:30", "source": "agent_app", "session_id": "s-1", "correlation_id": "corr-1",
      "metadata": {"product": "fund-a", "nested": {"big": 12345678901234567890}}
    }`);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.event).toMatchObject({ agentId: null, occurredAt: '2026-11-01T12:00:00.123456Z', source: 'agent_app', sessionId: 's-1', correlationId: 'corr-1' });
    // Metadata numbers stay the literal the client sent.
    expect(v.event.metadata).toBe('{"product":"fund-a","nested":{"big":12345678901234567890}}');
  });

  it('customer_onboarded needs no amount or currency', () => {
    const v = check(JSON.stringify({ event_id: EVENT_ID, event_type: 'customer_onboarded', agent_id: 'a', customer_id: 'c', occurred_at: '2026-11-01T10:00:00Z' }));
    expect(v.ok && v.event).toMatchObject({ amountMinor: null, currency: null });
  });

  it('treats null optional fields as absent', () => {
    const v = check(deposit({ agent_id: null, source: null, metadata: null, session_id: null }));
    expect(v.ok && v.event).toMatchObject({ agentId: null, source: null, metadata: null, sessionId: null });
  });
});

describe('field errors', () => {
  it('names every missing required field of a money event, with its index', () => {
    const errors = errorsOf(check('{"event_type":"withdrawal_made"}', 3));
    expect(errors.map((e) => [e.index, e.field, e.code])).toEqual([
      [3, 'event_id', 'missing_field'],
      [3, 'customer_id', 'missing_field'],
      [3, 'amount_minor', 'missing_field'],
      [3, 'currency', 'missing_field'],
      [3, 'occurred_at', 'missing_field'],
    ]);
  });

  it('refuses an unknown event_type and a missing one', () => {
    expect(onlyError(check(deposit({ event_type: 'deposit' })))).toMatchObject({ field: 'event_type', code: 'unknown_event_type' });
    expect(onlyError(check(deposit({ event_type: 7 })))).toMatchObject({ field: 'event_type', code: 'unknown_event_type' });
    expect(onlyError(check(deposit({ event_type: undefined })))).toMatchObject({ field: 'event_type', code: 'missing_field' });
  });

  it('refuses an event_id that is no UUID', () => {
    for (const id of ['42', 'not-a-uuid', '0b4e7f1c2d9a4f7e9c1a3b5d7e9f1a2c', '{0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c}']) {
      expect(onlyError(check(deposit({ event_id: id })))).toMatchObject({ field: 'event_id', code: 'invalid_value' });
    }
    expect(onlyError(check(deposit({ event_id: 5 })))).toMatchObject({ field: 'event_id', code: 'invalid_value' });
  });

  it.each([
    ['zero', '0', /greater than 0/],
    ['negative', '-5', /greater than 0/],
    ['a fraction', '12.5', /not an integer/],
    ['1.00 (units confusion)', '1.00', /not an integer/],
    ['an exponent', '1e3', /not an integer/],
    ['a JSON number beyond 2^53-1', '9007199254740993', /send it as a decimal string, "9007199254740993"/],
    ['a string with a fraction', '"12.50"', /not a decimal integer string/],
    ['a string with spaces', '" 5"', /not a decimal integer string/],
    ['a string beyond 64 bits', '"9223372036854775808"', /does not fit in 64 bits/],
    ['a boolean', 'true', /positive integer/],
    ['an object', '{"value":5}', /positive integer/],
  ])('refuses amount_minor as %s', (_what, literal, message) => {
    const error = onlyError(check(deposit({ amount_minor: undefined }, { amount_minor: literal })));
    expect(error).toMatchObject({ index: 0, field: 'amount_minor', code: 'invalid_amount' });
    expect(error.message).toMatch(message);
  });

  it('refuses another currency than the base one, hinting at case', () => {
    expect(onlyError(check(deposit({ currency: 'EUR' })))).toMatchObject({ field: 'currency', code: 'currency_mismatch' });
    expect(onlyError(check(deposit({ currency: 'usd' }))).message).toMatch(/upper case/);
    const eur = validateEvent(parseJsonBody(deposit({ currency: 'EUR' })) as Record<string, unknown>, 0, { ...options, baseCurrency: 'EUR' });
    expect(eur.ok).toBe(true);
  });

  it('refuses amount and currency on customer_onboarded', () => {
    const errors = errorsOf(check(deposit({ event_type: 'customer_onboarded' })));
    expect(errors.map((e) => [e.field, e.code])).toEqual([
      ['amount_minor', 'not_allowed'],
      ['currency', 'not_allowed'],
    ]);
  });

  it.each([
    ['no time zone', '2026-11-01T10:00:00'],
    ['a date alone', '2026-11-01'],
    ['February 30', '2026-02-30T10:00:00Z'],
    ['hour 24', '2026-11-01T24:00:00Z'],
    ['second 60', '2026-11-01T10:00:60Z'],
    ['a zone beyond 14 h', '2026-11-01T10:00:00+15:00'],
    ['year 0', '0000-01-01T00:00:00Z'],
    ['a space for T', '2026-11-01 10:00:00Z'],
    ['epoch millis as text', '1793527200000'],
  ])('refuses occurred_at with %s', (_what, value) => {
    expect(onlyError(check(deposit({ occurred_at: value })))).toMatchObject({ field: 'occurred_at', code: 'invalid_timestamp' });
  });

  it('refuses occurred_at as a number', () => {
    expect(onlyError(check(deposit({}, {}).replace('"2026-11-01T10:00:00Z"', '1793527200000')))).toMatchObject({ field: 'occurred_at', code: 'invalid_timestamp' });
  });

  it('takes occurred_at up to 24 h after received_at, to the microsecond', () => {
    expect(check(deposit({ occurred_at: '2026-11-02T12:00:00Z' })).ok).toBe(true);
    expect(check(deposit({ occurred_at: '2026-11-02T14:00:00+02:00' })).ok).toBe(true);
    expect(onlyError(check(deposit({ occurred_at: '2026-11-02T12:00:00.000001Z' }))).message).toMatch(/more than 24 h after/);
    // Long ago is not wrong: back-ends replay history.
    expect(check(deposit({ occurred_at: '1999-01-01T00:00:00Z' })).ok).toBe(true);
  });

  it('refuses unknown fields and a client received_at', () => {
    const errors = errorsOf(check(deposit({ amount: 5, received_at: '2026-11-01T10:00:00Z' })));
    expect(errors.map((e) => [e.field, e.code])).toEqual([
      ['amount', 'unknown_field'],
      ['received_at', 'unknown_field'],
    ]);
    expect(errors[1]!.message).toMatch(/set by the server/);
    // A key that is special to JavaScript is just another unknown field.
    expect(onlyError(check(deposit().replace(/}$/, ',"__proto__":{"event_id":"x"}}')))).toMatchObject({ field: '__proto__', code: 'unknown_field' });
  });

  it('refuses a source that is not a known channel', () => {
    expect(check(deposit({ source: 'mobile' })).ok).toBe(true);
    expect(onlyError(check(deposit({ source: 'fax' })))).toMatchObject({ field: 'source', code: 'invalid_value' });
  });

  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['padded', ' agent-1'],
    ['too long', 'a'.repeat(257)],
    ['a NUL', 'a\u0000b'],
    ['a control character', 'a\nb'],
    ['a lone surrogate', 'a\ud800b'],
    ['a number', 5],
  ])('refuses an agent_id that is %s', (_what, value) => {
    expect(onlyError(check(deposit({ agent_id: value })))).toMatchObject({ field: 'agent_id', code: 'invalid_value' });
  });

  it('takes ids up to 256 characters, any Unicode', () => {
    expect(check(deposit({ agent_id: 'a'.repeat(256), customer_id: 'clienté-😀' })).ok).toBe(true);
  });

  it('refuses metadata PostgreSQL could not store or that is not an object', () => {
    for (const metadata of [[1, 2], 'text', 5]) {
      expect(onlyError(check(deposit({ metadata })))).toMatchObject({ field: 'metadata', code: 'invalid_value' });
    }
    expect(onlyError(check(deposit({ metadata: { note: 'a\u0000' } }))).message).toMatch(/metadata.note contains a NUL/);
    expect(onlyError(check(deposit({ metadata: { ['k\u0000']: 1 } }))).message).toMatch(/key that contains a NUL/);
    expect(onlyError(check(deposit({}, { metadata: '{"x":[1e99999]}' }))).message).toMatch(/out of range/);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(onlyError(check(deposit({ metadata: deep }))).message).toMatch(/deeper than 32/);
  });

  it('checks metadata.product of an investment', () => {
    const investment = (product: unknown) => check(deposit({ event_type: 'investment_made', metadata: { product } }));
    expect(investment('fund-a').ok).toBe(true);
    expect(onlyError(investment(''))).toMatchObject({ field: 'metadata', code: 'invalid_value' });
    expect(onlyError(investment(5))).toMatchObject({ field: 'metadata' });
  });

  it('reports every problem of an event, not just the first', () => {
    const errors = errorsOf(check(deposit({ event_id: 'x', amount_minor: 0, currency: 'EUR', occurred_at: 'yesterday', source: 'fax', extra: 1 })));
    expect(errors.map((e) => e.field).sort()).toEqual(['amount_minor', 'currency', 'event_id', 'extra', 'occurred_at', 'source']);
  });
});

describe('duplicates within a batch', () => {
  it('flags a repeated event_id only when the content differs', () => {
    expect(
      conflictingDuplicates([
        { index: 0, eventId: 'a', fingerprint: 'x' },
        { index: 1, eventId: 'a', fingerprint: 'x' },
        { index: 2, eventId: 'b', fingerprint: 'y' },
        { index: 3, eventId: 'a', fingerprint: 'z' },
      ]),
    ).toEqual([{ index: 3, field: 'event_id', code: 'conflicting_duplicate', message: expect.stringContaining('event 0 of this batch') }]);
  });
});

describe('customer assignment', () => {
  it('takes {"agent_id"} and checks both ids', () => {
    expect(validateAssignment('c-1', { agent_id: 'a-1' })).toEqual({ ok: true, customerId: 'c-1', agentId: 'a-1' });
    const refused = validateAssignment(' c', { agent_id: '', customer_id: 'c' });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.errors.map((e) => [e.field, e.code])).toEqual([
      ['customer_id', 'unknown_field'],
      ['customer_id', 'invalid_value'],
      ['agent_id', 'invalid_value'],
    ]);
    expect(validateAssignment('c', {})).toMatchObject({ ok: false, errors: [{ field: 'agent_id', code: 'missing_field' }] });
  });
});

describe('timestamps', () => {
  it('reads zones and fractions exactly, to the microsecond', () => {
    expect(parseTimestamp('2026-11-01T10:00:00Z')?.iso).toBe('2026-11-01T10:00:00.000000Z');
    expect(parseTimestamp('2026-11-01T10:00Z')?.iso).toBe('2026-11-01T10:00:00.000000Z');
    expect(parseTimestamp('2026-11-01t10:00:00.5z')?.iso).toBe('2026-11-01T10:00:00.500000Z');
    expect(parseTimestamp('2026-11-01T00:30:00.1234567-05:30')?.iso).toBe('2026-11-01T06:00:00.123456Z');
    expect(parseTimestamp('2024-02-29T00:00:00+14:00')?.iso).toBe('2024-02-28T10:00:00.000000Z');
    expect(parseTimestamp('1969-12-31T23:59:59.999999Z')).toEqual({ micros: -1n, iso: '1969-12-31T23:59:59.999999Z' });
    expect(parseTimestamp('0001-01-01T00:00:00Z')?.iso).toBe('0001-01-01T00:00:00.000000Z');
  });

  it('refuses what PostgreSQL could not store', () => {
    expect(parseTimestamp('0001-01-01T00:00:00+01:00')).toBeUndefined();
    expect(parseTimestamp('2023-02-29T00:00:00Z')).toBeUndefined();
    expect(parseTimestamp('2026-11-01T10:00:00+05:60')).toBeUndefined();
  });

  it('stamps the server time with millisecond precision', () => {
    expect(timestampOfDate(RECEIVED)).toEqual({ micros: 1793534400000000n, iso: '2026-11-01T12:00:00.000000Z' });
  });
});
