import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { PER_CHANGE_CODEC } from '../../processors/core/state/changelog.js';
import { FingerprintTable, fingerprintOf } from '../../processors/core/state/fingerprint-table.js';
import { encodeEntry } from '../../processors/core/state/partition-store.js';
import { SqlitePartitionStore } from '../../processors/core/state/sqlite-store.js';
import { StateStores } from '../../processors/core/state/state-stores.js';
import { applyEvents, totalsKey } from '../../processors/live/aggregate.js';
import { LIVE_CHANGELOG_CODEC } from '../../processors/live/changelog.js';
import { CUSTOMER_PREFIX, CustomerIndex, customerKey, LEGACY, legacyCustomerKey } from '../../processors/live/customers.js';
import type { LiveEvent } from '../../processors/live/event.js';
import { closesAt, hourOf } from '../../processors/live/months.js';
import { DEFAULT_RULES } from '../../processors/reports/commission.js';
import { FakeChangelog } from '../support/fake-changelog.js';
import { liveStores, liveTransact } from '../support/live-stores.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const us = (iso: string) => BigInt(Date.parse(iso)) * 1000n;
const options = { nowMs: Date.parse('2026-10-20T00:00:00Z'), openMonths: 3, rules: DEFAULT_RULES };
let seq = 0;
const onboard = (agentId: string, customerId: string, at: string): LiveEvent => ({ eventId: `ev-${++seq}`, type: 'customer_onboarded', agentId, customerId, amountMinor: null, occurredAtMicros: us(at) });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-live-customers-'));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('a fingerprint table', () => {
  it('holds pairs as a multiset by fingerprint, removes exactly one pair, and keeps them all through resizes', () => {
    const t = new FingerprintTable();
    expect(t.add(7, 1)).toBe(true);
    expect(t.add(7, 1)).toBe(false);
    expect(t.add(7, 2)).toBe(true);
    expect([...t.locators(7)].sort()).toEqual([1, 2]);
    expect(t.locators(8)).toEqual([]);
    t.remove(7, 1);
    expect(t.locators(7)).toEqual([2]);
    expect(t.has(7, 1)).toBe(false);
    // 10,000 pairs over 3 fingerprints (every probe collides) and 10,000 over distinct ones.
    for (let i = 0; i < 10_000; i++) {
      expect(t.add(2 + (i % 3), 100 + i)).toBe(true);
      expect(t.add(fingerprintOf(`k${i}`), i)).toBe(true);
    }
    expect(t.size).toBe(20_001);
    expect(t.capacity).toBeGreaterThanOrEqual(40_002);
    expect([t.locators(2).length, t.locators(3).length]).toEqual([3_334, 3_333]);
    for (let i = 0; i < 10_000; i += 2) t.remove(fingerprintOf(`k${i}`), i);
    for (let i = 0; i < 10_000; i++) expect(t.has(fingerprintOf(`k${i}`), i)).toBe(i % 2 === 1);
    expect(t.size).toBe(15_001);
    // Removed slots are reused and dropped by a rebuild: the table does not grow with churn.
    const capacity = t.capacity;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 5_000; i++) t.add(fingerprintOf(`churn${i}`), round);
      for (let i = 0; i < 5_000; i++) t.remove(fingerprintOf(`churn${i}`), round);
    }
    expect([t.size, t.capacity]).toEqual([15_001, capacity]);
    expect(t.locators(7)).toEqual([2]);
  });

  it('never hands out the fingerprints that mark empty and removed slots', () => {
    const marks = new Set([0, 1]);
    for (let i = 0; i < 100_000; i++) expect(marks.has(fingerprintOf(`x${i}`))).toBe(false);
  });
});

