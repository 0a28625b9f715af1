import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Message, TopicMessages } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { createMetricsRegistry } from '../../processors/core/metrics/metrics.js';
import { changelogTopicName, fromChangelogMessage, toChangelogMessage, type ChangelogCodec } from '../../processors/core/state/changelog.js';
import { StateMetrics } from '../../processors/core/state/metrics.js';
import { LmdbPartitionStore } from '../../processors/core/state/lmdb-store.js';
import { decodeEntry, encodeEntry, type PartitionStore, type StateEngine } from '../../processors/core/state/partition-store.js';
import { SqlitePartitionStore } from '../../processors/core/state/sqlite-store.js';
import { StateStores } from '../../processors/core/state/state-stores.js';
import { nextOffset } from '../../processors/core/kafka/transactional-loop.js';
import { FakeChangelog } from '../support/fake-changelog.js';

const logger = createLogger({ name: 'test', level: 'silent' });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-state-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ENGINES: StateEngine[] = ['lmdb', 'sqlite'];
const openStore = (engine: StateEngine, at: string): PartitionStore => (engine === 'sqlite' ? SqlitePartitionStore.open(at) : LmdbPartitionStore.open(at));

describe.each(ENGINES)('a partition store on local disk (%s)', (engine) => {
  const put = (key: string, value: string, expiresAt: number) => ({ key, entry: encodeEntry(Buffer.from(value), expiresAt) });
  const presence = (key: string, expiresAt: number) => ({ key, entry: encodeEntry(Buffer.alloc(0), expiresAt) });

  it('keeps entries, deletes and the changelog position across a reopen, written now or queued', async () => {
    let store = openStore(engine, join(dir, '0'));
    expect(store.changelogNext()).toBeUndefined();
    store.apply([put('b', '2', 2000), put('a', '1', 3000), put('c', '3', 1000)], 7n);
    expect(store.get('a')).toEqual({ value: Buffer.from('1'), expiresAt: 3000 });
    // Queued to LMDB's write thread: visible once committed.
    await store.applyAsync([put('c', '3', 5000), { key: 'b', entry: null }]);
    expect(store.get('b')).toBeUndefined();
    expect(store.get('c')?.expiresAt).toBe(5000);
    expect(store.count()).toBe(2);
    expect(store.changelogNext()).toBe(7n); // a change without a position keeps it
    await store.applyAsync([], 9n);
    await store.close();

    store = openStore(engine, join(dir, '0'));
    expect(store.changelogNext()).toBe(9n);
    expect(store.get('c')?.expiresAt).toBe(5000);
    expect(store.count()).toBe(2);
    await store.close();
  });

  it('sweeps for expired entries a bounded step at a time, in key order, and says when a round ends', async () => {
    const store = openStore(engine, join(dir, '0'));
    store.apply(['a', 'b', 'c', 'd', 'e'].map((k, i) => put(k, k, 1000 * (i + 1))));
    expect(store.sweep(2500, undefined, 2)).toEqual({ expired: ['a', 'b'], next: 'b' });
    expect(store.sweep(2500, 'b', 2)).toEqual({ expired: [], next: 'd' });
    expect(store.sweep(2500, 'd', 2)).toEqual({ expired: [], next: undefined });
    expect(store.sweep(10_000, undefined, 10)).toEqual({ expired: ['a', 'b', 'c', 'd', 'e'], next: undefined });
    await store.close();
  });

  it('applies a batch in order and keeps the count exact: presence entries put again, rewritten, deleted, keys with NULs and non-ASCII', async () => {
    const store = openStore(engine, join(dir, '0'));
    const ids = Array.from({ length: 150 }, (_, i) => `i\u0000${String(i).padStart(4, '0')}`);
    store.apply(ids.map((k) => presence(k, 1000)));
    expect(store.count()).toBe(150);
    // A restore's batch: some keys again with a new expiry, one put then deleted, one deleted then put, a value rewritten.
    store.apply([
      ...ids.slice(0, 70).map((k) => presence(k, 2000)),
      presence('i\u0000new', 1000),
      { key: 'i\u0000new', entry: null },
      { key: ids[100]!, entry: null },
      presence(ids[100]!, 3000),
      put('a\u0000agent-é\u00002026-10', '1', 5000),
      put('a\u0000agent-é\u00002026-10', '2', 5000),
    ]);
    expect(store.count()).toBe(151);
    expect(store.get(ids[0]!)?.expiresAt).toBe(2000);
    expect(store.get(ids[69]!)?.expiresAt).toBe(2000);
    expect(store.get(ids[70]!)?.expiresAt).toBe(1000);
    expect(store.has('i\u0000new')).toBe(false);
    expect(store.get(ids[100]!)?.expiresAt).toBe(3000);
    expect(store.get('a\u0000agent-é\u00002026-10')?.value.toString()).toBe('2');
    expect([...store.keysFrom('a\u0000')]).toEqual(['a\u0000agent-é\u00002026-10']);
    expect(store.hasKeysFrom('i\u0000')).toBe(true);
    expect(store.hasKeysFrom('e\u0000')).toBe(false);
    expect([...store.keysFrom('i\u0000')].length).toBe(150);
    store.apply([{ key: ids[1]!, entry: null }, { key: 'never-there', entry: null }]);
    expect(store.count()).toBe(150);
    await store.close();
  });
});

