import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endOffsets, readUntil } from '../../processors/cli/demo/read.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { createLogger } from '../../processors/core/log/logger.js';
import { requireServer, testSettings } from '../support/servers.js';

/**
 * The demo's reads (issue 11): from the end offsets taken before it writes, so a topic full of
 * older records is not scanned, and with a consumer group that is deleted afterwards, so
 * `sluice lag` lists no leftover sluice-demo-* group.
 */
const settings = testSettings();
const topic = `test.demo-read.${randomUUID().slice(0, 8)}`;
const logger = createLogger({ name: 'test', level: 'silent' });
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  await requireServer('Kafka broker', settings.kafka.brokers[0]!);
  kafka = createKafka(settings.kafka, { region: settings.s3.region, logger });
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await admin?.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin?.disconnect();
});

const demoGroups = async () => new Set((await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith('sluice-demo-')));

describe('demo reads', () => {
  it('start at the end offsets taken before writing and leave no consumer group behind', async () => {
    expect(await endOffsets(admin, topic), 'a topic that does not exist yet').toBeUndefined();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 300 }, (_, i) => ({ key: `old-${i}`, value: `old-${i}` })) });
      const from = await endOffsets(admin, topic);
      expect(from!.reduce((n, p) => n + Number(p.offset), 0)).toBe(300);
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 30 }, (_, i) => ({ key: `new-${i}`, value: `new-${i}` })) });
      const before = await demoGroups();
      const read: string[] = [];
      await readUntil(kafka, admin, topic, { from, timeoutMs: 30_000, logger, timeoutMessage: () => `${read.length} of 30 new records read` }, (messages) => {
        read.push(...messages.map((m) => m.value!.toString()));
        return read.length >= 30;
      });
      expect(read.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `new-${i}`).sort());
      const left = [...(await demoGroups())].filter((g) => !before.has(g));
      expect(left, 'demo consumer groups left behind').toEqual([]);
    } finally {
      await producer.disconnect();
    }
  }, 60_000);

  it('fail with the given message when nothing matching arrives in time, and still delete the group', async () => {
    const before = await demoGroups();
    const error = await readUntil(kafka, admin, topic, { from: await endOffsets(admin, topic), timeoutMs: 3000, logger, timeoutMessage: () => 'nothing came: check the producer' }, () => false).catch((e: Error) => e);
    expect(String(error)).toContain('nothing came: check the producer');
    expect([...(await demoGroups())].filter((g) => !before.has(g))).toEqual([]);
  }, 60_000);
});