describe('live onboarded customers (CustomerIndex over core/state)', () => {
  const stores = (changelog: FakeChangelog, name: string, fingerprint?: (m: string) => number) =>
    liveStores(join(dir, name), changelog, logger, { now: () => options.nowMs, index: () => new CustomerIndex(fingerprint) });
  const customersOf = (r: ReturnType<typeof applyEvents>, agent: string, month = '2026-10') => r.changed.get(totalsKey(agent, month))?.customersOnboarded;

  it('stores a new customer under the hour of its onboarding without reading the store, and counts each customer once', async () => {
    const changelog = new FakeChangelog();
    const s = stores(changelog, 'a');
    await s.ready(0);
    const reads = vi.spyOn(SqlitePartitionStore.prototype, 'has');
    let txn = s.begin(0);
    let r = applyEvents(txn, [onboard('ag', 'A', '2026-10-02T10:15:00Z'), onboard('ag', 'B', '2026-10-02T11:00:00Z'), onboard('ag', 'A', '2026-10-05T00:00:00Z')], options);
    expect(customersOf(r, 'ag')).toBe(2);
    expect(txn.has(customerKey(hourOf(us('2026-10-02T10:00:00Z')), 'ag', '2026-10', 'A'))).toBe(true);
    // The repeat of A was confirmed in the transaction's own changes: no store read for any customer key.
    expect(reads.mock.calls.filter(([k]) => k.startsWith(CUSTOMER_PREFIX))).toEqual([]);
    s.committed(txn, changelog.commit(0, txn.messages()));
    await s.flushed();
    // A later transaction: A's repeat is read exactly once (at its recorded hour), C is new without a read.
    reads.mockClear();
    txn = s.begin(0);
    r = applyEvents(txn, [onboard('ag', 'A', '2026-10-06T00:00:00Z'), onboard('ag', 'C', '2026-10-06T00:00:00Z')], options);
    expect(customersOf(r, 'ag')).toBe(3);
    expect(reads.mock.calls.map(([k]) => k).filter((k) => k.startsWith(CUSTOMER_PREFIX))).toEqual([customerKey(hourOf(us('2026-10-02T10:15:00Z')), 'ag', '2026-10', 'A')]);
    s.committed(txn, changelog.commit(0, txn.messages()));
    await s.close();
  });

  it('stays exact when every customer shares a fingerprint, across transactions and a restore from the changelog alone', async () => {
    const changelog = new FakeChangelog();
    const tiny = (m: string) => 2 + (fingerprintOf(m) & 1);
    let s = stores(changelog, 'b', tiny);
    await s.ready(0);
    const transact = (events: LiveEvent[]) => liveTransact(s, changelog, events, options);
    const names = Array.from({ length: 40 }, (_, i) => `cust-${i}`);
    expect(customersOf(transact(names.slice(0, 20).map((c, i) => onboard('ag', c, `2026-10-0${1 + (i % 9)}T0${i % 10}:00:00Z`))), 'ag')).toBe(20);
    // Half repeats (other hours), half new: only the new ones count.
    expect(customersOf(transact(names.slice(10, 30).map((c) => onboard('ag', c, '2026-10-15T12:00:00Z'))), 'ag')).toBe(30);
    // Another agent's customers of the same names are other customers.
    expect(customersOf(transact(names.slice(0, 5).map((c) => onboard('other', c, '2026-10-15T12:00:00Z'))), 'other')).toBe(5);
    await s.close();
    rmSync(join(dir, 'b'), { recursive: true, force: true });
    s = stores(changelog, 'b', tiny);
    await s.ready(0);
    expect(customersOf(transact(names.map((c) => onboard('ag', c, '2026-10-16T00:00:00Z'))), 'ag')).toBe(40);
    await s.close();
  });

  it('takes an aborted transaction\'s customers (and those of every later one) back out of the index', async () => {
    const changelog = new FakeChangelog();
    const index = new CustomerIndex();
    const s = liveStores(join(dir, 'c'), changelog, logger, { now: () => options.nowMs, index: () => index });
    await s.ready(0);
    const kept = s.begin(0);
    applyEvents(kept, [onboard('ag', 'A', '2026-10-02T00:00:00Z')], options);
    s.committed(kept, changelog.commit(0, kept.messages()));
    const first = s.begin(0);
    // A repeat of a known customer adds nothing; B is new.
    expect(customersOf(applyEvents(first, [onboard('ag', 'A', '2026-10-03T00:00:00Z'), onboard('ag', 'B', '2026-10-03T00:00:00Z')], options), 'ag')).toBe(2);
    const second = s.begin(0); // pipelined: reads first's changes
    expect(customersOf(applyEvents(second, [onboard('ag', 'B', '2026-10-04T00:00:00Z'), onboard('ag', 'C', '2026-10-04T00:00:00Z')], options), 'ag')).toBe(3);
    expect(index.stats.customers).toBe(3);
    s.aborted(first);
    expect(index.stats.customers).toBe(1);
    expect(index.locators('ag', '2026-10', 'A')).toEqual([hourOf(us('2026-10-02T00:00:00Z'))]);
    // Retried: B and C count again, once.
    const retry = s.begin(0);
    expect(customersOf(applyEvents(retry, [onboard('ag', 'B', '2026-10-03T00:00:00Z'), onboard('ag', 'B', '2026-10-04T00:00:00Z'), onboard('ag', 'C', '2026-10-04T00:00:00Z')], options), 'ag')).toBe(3);
    s.committed(retry, changelog.commit(0, retry.messages()));
    expect(index.stats.customers).toBe(3);
    await s.close();
  });

  it('honours customers kept under the old key by an older store or changelog, and forgets a month once it left the window', async () => {
    const changelog = new FakeChangelog();
    const sep = closesAt('2026-09', 3);
    // The one-record-per-change format of an older version, customers as `c\0<agent>\0<month>\0<customer>`.
    changelog.commit(0, PER_CHANGE_CODEC.encode([legacyCustomerKey('ag', '2026-09', 'A'), legacyCustomerKey('ag', '2026-10', 'A')].map((key) => ({ key, entry: encodeEntry(Buffer.alloc(0), sep) })), 0));
    const index = new CustomerIndex();
    const s = liveStores(join(dir, 'd'), changelog, logger, { now: () => options.nowMs, index: () => index });
    await s.ready(0);
    expect(index.locators('ag', '2026-09', 'A')).toEqual([LEGACY]);
    let txn = s.begin(0);
    let r = applyEvents(txn, [onboard('ag', 'A', '2026-09-20T00:00:00Z'), onboard('ag', 'B', '2026-09-20T00:00:00Z'), onboard('ag', 'A', '2026-10-20T00:00:00Z')], options);
    expect([customersOf(r, 'ag', '2026-09'), customersOf(r, 'ag', '2026-10')]).toEqual([1, 0]);
    s.committed(txn, changelog.commit(0, txn.messages()));
    expect(index.stats.months).toBe(2);
    // December: September left the window (3 open months): its table goes, its events are late.
    txn = s.begin(0);
    r = applyEvents(txn, [onboard('ag', 'A', '2026-09-21T00:00:00Z'), onboard('ag', 'A', '2026-10-21T00:00:00Z')], { ...options, nowMs: Date.parse('2026-12-01T00:00:00Z') });
    expect([r.late.length, customersOf(r, 'ag', '2026-10'), index.stats.months]).toEqual([1, 0, 1]);
    s.committed(txn, changelog.commit(0, txn.messages()));
    await s.close();
  });

  it('refuses state stores without the customer index (a count that would read the store at random)', async () => {
    const s = new StateStores({ name: 'live', dir: join(dir, 'e'), changelogTopic: 'g-live-changelog', codec: LIVE_CHANGELOG_CODEC, source: new FakeChangelog(), logger });
    await s.ready(0);
    expect(() => applyEvents(s.begin(0), [onboard('ag', 'A', '2026-10-02T00:00:00Z')], options)).toThrow(/customer index/);
    await s.close();
  });
});