describe('a SQLite partition store', () => {
  it('clears the LMDB files an earlier version left in its folder, and keeps what it wrote inline across a close', async () => {
    const at = join(dir, '0');
    mkdirSync(at, { recursive: true });
    writeFileSync(join(at, 'data.mdb'), 'old');
    writeFileSync(join(at, 'lock.mdb'), 'old');
    const store = SqlitePartitionStore.open(at);
    expect([existsSync(join(at, 'data.mdb')), existsSync(join(at, 'lock.mdb'))]).toEqual([false, false]);
    expect(store.changelogNext()).toBeUndefined();
    await store.applyAsync([{ key: 'k', entry: encodeEntry(Buffer.from('v'), 9000) }], 4n);
    await store.close();
    const again = SqlitePartitionStore.open(at);
    expect([again.get('k')?.value.toString(), again.changelogNext(), again.count()]).toEqual(['v', 4n, 1]);
    await again.close();
  });
});

describe('changelog records', () => {
  it('are named as Kafka Streams names them and carry the entry or a tombstone', () => {
    expect(changelogTopicName('sluice-normalizer', 'dedupe')).toBe('sluice-normalizer-dedupe-changelog');
    const entry = encodeEntry(Buffer.from('v'), 42);
    expect(decodeEntry(entry)).toEqual({ value: Buffer.from('v'), expiresAt: 42 });
    expect(toChangelogMessage({ key: 'k', entry }, 3)).toEqual({ key: 'k', value: entry, partition: 3 });
    expect(toChangelogMessage({ key: 'k', entry: null }, 3)).toEqual({ key: 'k', value: null, partition: 3 });
    expect(fromChangelogMessage({ key: Buffer.from('k'), value: entry })).toEqual({ key: 'k', entry });
    expect(fromChangelogMessage({ key: Buffer.from('k'), value: null })).toEqual({ key: 'k', entry: null });
    expect(fromChangelogMessage({ key: null, value: entry })).toBeUndefined();
    expect(fromChangelogMessage({ key: Buffer.from('k'), value: Buffer.from('short') })).toBeUndefined();
  });

  it('tell the offset after the last one a produce request wrote', () => {
    const part: TopicMessages[] = [
      { topic: 'events', messages: [{ value: 'x' }] },
      { topic: 'cl', messages: [{ key: 'a', value: 'x', partition: 2 }, { key: 'b', value: null, partition: 2 }] },
    ];
    const written = [
      { topicName: 'events', partition: 0, errorCode: 0, baseOffset: '500' },
      { topicName: 'cl', partition: 2, errorCode: 0, baseOffset: '40' },
    ];
    expect(nextOffset(part, written, 'cl', 2)).toBe(42n);
    expect(nextOffset(part, written, 'cl', 1)).toBeUndefined();
  });
});

