import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { randomUUID } from 'node:crypto';
import type { KafkaMessage, Message } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { decodeEntry, encodeEntry } from '../../processors/core/state/partition-store.js';
import { StateStores } from '../../processors/core/state/state-stores.js';
import { DEDUPE_CHANGELOG_CODEC, dedupeKey, eventIdOf, IDS_PER_RECORD } from '../../processors/normalizer/dedupe.js';
import { defaultSchemasDir, loadContract } from '../../processors/normalizer/contract.js';
import { routeRecords, type RouteOptions } from '../../processors/normalizer/transform.js';
import { debeziumKey, debeziumValue, stagingRow } from '../support/debezium.js';
import { FakeChangelog } from '../support/fake-changelog.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-05T00:00:00Z');
const contract = loadContract(defaultSchemasDir(), 'agent-event');
const type = avro.Type.forSchema(contract.schema as avro.Schema, { typeHook: exactLongHook });
const base: RouteOptions = { rules: { baseCurrency: 'USD' }, contract, encode: async (v: unknown) => type.toBuffer(v), processor: 'normalizer' };
const windowMs = 45 * DAY;

let offset = 0;
const cdc = (op: 'c' | 'r' | 'u', row: ReturnType<typeof stagingRow>) => ({
  topic: 'cdc',
  partition: 0,
  message: { key: debeziumKey(row.event_id), value: debeziumValue(op, { after: row }), offset: String(offset++), timestamp: '0', headers: {}, attributes: 0 } as KafkaMessage,
});

const logger = createLogger({ name: 'test', level: 'silent' });
let dir: string;
let changelog: FakeChangelog;
let stores: StateStores;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-dedupe-test-'));
  changelog = new FakeChangelog();
  stores = open();
  await stores.ready(0);
});
let clock = NOW;
const open = () => new StateStores({ name: 'dedupe', dir, changelogTopic: 'g-dedupe-changelog', codec: DEDUPE_CHANGELOG_CODEC, source: changelog, logger, now: () => clock });
/** The event ids a transaction's changelog records carry (expiry, ids), read back as a restore reads them. */
const idsOf = (messages: Message[]) =>
  messages.flatMap((m) => DEDUPE_CHANGELOG_CODEC.decode({ key: Buffer.from(m.key as string), value: m.value as Buffer }).map((c) => [eventIdOf(c.key), c.entry && decodeEntry(c.entry)!.expiresAt]));
