import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { PER_CHANGE_CODEC } from '../../processors/core/state/changelog.js';
import { encodeEntry, type StateChange } from '../../processors/core/state/partition-store.js';
import { applyEvents, decodeTotals, encodeTotals, eventKey, hourKey, legacyEventKey, totalsKey } from '../../processors/live/aggregate.js';
import { liveOpenApi } from '../../processors/live/api.js';
import { LIVE_CHANGELOG_CODEC, PACK_BYTES, PACK_PREFIX } from '../../processors/live/changelog.js';
import { toLiveEvent, type LiveEvent } from '../../processors/live/event.js';
import { closesAt, isOpen, monthOfMicros, oldestOpenMonth } from '../../processors/live/months.js';
import { outputKey, parseOutputKey, toTotals } from '../../processors/live/output.js';
import { compareRows, type Cells } from '../../processors/live/reconcile.js';
import { commission, DEFAULT_RULES } from '../../processors/reports/commission.js';
import { FakeChangelog } from '../support/fake-changelog.js';
import { liveStores, liveTransact } from '../support/live-stores.js';
import { openApiSchemaCheck } from '../support/openapi-schemas.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-live-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const logger = createLogger({ name: 'test', level: 'silent' });
const us = (iso: string, extra = 0n) => BigInt(Date.parse(iso)) * 1000n + extra;

describe('live months', () => {
  it('takes the UTC month of occurred_at to the microsecond', () => {
    expect(monthOfMicros(us('2026-09-30T23:59:59.999Z', 999n))).toBe('2026-09');
    expect(monthOfMicros(us('2026-10-01T00:00:00.000Z'))).toBe('2026-10');
    expect(monthOfMicros(us('2026-10-31T23:59:59.999Z', 999n))).toBe('2026-10');
  });

  it('keeps the current month and the previous ones open, and closes a month at the start of the month `open` after it', () => {
    const now = Date.parse('2027-01-15T00:00:00Z');
    expect(oldestOpenMonth(now, 3)).toBe('2026-11');
    expect(isOpen('2026-11', now, 3)).toBe(true);
    expect(isOpen('2026-10', now, 3)).toBe(false);
    expect(isOpen('2027-02', now, 3)).toBe(true);
    expect(closesAt('2026-11', 3)).toBe(Date.parse('2027-02-01T00:00:00Z'));
  });
});

describe('live output keys', () => {
  it('round-trips any agent id, separators included', () => {
    for (const agent of ['a', 'a|b', 'agent-\u{1F600}', '|2026-10']) expect(parseOutputKey(outputKey(agent, '2026-10'))).toEqual({ agentId: agent, month: '2026-10' });
    expect(parseOutputKey('short')).toBeUndefined();
  });
});

describe('live events from the agent-event envelope', () => {
  it('reads a wrapped union branch and exact amounts, and names what is missing', () => {
    const envelope = { id: 'e1', type: 'io.sluice.agent.deposit_made', subject: 'ag', time: 1_000_000, data: { 'io.sluice.events.DepositMade': { customer_id: 'c', amount_minor: 2n ** 63n - 1n, currency: 'USD' } } };
    expect(toLiveEvent(envelope)).toEqual({ eventId: 'e1', type: 'deposit_made', agentId: 'ag', customerId: 'c', amountMinor: 2n ** 63n - 1n, occurredAtMicros: 1_000_000n });
    expect(toLiveEvent({ ...envelope, type: 'io.sluice.agent.refund' })).toMatchObject({ reason: 'not_an_agent_event', error: expect.stringContaining('unknown type') });
    expect(toLiveEvent({ ...envelope, data: { x: { customer_id: 'c' } } })).toMatchObject({ error: 'no data.amount_minor' });
  });
});