/** One Kafka transaction as the loop runs it: changes to the changelog, then to the local store. */
function transact(stores: StateStores, changelog: FakeChangelog, partition: number, work: (txn: ReturnType<StateStores['begin']>) => void) {
  const txn = stores.begin(partition);
  work(txn);
  const next = changelog.commit(partition, txn.messages());
  stores.committed(txn, next);
}

describe.each(ENGINES)('state stores (%s) restored from their changelog', (engine) => {
  // The entries below expire at 9,000 ms after the epoch: the stores' clock stands before.
  const open = (changelog: FakeChangelog, metrics?: StateMetrics) => new StateStores({ name: 'dedupe', dir, engine, changelogTopic: 'g-dedupe-changelog', source: changelog, logger, now: () => 0, ...(metrics ? { metrics } : {}) });

  it('refuses a transaction before the partition is ready, and sees its own pending changes', async () => {
    const changelog = new FakeChangelog();
    const stores = open(changelog);
    expect(() => stores.begin(0)).toThrow(/not ready/);
    await stores.ready(0);
    const txn = stores.begin(0);
    txn.put('a', Buffer.from('1'), 100);
    expect(txn.get('a')?.value).toEqual(Buffer.from('1'));
    txn.delete('a');
    expect(txn.get('a')).toBeUndefined();
    // Not committed: a new transaction does not see it.
    expect(stores.begin(0).get('a')).toBeUndefined();
    // Committed: the next transaction sees it at once, before LMDB's write thread has written it.
    const committed = stores.begin(0);
    committed.put('b', Buffer.from('2'), 100);
    stores.committed(committed, 5n);
    expect(stores.begin(0).get('b')?.value).toEqual(Buffer.from('2'));
    await stores.flushed();
    expect(stores.begin(0).get('b')?.expiresAt).toBe(100);
    await stores.close();
    expect(changelog.closed).toBe(true);
  });

  it('lets a transaction read the open ones begun before it (a pipelined loop), and drops an aborted one with every later one', async () => {
    const changelog = new FakeChangelog();
    const stores = open(changelog);
    await stores.ready(0);
    const first = stores.begin(0);
    first.put('n', Buffer.from('1'), 100);
    const second = stores.begin(0);
    expect(second.get('n')?.value).toEqual(Buffer.from('1'));
    second.put('n', Buffer.from('2'), 100);
    expect(first.get('n')?.value).toEqual(Buffer.from('1')); // not the later one's
    const third = stores.begin(0);
    expect(third.get('n')?.value).toEqual(Buffer.from('2'));
    stores.aborted(second); // second and third are gone; first stays open
    expect(stores.begin(0).get('n')?.value).toEqual(Buffer.from('1'));
    stores.aborted(first);
    expect(stores.begin(0).get('n')).toBeUndefined();
    await stores.close();
  });

  it('lets a committed pipelined transaction go: the open ones do not keep the chain of earlier ones alive', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const changelog = new FakeChangelog();
    const stores = open(changelog);
    await stores.ready(0);
    // A pipelined loop: each transaction begins while the one before it still commits.
    let previous = stores.begin(0);
    previous.put('k0', Buffer.alloc(1024), 100);
    const first = new WeakRef(previous);
    for (let i = 1; i <= 5; i++) {
      const next = stores.begin(0);
      next.put(`k${i}`, Buffer.alloc(1024), 100);
      stores.committed(previous, changelog.commit(0, previous.messages()));
      previous = next;
    }
    // The newest is open and still reads what the committed ones wrote.
    expect(previous.get('k0')?.value.length).toBe(1024);
    await stores.flushed();
    await new Promise((r) => setImmediate(r));
    gc();
    expect(first.deref()).toBeUndefined();
    expect(previous.get('k4')?.value.length).toBe(1024);
    stores.committed(previous, changelog.commit(0, previous.messages()));
    await stores.close();
  });


  it('rebuilds a lost local store from the changelog, and reuses a kept one (reading only what it misses)', async () => {
    const changelog = new FakeChangelog();
    const registry = createMetricsRegistry('test');
    let stores = open(changelog, new StateMetrics(registry));
    await stores.assigned([0, 1]);
    await stores.ready(0);
    await stores.ready(1);
    transact(stores, changelog, 0, (t) => ['a', 'b', 'c'].forEach((k) => t.put(k, Buffer.from(k), 9_000)));
    transact(stores, changelog, 1, (t) => t.put('z', Buffer.from('z'), 9_000));
    transact(stores, changelog, 0, (t) => t.delete('b'));
    await stores.close();

    // Another instance wrote partition 0 meanwhile.
    changelog.commit(0, [toChangelogMessage({ key: 'd', entry: encodeEntry(Buffer.from('d'), 9_000) }, 0)]);
    const highBefore = (await changelog.bounds(0)).high;

    changelog.reads.length = 0;
    stores = open(changelog, new StateMetrics(createMetricsRegistry('test')));
    await stores.assigned([0]);
    await stores.ready(0);
    // Caught up from where the local store stopped (after the delete, at its commit marker), not from 0.
    expect(changelog.reads).toEqual([{ partition: 0, from: 5n, to: highBefore }]);
    const txn = stores.begin(0);
    expect(['a', 'b', 'c', 'd'].map((k) => txn.get(k) !== undefined)).toEqual([true, false, true, true]);
    expect(stores.count(0)).toBe(3);
    await stores.close();

    // The local store deleted: a full restore gives the same state.
    rmSync(dir, { recursive: true, force: true });
    changelog.reads.length = 0;
    stores = open(changelog);
    await stores.assigned([0]);
    await stores.ready(0);
    expect(changelog.reads).toEqual([{ partition: 0, from: 0n, to: highBefore }]);
    const again = stores.begin(0);
    expect(['a', 'b', 'c', 'd'].map((k) => again.get(k) !== undefined)).toEqual([true, false, true, true]);
    await stores.close();
    expect(await registry.getSingleMetricAsString('sluice_state_restore_seconds')).toMatch(/sluice_state_restore_seconds_count\{[^}]*kind="full"[^}]*\} 2/);
  });

  it('rebuilds a local store that does not match its changelog (the topic was recreated)', async () => {
    const changelog = new FakeChangelog();
    let stores = open(changelog);
    await stores.ready(0);
    transact(stores, changelog, 0, (t) => ['a', 'b'].forEach((k) => t.put(k, Buffer.from(k), 9_000)));
    await stores.close();

    const recreated = new FakeChangelog();
    recreated.commit(0, [toChangelogMessage({ key: 'x', entry: encodeEntry(Buffer.from('x'), 9_000) }, 0)]);
    stores = open(recreated);
    // The store reflects offset 2, the new changelog ends at 2 too: equal, so it is kept...
    await stores.ready(0);
    expect(stores.begin(0).get('a')).toBeDefined();
    await stores.close();
    // ...but once the store is ahead of its changelog, it cannot be this changelog's: rebuilt.
    const shorter = new FakeChangelog();
    stores = open(shorter);
    await stores.ready(0);
    expect(stores.begin(0).get('a')).toBeUndefined();
    expect(stores.count(0)).toBe(0);
    await stores.close();
  });

  it('makes every assigned partition current again after a rebalance and closes the revoked ones', async () => {
    const changelog = new FakeChangelog();
    const stores = open(changelog);
    await stores.assigned([0, 1]);
    await stores.ready(0);
    await stores.ready(1);
    expect(stores.isReady(0)).toBe(true);
    // While the group rebalanced, another instance wrote partition 1.
    changelog.commit(1, [toChangelogMessage({ key: 'moved', entry: encodeEntry(Buffer.from('m'), 9_000) }, 1)]);
    await stores.assigned([1]);
    expect(stores.isReady(1)).toBe(false);
    expect(stores.count(0)).toBeUndefined(); // closed
    await stores.ready(1);
    expect(stores.begin(1).get('moved')).toBeDefined();
    await stores.close();
  });

  it('writes and restores with the store\'s own changelog codec, and drops entries whose expiry passed when restoring', async () => {
    // A codec that writes a transaction's puts as one record (key 'all', value JSON) and no tombstones.
    const codec: ChangelogCodec = {
      encode: (changes, partition) => [{ key: 'all', value: JSON.stringify(changes.filter((c) => c.entry).map((c) => [c.key, c.entry!.toString('base64')])), partition }],
      decode: (m) => (JSON.parse(m.value!.toString()) as [string, string][]).map(([key, entry]) => ({ key, entry: Buffer.from(entry, 'base64') })),
    };
    const changelog = new FakeChangelog();
    let clock = 1_000;
    const make = () => new StateStores({ name: 'packed', dir, changelogTopic: 'g-packed-changelog', source: changelog, logger, codec, now: () => clock });
    let stores = make();
    await stores.ready(0);
    transact(stores, changelog, 0, (t) => {
      t.put('soon', Buffer.from('s'), 5_000);
      t.put('later', Buffer.from('l'), 50_000);
    });
    expect(stores.begin(0).messages()).toEqual([{ key: 'all', value: '[]', partition: 0 }]);
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
    clock = 10_000; // 'soon' expired meanwhile, its tombstone never written
    stores = make();
    await stores.ready(0);
    const txn = stores.begin(0);
    expect([txn.has('soon'), txn.has('later'), txn.get('later')?.value.toString()]).toEqual([false, true, 'l']);
    expect(stores.count(0)).toBe(1);
    await stores.close();
  });

  it('expires entries whose window passed with tombstones in the changelog, a bounded sweep step at a time', async () => {
    const changelog = new FakeChangelog();
    const registry = createMetricsRegistry('test');
    const stores = new StateStores({ name: 'dedupe', dir, changelogTopic: 'g-dedupe-changelog', source: changelog, logger, metrics: new StateMetrics(registry), sweep: { stepEntries: 3, stepIntervalMs: 100, roundIntervalMs: 10_000 } });
    await stores.ready(0);
    transact(stores, changelog, 0, (t) => {
      for (let i = 0; i < 5; i++) t.put(`k${i}`, Buffer.from('v'), 1000 + i);
      t.put('late', Buffer.from('v'), 50_000);
    });
    await stores.flushed();
    let tombstones: Message[] = [];
    transact(stores, changelog, 0, (t) => {
      expect(t.expireDue(1003)).toBe(3); // the first step: k0, k1, k2
      expect(t.expireDue(1050)).toBe(0); // the next step is not due yet
      tombstones = t.messages();
    });
    expect(tombstones.map((m) => [m.key, m.value, m.partition])).toEqual([
      ['k0', null, 0],
      ['k1', null, 0],
      ['k2', null, 0],
    ]);
    const txn = stores.begin(0);
    expect(['k0', 'k2', 'k3', 'late'].map((k) => txn.get(k) !== undefined)).toEqual([false, false, true, true]);
    transact(stores, changelog, 0, (t) => expect(t.expireDue(2000)).toBe(2)); // k3, k4, and 'late' is not due
    await stores.flushed();
    transact(stores, changelog, 0, (t) => expect(t.expireDue(60_000)).toBe(0)); // nothing after 'late': the round ends
    transact(stores, changelog, 0, (t) => expect(t.expireDue(65_000)).toBe(0)); // the next round waits for the round interval
    transact(stores, changelog, 0, (t) => expect(t.expireDue(70_000)).toBe(1)); // and starts over: 'late'
    await stores.flushed();
    expect(stores.count(0)).toBe(0);
    expect(await registry.getSingleMetricAsString('sluice_state_expired_total')).toMatch(/\} 6$/m);
    await stores.close();
  });
});
