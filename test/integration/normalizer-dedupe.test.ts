import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type Kafka, type Message } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../processors/core/kafka/client.js';
import { changelogTopicName } from '../../processors/core/state/changelog.js';
import { DEDUPE_CHANGELOG_CODEC, eventIdOf } from '../../processors/normalizer/dedupe.js';
import { startNormalizer, type RunningNormalizer } from '../../processors/normalizer/normalizer.js';
import { buildDist, ROOT } from '../support/build.js';
import { collectUntilQuiet } from '../support/consume.js';
import { debeziumKey, debeziumValue, stagingRow, type StagingRow } from '../support/debezium.js';
import { registryReader } from '../support/registry-reader.js';
import { eventually, requireServer, testSettings } from '../support/servers.js';

/**
 * Durable dedupe by event_id, against the real broker and registry: each test has a CDC
 * topic of its own (4 partitions, keyed by event_id as Debezium keys it, records in the
 * connector's exact JSON) into which it writes the copies Debezium produces under faults
 * (a record sent again, a re-snapshot), and counts event ids on the events topic with a
 * read_committed consumer.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const PARTITIONS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kafka: Kafka = createKafka(settings.kafka, { region: settings.s3.region });
const reader = registryReader(settings.registry.url);
const cleanup: { topics: string[]; groups: string[]; dirs: string[]; stops: (() => Promise<unknown>)[] } = { topics: [], groups: [], dirs: [], stops: [] };

interface Case {
  name: string;
  cdcTopic: string;
  eventsTopic: string;
  groupId: string;
  stateDir: string;
  env(instance: string, extra?: Record<string, string>): NodeJS.ProcessEnv;
}

async function newCase(name: string): Promise<Case> {
  const base = `test.dedupe.${run}.${name}`;
  const c: Case = {
    name,
    cdcTopic: `${base}.cdc`,
    eventsTopic: `${base}.events`,
    groupId: `test-dedupe-${run}-${name}`,
    stateDir: mkdtempSync(join(tmpdir(), `sluice-dedupe-${name}-`)),
    env: (instance, extra = {}) => ({
      ...process.env,
      SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn',
      SLUICE_NORMALIZER_CDC_TOPIC: c.cdcTopic,
      SLUICE_NORMALIZER_EVENTS_TOPIC: c.eventsTopic,
      SLUICE_NORMALIZER_DLQ_TOPIC: `${base}.dlq`,
      SLUICE_NORMALIZER_GROUP_ID: c.groupId,
      SLUICE_NORMALIZER_SUBJECT: `${base}.events-value`,
      SLUICE_NORMALIZER_INSTANCE_ID: instance,
      SLUICE_NORMALIZER_STATE_DIR: c.stateDir,
      SLUICE_NORMALIZER_HTTP_PORT: '0',
      SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: '6000',
      ...extra,
    }),
  };
  cleanup.topics.push(c.cdcTopic, c.eventsTopic, `${base}.dlq`, changelogTopicName(c.groupId, 'dedupe'));
  cleanup.groups.push(c.groupId);
  cleanup.dirs.push(c.stateDir);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: c.cdcTopic, numPartitions: PARTITIONS, replicationFactor: 1 }] });
  } finally {
    await admin.disconnect();
  }
  return c;
}

const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
let producerReady: Promise<void> | undefined;

/** Writes CDC records as the connector does: key {"event_id"}, murmur2-partitioned like Connect's producer. */
async function produce(c: Case, changes: { op: 'c' | 'r'; row: StagingRow }[]): Promise<void> {
  producerReady ??= producer.connect();
  await producerReady;
  const messages: Message[] = changes.map(({ op, row }) => ({ key: debeziumKey(row.event_id), value: debeziumValue(op, { after: row }) }));
  await producer.send({ topic: c.cdcTopic, messages, acks: -1 });
}

const rows = (c: Case, n: number): StagingRow[] =>
  Array.from({ length: n }, (_, i) => stagingRow({ agent_id: `agent-${run}-${c.name}-${i % 13}`, amount_minor: BigInt(100 + i), received_at: new Date().toISOString(), occurred_at: new Date(Date.now() - 1000).toISOString() }));

/** Event ids on the events topic (read_committed) and how often each appears, once `expected` distinct ids are there. */
async function eventCounts(c: Case, expected: number, timeoutMs = 60_000): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  const decoded = new Map<string, string>();
  const idOf = async (value: Buffer) => {
    const k = value.toString('base64');
    let id = decoded.get(k);
    if (!id) decoded.set(k, (id = ((await reader.decode(value)) as { id: string }).id));
    return id;
  };
  const messages = await collectUntilQuiet(kafka, c.eventsTopic, (ms) => ms.length >= expected, { timeoutMs, quietMs: 2500 });
  for (const m of messages) {
    const id = await idOf(m.value!);
    ids.set(id, (ids.get(id) ?? 0) + 1);
  }
  return ids;
}