describe('live aggregate (state in core/state)', () => {
  const ev = (eventId: string, type: LiveEvent['type'], agentId: string, customerId: string, amount: bigint | null, at: string): LiveEvent => ({ eventId, type, agentId, customerId, amountMinor: amount, occurredAtMicros: us(at) });
  const options = { nowMs: Date.parse('2026-10-20T00:00:00Z'), openMonths: 3, rules: DEFAULT_RULES };

  it('counts each event_id once across transactions and a restore, distinct customers, exact sums and the report commission; late months only counted as late', async () => {
    const changelog = new FakeChangelog();
    const open = () => liveStores(join(dir, 'a'), changelog, logger);
    let stores = open();
    await stores.ready(0);
    const transact = (events: LiveEvent[]) => liveTransact(stores, changelog, events, options);
    const first = transact([
      ev('1', 'customer_onboarded', 'ag', 'A', null, '2026-10-02T00:00:00Z'),
      ev('2', 'customer_onboarded', 'ag', 'A', null, '2026-10-03T00:00:00Z'),
      ev('3', 'deposit_made', 'ag', 'A', 2n ** 62n, '2026-10-04T00:00:00Z'),
      ev('3', 'deposit_made', 'ag', 'A', 2n ** 62n, '2026-10-04T00:00:00Z'),
      ev('4', 'deposit_made', 'ag', 'A', 100n, '2026-07-31T23:00:00Z'),
    ]);
    expect([first.counted, first.duplicates, first.late.map((e) => e.eventId)]).toEqual([3, 1, ['4']]);
    // A new process: the store is rebuilt from the changelog alone.
    await stores.close();
    rmSync(join(dir, 'a'), { recursive: true, force: true });
    stores = open();
    await stores.ready(0);
    const second = transact([ev('3', 'deposit_made', 'ag', 'A', 2n ** 62n, '2026-10-04T00:00:00Z'), ev('5', 'deposit_made', 'ag', 'B', 2n ** 62n, '2026-10-05T00:00:00Z'), ev('6', 'customer_onboarded', 'ag', 'B', null, '2026-10-05T00:00:00Z')]);
    expect([second.counted, second.duplicates]).toEqual([2, 1]);
    const row = second.changed.get(totalsKey('ag', '2026-10'))!;
    expect([row.events, row.customersOnboarded, row.depositsMinor, row.netInflowMinor, row.tierReached]).toEqual([5, 2, 2n ** 63n, 2n ** 63n, true]);
    // (2^63 x 50 x 5/4) / 10000 = 57646075230342348.8 -> ...349, plus 2 x 2500.
    expect(row.commissionMinor).toBe(57646075230342349n + 5000n);
    await stores.close();
  });

  it('keys a counted event by the hour of its occurred_at, and still finds one counted under the key of an older store', async () => {
    expect(hourKey(us('2026-10-04T10:59:59.999Z', 999n))).toBe(hourKey(us('2026-10-04T10:00:00Z')));
    expect(hourKey(us('2026-10-04T11:00:00Z')) > hourKey(us('2026-10-04T10:00:00Z'))).toBe(true);
    expect(hourKey(us('1969-12-31T23:00:00Z')) < hourKey(us('1970-01-01T00:00:00Z'))).toBe(true);
    const changelog = new FakeChangelog();
    const oct = closesAt('2026-10', 3);
    const counted = '2b3e2c4a-7f10-4c1e-9a7d-5d2f8e6b1c00';
    // A changelog written before the hour-led keys: the event id as `e\0<id>`.
    changelog.commit(0, PER_CHANGE_CODEC.encode([{ key: `e\u0000${counted}`, entry: encodeEntry(Buffer.alloc(0), oct) }], 0));
    const stores = liveStores(join(dir, 'legacy'), changelog, logger);
    await stores.ready(0);
    const txn = stores.begin(0);
    const r = applyEvents(txn, [ev(counted, 'deposit_made', 'ag', 'A', 5n, '2026-10-04T10:00:00Z'), ev('3b3e2c4a-7f10-4c1e-9a7d-5d2f8e6b1c00', 'deposit_made', 'ag', 'A', 7n, '2026-10-04T10:00:00Z')], options);
    expect([r.counted, r.duplicates, r.changed.get(totalsKey('ag', '2026-10'))?.depositsMinor]).toEqual([1, 1, 7n]);
    expect(txn.has(eventKey('3b3e2c4a-7f10-4c1e-9a7d-5d2f8e6b1c00', us('2026-10-04T10:00:00Z')))).toBe(true);
    await stores.close();
  });

  it('packs a transaction\'s changes of a month in one changelog record, reads them back in order, and still reads the per-change format', () => {
    const oct = closesAt('2026-10', 3);
    const nov = closesAt('2026-11', 3);
    const id = '0b3e2c4a-7f10-4c1e-9a7d-5d2f8e6b1c00';
    const at = us('2026-10-04T10:00:00Z');
    const changes: StateChange[] = [
      { key: eventKey(id, at), entry: encodeEntry(Buffer.alloc(0), oct) },
      { key: 'c\u0000ag\u00002026-10\u0000cust-\u{1F600}', entry: encodeEntry(Buffer.alloc(0), oct) },
      { key: eventKey('1d3e2c4a-7f10-4c1e-9a7d-5d2f8e6b1c00', at), entry: encodeEntry(Buffer.alloc(0), nov) },
      { key: totalsKey('ag', '2026-10'), entry: encodeEntry(encodeTotals({ events: 1, customersOnboarded: 1, depositsMinor: 2n ** 70n, withdrawalsMinor: 0n, investmentsMinor: 0n }), oct) },
      { key: totalsKey('ag', '2026-11'), entry: null }, // an expiry: no record (restore drops what expired)
    ];
    const records = LIVE_CHANGELOG_CODEC.encode(changes, 4);
    expect(records.map((r) => [r.key, r.partition])).toEqual([
      [PACK_PREFIX + eventKey(id, at), 4],
      [PACK_PREFIX + eventKey('1d3e2c4a-7f10-4c1e-9a7d-5d2f8e6b1c00', at), 4],
    ]);
    const back = records.flatMap((r) => LIVE_CHANGELOG_CODEC.decode({ key: Buffer.from(r.key as string), value: r.value as Buffer }));
    expect(back).toEqual([changes[0], changes[1], changes[3], changes[2]]);
    expect(eventKey(id, at)).toHaveLength(2 + 6 + 22); // the hour, then the id's 16 bytes in base64url
    // The one-record-per-change format (event ids as text) reads as the legacy key (no occurred_at in it).
    const legacy = PER_CHANGE_CODEC.encode([{ key: `e\u0000${id}`, entry: encodeEntry(Buffer.alloc(0), oct) }], 0)[0]!;
    expect(LIVE_CHANGELOG_CODEC.decode({ key: Buffer.from(legacy.key as string), value: legacy.value as Buffer })).toEqual([{ key: legacyEventKey(id), entry: encodeEntry(Buffer.alloc(0), oct) }]);
    // A transaction bigger than a record's budget is split, nothing lost.
    const many = Array.from({ length: 30_000 }, (_, i): StateChange => ({ key: `c\u0000agent\u00002026-10\u0000customer-${i}`, entry: encodeEntry(Buffer.alloc(0), oct) }));
    const split = LIVE_CHANGELOG_CODEC.encode(many, 0);
    expect(split.length).toBeGreaterThan(1);
    for (const r of split) expect((r.value as Buffer).length).toBeLessThanOrEqual(PACK_BYTES);
    const read = split.flatMap((r) => LIVE_CHANGELOG_CODEC.decode({ key: Buffer.from(r.key as string), value: r.value as Buffer }));
    expect(read.map((c) => c.key)).toEqual(many.map((c) => c.key));
    expect(read.filter((c) => !c.entry!.equals(many[0]!.entry!))).toEqual([]);
  });

  it('puts each event in its UTC month to the microsecond, in any order within a transaction', async () => {
    const stores = liveStores(join(dir, 'b'), new FakeChangelog(), logger);
    await stores.ready(0);
    const txn = stores.begin(0);
    const at = (id: string, micros: bigint): LiveEvent => ({ eventId: id, type: 'deposit_made', agentId: 'ag', customerId: 'c', amountMinor: 1n, occurredAtMicros: micros });
    const edge = us('2026-10-01T00:00:00Z');
    const r = applyEvents(txn, [at('1', edge - 1n), at('2', edge), at('3', edge - 1n), at('4', us('2026-11-01T00:00:00Z') - 1n), at('5', us('2026-11-01T00:00:00Z'))], { ...options, nowMs: Date.parse('2026-11-20T00:00:00Z') });
    expect([...r.changed.values()].map((row) => [row.month, row.events])).toEqual([['2026-09', 2], ['2026-10', 2], ['2026-11', 1]]);
    await stores.close();
  });

  it('encodes totals beyond 2^63 exactly', () => {
    const t = { events: 3, customersOnboarded: 1, depositsMinor: 2n ** 70n, withdrawalsMinor: 1n, investmentsMinor: 0n };
    expect(decodeTotals(encodeTotals(t))).toEqual(t);
  });
});

