import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Partitioners, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../processors/core/errors/retry.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { buildDist, ROOT } from '../support/build.js';
import { collectUntilQuiet } from '../support/consume.js';
import { debeziumKey, debeziumValue, stagingRow } from '../support/debezium.js';
import { freePort } from '../support/export-harness.js';
import { createTopics, groupAssignment } from '../support/kafka.js';
import { registryReader } from '../support/registry-reader.js';
import { eventually, hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * Scale-out: two normalizer processes (distinct instance ids, one group) share a
 * 6-partition CDC topic; one is SIGKILLed mid-stream; the survivor takes its partitions
 * over (after the session timeout) and an independent read_committed reader sees every
 * valid event once on the events topic, and every invalid record once on the DLQ.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const PARTITIONS = 6;
const CHUNKS = 50;
const CHUNK = 120;
/** One record in 20 is invalid (another currency than the base one): it goes to the DLQ. */
const invalid = (i: number) => i % 20 === 19;
const cdcTopic = `test.normalizer-scale.${run}.cdc`;
const eventsTopic = `test.normalizer-scale.${run}.events`;
const dlqTopic = `test.normalizer-scale.${run}.dlq`;
const groupId = `test-normalizer-scale-${run}`;
const SESSION_TIMEOUT_MS = 6000;

describe('normalizer scale-out: two instances share the CDC partitions, one is SIGKILLed, every event exactly once', () => {
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  let main: string;
  const children: ChildProcess[] = [];
  let output = '';

  async function startInstance(name: string): Promise<{ child: ChildProcess; port: number }> {
    const port = await freePort();
    const child = spawn(process.execPath, [main], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SLUICE_LOG_LEVEL: 'warn',
        SLUICE_NORMALIZER_CDC_TOPIC: cdcTopic,
        SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
        SLUICE_NORMALIZER_DLQ_TOPIC: dlqTopic,
        SLUICE_NORMALIZER_SUBJECT: `test.normalizer-scale.${run}.events-value`,
        SLUICE_NORMALIZER_GROUP_ID: groupId,
        SLUICE_NORMALIZER_INSTANCE_ID: `${name}-${run}`,
        SLUICE_NORMALIZER_HTTP_PORT: String(port),
        // Small transactions, so the kill lands inside one; a short session, so the move is quick.
        SLUICE_NORMALIZER_MAX_BATCH_RECORDS: '40',
        SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
      },
    });
    child.stdout!.on('data', (d: Buffer) => void (output += `[${name}] ${d.toString()}`));
    child.stderr!.on('data', (d: Buffer) => void (output += `[${name}] ${d.toString()}`));
    children.push(child);
    return { child, port };
  }

  async function committedRecords(port: number): Promise<number> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return [...text.matchAll(/^sluice_normalizer_records_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    } catch {
      return 0;
    }
  }

  const exited = (c: ChildProcess) =>
    new Promise<number | null>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(c.exitCode) : c.once('exit', (code) => resolve(code))));

  beforeAll(async () => {
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    await requireServer('schema registry', hostPortOf(settings.registry.url));
    main = buildDist('processors/normalizer/main.js');
    await createTopics(kafka, [{ topic: cdcTopic, numPartitions: PARTITIONS }]);
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [cdcTopic, eventsTopic, dlqTopic] }).catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
    if (process.env.SLUICE_TEST_VERBOSE) console.log(output);
  });

  it(
    'moves the killed instance partitions to the survivor and loses and duplicates nothing (read_committed)',
    async () => {
      const rows = Array.from({ length: CHUNKS * CHUNK }, (_, i) =>
        stagingRow({ agent_id: `agent-${run}-${i % 61}`, customer_id: `customer-${i}`, amount_minor: BigInt(1 + i), ...(invalid(i) ? { currency: 'EUR' } : {}) }),
      );
      const a = await startInstance('a');
      const b = await startInstance('b');

      // Both are members and each holds some of the 6 partitions.
      const shared = await eventually(async () => {
        const g = await groupAssignment(kafka, groupId, cdcTopic);
        return g.state === 'Stable' && g.members.length === 2 && g.members.every((m) => m.partitions.length > 0) ? g.members.map((m) => m.partitions) : undefined;
      }, 60_000, 'both normalizer instances holding CDC partitions');
      expect(shared.flat().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5]);

      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      let sent = 0;
      const producing = (async () => {
        for (let c = 0; c < CHUNKS; c++) {
          const slice = rows.slice(c * CHUNK, (c + 1) * CHUNK);
          // Keyed by event_id, as Debezium keys the table: the rows spread over the 6 partitions.
          await producer.send({ topic: cdcTopic, acks: -1, messages: slice.map((r) => ({ key: debeziumKey(r.event_id), value: debeziumValue('c', { after: r }) })) });
          sent += slice.length;
          await sleep(150);
        }
      })();

      // Both commit their share, then one dies mid-stream.
      await eventually(async () => ((await committedRecords(a.port)) > 0 && (await committedRecords(b.port)) > 0 ? true : undefined), 60_000, 'both instances committing');
      await sleep(500 + Math.random() * 500);
      const killedAfter = { a: await committedRecords(a.port), b: await committedRecords(b.port), sent };
      const killedAt = Date.now();
      a.child.kill('SIGKILL');
      await exited(a.child);
      const moved = await eventually(async () => {
        const g = await groupAssignment(kafka, groupId, cdcTopic);
        return g.state === 'Stable' && g.members.length === 1 && g.members[0]!.partitions.length === PARTITIONS ? Date.now() : undefined;
      }, 60_000, 'the survivor holding all 6 partitions');
      const survivorBefore = await committedRecords(b.port);
      await producing;
      await producer.disconnect();
      expect(sent).toBe(rows.length);

      const valid = rows.filter((_, i) => !invalid(i));
      const bad = rows.filter((_, i) => invalid(i));
      const isOurs = (m: KafkaMessage) => m.key?.toString().startsWith(`agent-${run}-`) ?? false;
      const events = await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(isOurs).length >= valid.length, { timeoutMs: 90_000, quietMs: 3000 });
      const reader = registryReader(settings.registry.url);
      const amountOf = new Map(valid.map((r) => [r.event_id, BigInt(r.amount_minor!)]));
      const counts = new Map<string, number>();
      for (const m of events.filter(isOurs)) {
        const v = (await reader.decode(m.value!)) as { id: string; data: Record<string, { amount_minor: bigint }> };
        counts.set(v.id, (counts.get(v.id) ?? 0) + 1);
        expect(amountOf.get(v.id), `event ${v.id} is one of the valid rows`).toBeDefined();
        expect(v.data['io.sluice.events.DepositMade']!.amount_minor).toBe(amountOf.get(v.id));
      }
      const missing = valid.filter((r) => !counts.has(r.event_id)).length;
      const doubled = [...counts.values()].filter((n) => n > 1).length;
      expect({ missing, doubled, distinct: counts.size }).toEqual({ missing: 0, doubled: 0, distinct: valid.length });

      // The dead letters, once each too (they travel in the same transactions).
      const letters = await collectUntilQuiet(kafka, dlqTopic, (ms) => ms.length >= bad.length, { timeoutMs: 30_000, quietMs: 1000 });
      const letterIds = letters.map((m) => (JSON.parse(m.key!.toString()) as { event_id: string }).event_id);
      expect(new Set(letterIds).size).toBe(letterIds.length);
      expect(new Set(letterIds)).toEqual(new Set(bad.map((r) => r.event_id)));

      // The survivor did the rest, the killed one's partitions included.
      expect(await committedRecords(b.port)).toBeGreaterThan(survivorBefore);
      console.log(
        `normalizer scale-out: partitions ${JSON.stringify(shared)}; instance a SIGKILLed after ${killedAfter.a} records (b: ${killedAfter.b}, ${killedAfter.sent} of ${rows.length} sent); ` +
          `b held all ${PARTITIONS} partitions ${((moved - killedAt) / 1000).toFixed(1)} s later (session timeout ${SESSION_TIMEOUT_MS / 1000} s); ${valid.length} events and ${bad.length} dead letters exactly once`,
      );

      b.child.kill('SIGTERM');
      expect(await exited(b.child)).toBe(0);
    },
    150_000,
  );
});