function verdict(counts: Map<string, number>, expected: StagingRow[]) {
  const want = new Set(expected.map((r) => r.event_id));
  return {
    distinct: counts.size,
    missing: [...want].filter((id) => !counts.has(id)).length,
    doubled: [...counts.values()].filter((n) => n > 1).length,
    unexpected: [...counts.keys()].filter((id) => !want.has(id)).length,
  };
}

async function metric(n: RunningNormalizer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await n.metrics.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x) && !('metricName' in v && String(v.metricName).endsWith('_bucket')))
    .reduce((sum, v) => sum + v.value, 0);
}

async function start(c: Case, instance: string): Promise<RunningNormalizer> {
  const n = await startNormalizer({ env: c.env(instance) });
  cleanup.stops.push(() => n.stop());
  return n;
}

afterAll(async () => {
  for (const stop of cleanup.stops) await stop().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: cleanup.topics }).catch(() => undefined);
  await admin.deleteGroups(cleanup.groups).catch(() => undefined);
  await admin.disconnect();
  for (const d of cleanup.dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('normalizer durable dedupe by event_id (state store + changelog, in the output transactions)', () => {
  it('emits an event once when its CDC record comes again and when the table is re-snapshotted', async () => {
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    const c = await newCase('copies');
    const n = await start(c, 'a');
    const batch = rows(c, 200);
    await produce(c, batch.map((row) => ({ op: 'c', row })));
    // The same records again (a Connect task re-sending what it had not flushed)...
    await produce(c, batch.slice(0, 50).map((row) => ({ op: 'c', row })));
    // ...and a re-snapshot of the table, with new rows after it.
    const after = rows(c, 20);
    await produce(c, [...batch.map((row) => ({ op: 'r' as const, row })), ...after.map((row) => ({ op: 'c' as const, row }))]);

    const counts = await eventCounts(c, 220);
    expect(verdict(counts, [...batch, ...after])).toEqual({ distinct: 220, missing: 0, doubled: 0, unexpected: 0 });
    await eventually(async () => ((await metric(n, 'sluice_normalizer_duplicates_total')) >= 250 ? true : undefined), 20_000, 'duplicates counted');
    expect(await metric(n, 'sluice_normalizer_duplicates_total', { kind: 'insert' })).toBe(50);
    expect(await metric(n, 'sluice_normalizer_duplicates_total', { kind: 'snapshot' })).toBe(200);
    expect(await metric(n, 'sluice_normalizer_beyond_dedupe_window_total')).toBe(0);

    // Every remembered id is in the changelog (one partition per CDC partition), a transaction's ids packed in a record.
    const admin = kafka.admin();
    await admin.connect();
    const [meta] = (await admin.fetchTopicMetadata({ topics: [changelogTopicName(c.groupId, 'dedupe')] })).topics;
    const configs = await admin.describeConfigs({ resources: [{ type: 2, name: changelogTopicName(c.groupId, 'dedupe'), configNames: ['cleanup.policy', 'retention.ms'] }], includeSynonyms: false });
    await admin.disconnect();
    expect(meta?.partitions).toHaveLength(PARTITIONS);
    expect(Object.fromEntries(configs.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))).toEqual({ 'cleanup.policy': 'compact,delete', 'retention.ms': String(46 * 86_400_000) });
    const ids = (ms: Pick<Message, 'key' | 'value'>[]) => ms.flatMap((m) => DEDUPE_CHANGELOG_CODEC.decode({ key: m.key as Buffer, value: m.value as Buffer | null })).map((ch) => eventIdOf(ch.key));
    const changelog = await collectUntilQuiet(kafka, changelogTopicName(c.groupId, 'dedupe'), (ms) => ids(ms).length >= 220, { quietMs: 1000 });
    expect(ids(changelog).sort()).toEqual([...batch, ...after].map((r) => r.event_id).sort());
    // Packed: at most one record per transaction (each holds every id its transaction emitted).
    expect(changelog.length).toBeLessThanOrEqual(await metric(n, 'sluice_normalizer_transactions_total', { outcome: 'committed' }));
  }, 90_000);

  it('keeps dedupe when the local store is deleted: the state is restored from the changelog', async () => {
    const c = await newCase('wiped');
    let n = await start(c, 'a');
    const first = rows(c, 150);
    await produce(c, first.map((row) => ({ op: 'c', row })));
    await eventCounts(c, 150);
    await n.stop();
    rmSync(c.stateDir, { recursive: true, force: true });

    n = await start(c, 'a');
    const later = rows(c, 30);
    await produce(c, [...first.map((row) => ({ op: 'r' as const, row })), ...later.map((row) => ({ op: 'c' as const, row }))]);
    const counts = await eventCounts(c, 180);
    expect(verdict(counts, [...first, ...later])).toEqual({ distinct: 180, missing: 0, doubled: 0, unexpected: 0 });
    expect(await metric(n, 'sluice_normalizer_duplicates_total', { kind: 'snapshot' })).toBe(150);
    // The 150 ids came back from a few packed changelog records.
    expect(await metric(n, 'sluice_state_restored_records_total')).toBeGreaterThan(0);
    expect(await metric(n, 'sluice_state_entries')).toBeGreaterThanOrEqual(150);
    expect(await metric(n, 'sluice_state_restore_seconds', { kind: 'full' })).toBeGreaterThan(0);
  }, 90_000);

  it('keeps dedupe across a rebalance: partitions moved to a second instance and back bring their state', async () => {
    const c = await newCase('rebalance');
    const a = await start(c, 'a');
    const first = rows(c, 300);
    await produce(c, first.map((row) => ({ op: 'c', row })));
    await eventCounts(c, 300);

    // A second instance joins: it takes partitions A wrote, and their state from the changelog.
    const b = await start(c, 'b');
    await eventually(async () => ((await metric(b, 'sluice_state_restore_seconds', { kind: 'full' })) > 0 ? true : undefined), 40_000, 'instance b restored a partition');
    const second = rows(c, 60);
    await produce(c, [...first.map((row) => ({ op: 'r' as const, row })), ...second.map((row) => ({ op: 'c' as const, row }))]);
    let counts = await eventCounts(c, 360);
    expect(verdict(counts, [...first, ...second])).toEqual({ distinct: 360, missing: 0, doubled: 0, unexpected: 0 });
    const byB = await metric(b, 'sluice_normalizer_duplicates_total');
    expect(byB).toBeGreaterThan(0); // b dropped copies of events a had emitted
    expect(byB).toBeLessThan(300); // and a kept some partitions

    // B leaves: A takes its partitions back and catches up with what B wrote meanwhile.
    await b.stop();
    const third = rows(c, 40);
    await produce(c, [...[...first, ...second].map((row) => ({ op: 'c' as const, row })), ...third.map((row) => ({ op: 'c' as const, row }))]);
    counts = await eventCounts(c, 400);
    expect(verdict(counts, [...first, ...second, ...third])).toEqual({ distinct: 400, missing: 0, doubled: 0, unexpected: 0 });
    await eventually(async () => ((await metric(a, 'sluice_normalizer_duplicates_total', { kind: 'insert' })) >= 360 ? true : undefined), 20_000, 'a dropped every copy');
  }, 120_000);

  it('SIGKILLed twice mid-stream with copies crossing the crashes: every event_id exactly once', async () => {
    const c = await newCase('sigkill');
    const main = buildDist('processors/normalizer/main.js');
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    let output = '';
    // Small transactions so a kill lands inside one; the same instance id, so each new process fences the killed one.
    const env = c.env('k', { SLUICE_NORMALIZER_HTTP_PORT: String(port), SLUICE_NORMALIZER_MAX_BATCH_RECORDS: '40' });
    const startChild = () => {
      const child = spawn(process.execPath, [main], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d: Buffer) => void (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => void (output += d.toString()));
      return child;
    };
    const exited = (ch: ChildProcess) => new Promise<void>((r) => (ch.exitCode !== null || ch.signalCode !== null ? r() : ch.once('exit', () => r())));
    const committed = async () => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return [...text.matchAll(/^sluice_normalizer_records_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
      } catch {
        return 0;
      }
    };

    let child = startChild();
    cleanup.stops.push(async () => child.kill('SIGKILL'));
    const all: StagingRow[] = [];
    const producing = (async () => {
      for (let i = 0; i < 8; i++) {
        const fresh = rows(c, 100);
        // Copies of earlier events, as inserts again and as snapshot reads, beside new ones.
        const copies = all.filter((_, j) => (j + i) % 7 === 0).map((row, j) => ({ op: (j % 2 ? 'r' : 'c') as 'c' | 'r', row }));
        all.push(...fresh);
        await produce(c, [...fresh.map((row) => ({ op: 'c' as const, row })), ...copies]);
        await sleep(250);
      }
    })();
    for (let k = 0; k < 2; k++) {
      await eventually(async () => ((await committed()) > 0 ? true : undefined), 45_000, `normalizer process ${k + 1} committing`);
      await sleep(Math.random() * 300);
      child.kill('SIGKILL');
      await exited(child);
      child = startChild();
    }
    await producing;
    // Every event once more after the last restart.
    await produce(c, all.map((row) => ({ op: 'r' as const, row })));
    const counts = await eventCounts(c, all.length, 90_000);
    expect(verdict(counts, all), output.slice(-3000)).toEqual({ distinct: all.length, missing: 0, doubled: 0, unexpected: 0 });
    child.kill('SIGTERM');
    await exited(child);
  }, 150_000);
});