afterEach(async () => {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Routes a chunk in one transaction with the dedupe state and commits it (changelog, then local store). */
async function chunk(records: ReturnType<typeof cdc>[], now = NOW) {
  const txn = stores.begin(0);
  const out = await routeRecords(records, { ...base, now: () => now, dedupe: { state: txn, options: { windowMs } } });
  stores.committed(txn, changelog.commit(0, txn.messages()));
  await stores.flushed();
  return { out, changelog: txn.messages() };
}

describe('the dedupe changelog format', () => {
  it('keys a UUID event_id by its 16 bytes and anything else by its text', () => {
    const id = '0b8f4b6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
    expect(dedupeKey(id)).toHaveLength(22);
    expect(Buffer.from(dedupeKey(id), 'base64url').toString('hex')).toBe(id.replaceAll('-', ''));
    expect(eventIdOf(dedupeKey(id))).toBe(id);
    for (const other of ['not-a-uuid', id.toUpperCase(), `${id}x`]) {
      expect(dedupeKey(other)).toBe(`~${other}`);
      expect(eventIdOf(dedupeKey(other))).toBe(other);
    }
  });

  it('packs the ids of one expiry into records of at most IDS_PER_RECORD, writes other ids one a record, and reads both back', () => {
    const ids = Array.from({ length: IDS_PER_RECORD + 5 }, () => randomUUID());
    const entry = encodeEntry(Buffer.alloc(0), 1_000_000);
    const changes = [...ids.map((id) => ({ key: dedupeKey(id), entry })), { key: dedupeKey('odd-id'), entry }, { key: dedupeKey(ids[0]!), entry: null }];
    const messages = DEDUPE_CHANGELOG_CODEC.encode(changes, 4);
    expect(messages.map((m) => [m.key, m.partition, (m.value as Buffer).length])).toEqual([
      ['odd-id', 4, 8],
      [`ids:${dedupeKey(ids[0]!)}`, 4, 8 + 16 * IDS_PER_RECORD],
      [`ids:${dedupeKey(ids[IDS_PER_RECORD]!)}`, 4, 8 + 16 * 5],
    ]);
    const back = messages.flatMap((m) => DEDUPE_CHANGELOG_CODEC.decode({ key: Buffer.from(m.key as string), value: m.value as Buffer }));
    expect(back.map((c) => eventIdOf(c.key)).sort()).toEqual([...ids, 'odd-id'].sort());
    expect(back.every((c) => c.entry !== null && decodeEntry(c.entry)!.expiresAt === 1_000_000)).toBe(true);
  });

  it('reads records of the one-id-per-record format (key the event_id), tombstones included', () => {
    const id = randomUUID();
    const entry = encodeEntry(Buffer.alloc(0), 7);
    expect(DEDUPE_CHANGELOG_CODEC.decode({ key: Buffer.from(id), value: entry })).toEqual([{ key: dedupeKey(id), entry }]);
    expect(DEDUPE_CHANGELOG_CODEC.decode({ key: Buffer.from(id), value: null })).toEqual([{ key: dedupeKey(id), entry: null }]);
    expect(DEDUPE_CHANGELOG_CODEC.decode({ key: Buffer.from(`ids:${dedupeKey(id)}`), value: Buffer.alloc(8 + 15) })).toEqual([]);
    expect(DEDUPE_CHANGELOG_CODEC.decode({ key: null, value: entry })).toEqual([]);
  });
});

describe('durable dedupe by event_id in the normalizer', () => {
  it('emits an event once: copies in the same transaction, in a later one, and a re-snapshot are counted, not emitted', async () => {
    const a = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    const b = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    const first = await chunk([cdc('c', a), cdc('c', a), cdc('c', b)]);
    expect(first.out.events).toHaveLength(2);
    expect(first.out.stats.duplicates).toEqual({ insert: 1 });
    // One packed record for the transaction's two new ids: 8-byte expiry + 16 bytes an id.
    expect(first.changelog).toHaveLength(1);
    expect(first.changelog[0]).toMatchObject({ partition: 0, key: `ids:${dedupeKey(a.event_id)}` });
    expect((first.changelog[0]!.value as Buffer).length).toBe(8 + 2 * 16);
    expect(idsOf(first.changelog)).toEqual([
      [a.event_id, NOW + windowMs],
      [b.event_id, NOW + windowMs],
    ]);

    const second = await chunk([cdc('r', a), cdc('c', b), cdc('r', b)]);
    expect(second.out.events).toHaveLength(0);
    expect(second.out.stats.duplicates).toEqual({ snapshot: 2, insert: 1 });
    expect(second.out.stats.records).toEqual({ r: 2, c: 1 });
    expect(second.changelog).toHaveLength(0);
  });

  it('remembers across a restart: a store rebuilt from the changelog alone still knows the ids', async () => {
    const a = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    await chunk([cdc('c', a)]);
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
    stores = open();
    await stores.ready(0);
    const again = await chunk([cdc('r', a)]);
    expect(again.out.events).toHaveLength(0);
    expect(again.out.stats.duplicates).toEqual({ snapshot: 1 });
  });

  it('does not remember what it did not emit (dead letters, updates)', async () => {
    const bad = stagingRow({ currency: 'EUR' });
    const good = stagingRow();
    const out = await chunk([cdc('c', bad), cdc('u', good)]);
    expect(out.out.events).toHaveLength(0);
    expect(out.changelog).toHaveLength(0);
    expect(out.out.stats.duplicates).toEqual({});
  });

  it('forgets ids after the window (no tombstone: restore and retention forget them) and counts an old copy that comes back as beyond the window', async () => {
    const a = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    await chunk([cdc('c', a)]);
    const later = NOW + windowMs + 1;
    const b = stagingRow({ received_at: '2027-01-19T00:00:00Z', occurred_at: '2027-01-19T00:00:00Z' });
    const expiring = await chunk([cdc('c', b)], later);
    expect(idsOf(expiring.changelog)).toEqual([[b.event_id, later + windowMs]]);
    expect(stores.count(0)).toBe(1); // a's entry swept from the local store
    // A store rebuilt from the changelog after the window does not bring a back.
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
    clock = later;
    stores = open();
    await stores.ready(0);
    expect([stores.begin(0).has(dedupeKey(a.event_id)), stores.begin(0).has(dedupeKey(b.event_id))]).toEqual([false, true]);
    clock = NOW;
    expect(expiring.out.stats.beyondWindow).toEqual({});
    // The forgotten copy: emitted (it cannot be told from a new event) and counted.
    const copy = await chunk([cdc('r', a)], later + 1000);
    expect(copy.out.events).toHaveLength(1);
    expect(copy.out.stats.beyondWindow).toEqual({ snapshot: 1 });
    expect(copy.out.stats.duplicates).toEqual({});
  });
});
