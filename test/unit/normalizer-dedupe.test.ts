import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import type { KafkaMessage } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { StateStores } from '../../processors/core/state/state-stores.js';
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
  stores = new StateStores({ name: 'dedupe', dir, changelogTopic: 'g-dedupe-changelog', source: changelog, logger });
  await stores.ready(0);
});
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

describe('durable dedupe by event_id in the normalizer', () => {
  it('emits an event once: copies in the same transaction, in a later one, and a re-snapshot are counted, not emitted', async () => {
    const a = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    const b = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    const first = await chunk([cdc('c', a), cdc('c', a), cdc('c', b)]);
    expect(first.out.events).toHaveLength(2);
    expect(first.out.stats.duplicates).toEqual({ insert: 1 });
    expect(first.changelog.map((m) => m.key)).toEqual([a.event_id, b.event_id]);
    expect(first.changelog.every((m) => m.partition === 0 && m.value !== null)).toBe(true);

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
    stores = new StateStores({ name: 'dedupe', dir, changelogTopic: 'g-dedupe-changelog', source: changelog, logger });
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

  it('forgets ids after the window (tombstones) and counts an old copy that comes back as beyond the window', async () => {
    const a = stagingRow({ received_at: '2026-12-04T10:00:00Z', occurred_at: '2026-12-04T09:00:00Z' });
    await chunk([cdc('c', a)]);
    const later = NOW + windowMs + 1;
    const b = stagingRow({ received_at: '2027-01-19T00:00:00Z', occurred_at: '2027-01-19T00:00:00Z' });
    const expiring = await chunk([cdc('c', b)], later);
    expect(expiring.changelog.map((m) => [m.key, m.value === null])).toEqual([
      [a.event_id, true],
      [b.event_id, false],
    ]);
    expect(expiring.out.stats.beyondWindow).toEqual({});
    // The forgotten copy: emitted (it cannot be told from a new event) and counted.
    const copy = await chunk([cdc('r', a)], later + 1000);
    expect(copy.out.events).toHaveLength(1);
    expect(copy.out.stats.beyondWindow).toEqual({ snapshot: 1 });
    expect(copy.out.stats.duplicates).toEqual({});
  });
});
