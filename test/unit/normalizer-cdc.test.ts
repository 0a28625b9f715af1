import { describe, expect, it } from 'vitest';
import { isoToMicros, parseCdcRecord } from '../../processors/normalizer/cdc.js';
import { debeziumValue, stagingRow } from '../support/debezium.js';

describe('Debezium change events', () => {
  it('parses an insert with the exact amount above 2^53', () => {
    const row = stagingRow({ amount_minor: 2n ** 53n + 3n });
    const parsed = parseCdcRecord(debeziumValue('c', { after: row }));
    expect(parsed).toMatchObject({ kind: 'change', op: 'c', before: null });
    expect(parsed.kind === 'change' && parsed.after?.amount_minor).toBe(9007199254740995n);
  });

  it('parses the raw connector bytes, where JSON.parse would round the amount', () => {
    const text = '{"before":null,"after":{"event_id":"e","amount_minor":9007199254740995},"source":{},"op":"c","ts_ms":1}';
    expect((JSON.parse(text) as { after: { amount_minor: number } }).after.amount_minor).toBe(9007199254740996);
    const parsed = parseCdcRecord(Buffer.from(text));
    expect(parsed.kind === 'change' && parsed.after?.amount_minor).toBe(9007199254740995n);
  });

  it.each([
    ['12345', 12345n],
    ['9007199254740991', 2n ** 53n - 1n],
    ['9007199254740992', 2n ** 53n],
    ['9007199254740993', 2n ** 53n + 1n],
    ['-9007199254740993', -(2n ** 53n + 1n)],
    ['9223372036854775807', 2n ** 63n - 1n],
    ['99999999999999999999', 99999999999999999999n],
  ])('reads amount_minor %s exactly, in the after and the before image', (digits, exact) => {
    for (const image of ['after', 'before'] as const) {
      const text = `{"before":null,"after":null,"op":"${image === 'after' ? 'c' : 'd'}","ts_ms":1}`.replace(`"${image}":null`, `"${image}":{"event_id":"e","amount_minor":${digits}}`);
      const parsed = parseCdcRecord(Buffer.from(text));
      expect(parsed.kind).toBe('change');
      const amount = parsed.kind === 'change' ? parsed[image]?.amount_minor : undefined;
      expect(BigInt(amount as bigint | number)).toBe(exact);
      // A number only where it is exact.
      if (typeof amount === 'number') expect(Number.isSafeInteger(amount)).toBe(true);
    }
  });

  it('tells snapshot reads, updates and deletes apart', () => {
    const row = stagingRow();
    expect(parseCdcRecord(debeziumValue('r', { after: row }))).toMatchObject({ kind: 'change', op: 'r' });
    expect(parseCdcRecord(debeziumValue('u', { before: row, after: { ...row, amount_minor: 1n } }))).toMatchObject({ kind: 'change', op: 'u' });
    expect(parseCdcRecord(debeziumValue('d', { before: row }))).toMatchObject({ kind: 'change', op: 'd', after: null });
  });

  it('recognises tombstones, heartbeats, truncates and messages', () => {
    expect(parseCdcRecord(null)).toEqual({ kind: 'tombstone' });
    expect(parseCdcRecord(Buffer.from('{"ts_ms":1795382631908}'))).toEqual({ kind: 'heartbeat' });
    expect(parseCdcRecord(Buffer.from('{"before":null,"after":null,"source":{},"op":"t","ts_ms":1}'))).toEqual({ kind: 'truncate' });
    expect(parseCdcRecord(Buffer.from('{"op":"m","ts_ms":1,"message":{}}'))).toEqual({ kind: 'message' });
  });

  it('unwraps the schema-enabled envelope', () => {
    const row = stagingRow();
    const inner = JSON.parse(debeziumValue('c', { after: { ...row, amount_minor: 5n } }).toString()) as unknown;
    expect(parseCdcRecord(Buffer.from(JSON.stringify({ schema: {}, payload: inner })))).toMatchObject({ kind: 'change', op: 'c' });
  });

  it.each([
    ['not JSON', 'not json {', /not JSON/],
    ['a JSON array', '[1,2]', /not a JSON object/],
    ['a JSON string', '"c"', /not a JSON object/],
    ['no op', '{"after":{}}', /no `op`/],
    ['an unknown op', '{"op":"x","after":{}}', /unknown op "x"/],
    ['an insert without after', '{"op":"c","before":null,"after":null}', /without an `after`/],
    ['an after that is not an object', '{"op":"c","after":[1]}', /`after` is not an object/],
  ])('calls %s unparseable', (_what, text, message) => {
    const parsed = parseCdcRecord(Buffer.from(text));
    expect(parsed.kind).toBe('unparseable');
    expect(parsed.kind === 'unparseable' && parsed.error).toMatch(message);
  });
});

describe('Debezium ZonedTimestamp to microseconds', () => {
  it('keeps microseconds and honours offsets', () => {
    expect(isoToMicros('1970-01-01T00:00:00Z')).toBe(0);
    expect(isoToMicros('2026-11-01T10:00:00.123456Z')).toBe(Date.UTC(2026, 10, 1, 10) * 1000 + 123456);
    expect(isoToMicros('2026-11-01T10:00:00.1Z')).toBe(Date.UTC(2026, 10, 1, 10) * 1000 + 100000);
    expect(isoToMicros('2026-11-01T10:00:00.123456789Z')).toBe(Date.UTC(2026, 10, 1, 10) * 1000 + 123456);
    expect(isoToMicros('2026-11-01T12:00:00+02:00')).toBe(Date.UTC(2026, 10, 1, 10) * 1000);
    expect(isoToMicros('2026-11-01T05:30:00-0430')).toBe(Date.UTC(2026, 10, 1, 10) * 1000);
    expect(isoToMicros('1969-12-31T23:59:59.5Z')).toBe(-500000);
    expect(isoToMicros('1700-01-01T00:00:00Z')).toBe(new Date('1700-01-01T00:00:00Z').getTime() * 1000);
  });

  it.each(['', 'yesterday', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-11-01T24:00:00Z', '2026-11-01', '2026-11-01T10:00:00', 'infinity', '9999-12-31T23:59:59Z', '0001-01-01T00:00:00Z'])(
    'rejects %j',
    (text) => {
      expect(isoToMicros(text)).toBeUndefined();
    },
  );

  it('rejects what is not a string', () => {
    expect(isoToMicros(1_700_000_000_000)).toBeUndefined();
    expect(isoToMicros(null)).toBeUndefined();
  });
});
