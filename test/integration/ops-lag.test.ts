import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../processors/core/kafka/client.js';
import { consumerLag } from '../../processors/ops/lag.js';
import { cli, ensureBuilt, requireServerWithin } from '../support/ops-lake.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 6, lag: for a consumer group with a known lag (records produced with known
 * timestamps, some committed by a plain kafkajs consumer), `consumerLag` and
 * `sluice lag --json --group G` report per partition what the broker reports through
 * kafkajs admin (log end minus committed offset), and in seconds the age of the oldest
 * uncommitted record: > 0 where the group lags, 0 where it is caught up.
 */

const settings = testSettings();
const id = randomUUID().slice(0, 8);
const topic = `test.ops-lag.${id}`;
const group = `test-ops-lag-${id}`;
/** Records per partition, and how many of them the group commits. */
const produced = [120, 50, 30];
const committedTarget = [70, 50, 10];
/** Record k of a partition was created at base + k seconds. */
const base = Date.now() - 600_000;

let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  await requireServerWithin('Kafka', settings.kafka.brokers[0]!);
  ensureBuilt();
  kafka = createKafka(settings.kafka, { region: settings.s3.region });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  const producer = kafka.producer();
  await producer.connect();
  for (const [partition, n] of produced.entries()) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, k) => ({ partition, key: `p${partition}-${k}`, value: `v${k}`, timestamp: String(base + k * 1000) })) });
  }
  await producer.disconnect();

  // A plain consumer reads and commits exactly committedTarget[p] records of each partition.
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const done = new Set<number>();
    const timer = setTimeout(() => reject(new Error('the consumer did not commit its offsets within 30 s')), 30_000);
    void consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const want = committedTarget[batch.partition]!;
          if (done.has(batch.partition)) return;
          if (batch.messages.some((m) => Number(m.offset) >= want - 1) || want === 0) {
            await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(want) }]);
            done.add(batch.partition);
            if (done.size === produced.length) {
              clearTimeout(timer);
              resolve();
            }
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
});

afterAll(async () => {
  await admin?.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin?.disconnect();
});

/** The broker's view through kafkajs admin: partition -> end - committed. */
async function brokerView(): Promise<Map<number, { committed: string; end: string; lag: number }>> {
  const ends = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition);
  const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map(
    ends.map((e) => {
      const committed = offsets!.partitions.find((p) => p.partition === e.partition)!.offset;
      return [e.partition, { committed, end: e.high, lag: Number(e.high) - Number(committed) }];
    }),
  );
}

describe('sluice lag', () => {
  it('consumerLag equals the broker view per partition, with the age of the oldest uncommitted record', async () => {
    const broker = await brokerView();
    expect([...broker.values()].map((b) => b.lag)).toEqual(produced.map((n, p) => n - committedTarget[p]!));
    const rows = await consumerLag(kafka, admin, { groups: [group], seconds: true });
    expect(rows.map((r) => ({ group: r.group, topic: r.topic, partition: r.partition, committed: r.committed, end: r.end, lag: r.lag }))).toEqual(
      [...broker].map(([partition, b]) => ({ group, topic, partition, committed: b.committed, end: b.end, lag: BigInt(b.lag) })),
    );
    const now = Date.now();
    for (const r of rows) {
      const p = r.partition;
      if (committedTarget[p] === produced[p]) expect(r.lagSeconds, `partition ${p} is caught up`).toBe(0);
      else {
        // The oldest uncommitted record is the one at the committed offset: created at base + committed s.
        const age = (now - (base + committedTarget[p]! * 1000)) / 1000;
        expect(r.lagSeconds, `partition ${p}`).toBeGreaterThan(0);
        expect(Math.abs(r.lagSeconds! - age), `partition ${p}: ${r.lagSeconds} s, expected about ${age} s`).toBeLessThan(15);
      }
    }
  }, 60_000);

  it('`sluice lag --json --group G` prints the same, one JSON object per partition', async () => {
    const run = await cli(['lag', '--json', '--group', group]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { group: string; topic: string; partition: number; committed: string | null; end: string; lag: number; lagSeconds?: number });
    const broker = await brokerView();
    expect(lines.map(({ lagSeconds: _s, ...rest }) => rest)).toEqual([...broker].map(([partition, b]) => ({ group, topic, partition, committed: b.committed, end: b.end, lag: b.lag })));
    const now = Date.now();
    for (const l of lines) {
      if (l.lag === 0) expect(l.lagSeconds).toBe(0);
      else {
        const age = (now - (base + committedTarget[l.partition]! * 1000)) / 1000;
        expect(Math.abs(l.lagSeconds! - age), `partition ${l.partition}: ${l.lagSeconds} s, expected about ${age} s`).toBeLessThan(15);
      }
    }

    const table = await cli(['lag', '--group', group, '--no-seconds']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`${group}: ${produced.reduce((a, n, p) => a + n - committedTarget[p]!, 0)} records behind`);
  }, 60_000);
});