describe('reconcile', () => {
  it('finds every differing cell and every row on one side only, in report order', () => {
    const row = (events: string, commission: string): Cells => ({ events, commission_minor: commission });
    const live = new Map([['b', row('1', '10')], ['a', row('2', '20')], ['only-live', row('1', '1')]]);
    const batch = new Map([['a', row('2', '21')], ['b', row('1', '10')], ['only-batch', row('1', '1')]]);
    expect(compareRows('batch', live, batch)).toEqual([
      { against: 'batch', agentId: 'a', cell: 'commission_minor', live: '20', other: '21' },
      { against: 'batch', agentId: 'only-batch', cell: 'row', live: 'absent', other: 'present' },
      { against: 'batch', agentId: 'only-live', cell: 'row', live: 'present', other: 'absent' },
    ]);
    expect(compareRows('batch', live, new Map(live))).toEqual([]);
  });
});

describe('live OpenAPI', () => {
  it('documents the totals the API answers (a body that matches, one that does not)', async () => {
    const check = await openApiSchemaCheck(liveOpenApi(500));
    try {
      const totals = { ...toTotals({ ...commission({ agentId: 'ag', events: 1, customersOnboarded: 0, depositsMinor: 2n ** 64n, withdrawalsMinor: 0n, investmentsMinor: 0n }), month: '2026-10' }, 'USD', 'v1', 1) };
      expect(check.has('GET', '/live/agents/{agent_id}/months/{month}', 200)).toBe(true);
      expect(await check.check('GET', '/live/agents/{agent_id}/months/{month}', 200, totals)).toBeUndefined();
      expect(await check.check('GET', '/live/agents/{agent_id}/months/{month}', 200, { ...totals, deposits_minor: 1.5 })).toBeDefined();
      expect(await check.check('GET', '/live/months/{month}', 200, { month: '2026-10', rows: [totals], next_after: 'ag' })).toBeUndefined();
    } finally {
      await check.close();
    }
  });
});
