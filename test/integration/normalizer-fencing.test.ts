import { randomUUID } from 'node:crypto';
import { Partitioners, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../processors/core/kafka/client.js';
import { startNormalizer, type RunningNormalizer } from '../../processors/normalizer/normalizer.js';
import { ProducerFencedError } from '../../processors/core/kafka/transactional-loop.js';
import { collectUntilQuiet } from '../support/consume.js';
import { debeziumKey, debeziumValue, stagingRow } from '../support/debezium.js';
import { registryReader } from '../support/registry-reader.js';
import { eventually, hostPortOf, requireServer, testSettings } from '../support/servers.js';

const settings = testSettings();
const run = randomUUID().slice(0, 8);
const cdcTopic = `test.normalizer-fencing.${run}.cdc`;
const otherCdcTopic = `test.normalizer-fencing.${run}.other-cdc`;
const eventsTopic = `test.normalizer-fencing.${run}.events`;
const dlqTopic = `test.normalizer-fencing.${run}.dlq`;
const groupId = `test-normalizer-fencing-${run}`;

describe('normalizer: a new instance with the same transactional id fences the old one', () => {
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  const env = {
    ...process.env,
    SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'fatal',
    SLUICE_NORMALIZER_CDC_TOPIC: cdcTopic,
    SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
    SLUICE_NORMALIZER_DLQ_TOPIC: dlqTopic,
    SLUICE_NORMALIZER_SUBJECT: `test.normalizer-fencing.${run}.events-value`,
    SLUICE_NORMALIZER_GROUP_ID: groupId,
    SLUICE_NORMALIZER_INSTANCE_ID: 'zombie',
    SLUICE_NORMALIZER_HTTP_PORT: '0',
    SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: '6000',
  };
  const running: RunningNormalizer[] = [];
  const isOurs = (m: KafkaMessage) => m.key?.toString().startsWith(`agent-${run}-`) ?? false;

  async function produce(phase: string, n: number): Promise<string[]> {
    const rows = Array.from({ length: n }, (_, i) => stagingRow({ agent_id: `agent-${run}-${phase}-${i % 7}` }));
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: cdcTopic, acks: -1, messages: rows.map((r) => ({ key: debeziumKey(r.event_id), value: debeziumValue('c', { after: r }) })) });
    await producer.disconnect();
    return rows.map((r) => r.event_id);
  }

  beforeAll(async () => {
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    await requireServer('schema registry', hostPortOf(settings.registry.url));
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: cdcTopic, numPartitions: 1 }, { topic: otherCdcTopic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
  });

  afterAll(async () => {
    for (const r of running) await r.stop().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [cdcTopic, otherCdcTopic, eventsTopic, dlqTopic] }).catch(() => undefined);
    await admin.deleteGroups([groupId, `${groupId}-other`]).catch(() => undefined);
    await admin.disconnect();
  });

  it('stops the fenced zombie without a partial write, and its successor writes every event once', async () => {
    const first = await produce('a', 100);
    const zombie = await startNormalizer({ env });
    running.push(zombie);
    await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(isOurs).length >= 100, { quietMs: 200 });

    // Another process takes the same transactional id (here from another group, so the
    // zombie keeps its partition and meets the fence on its next transaction).
    const usurper = await startNormalizer({
      env: { ...env, SLUICE_NORMALIZER_GROUP_ID: `${groupId}-other`, SLUICE_NORMALIZER_TRANSACTIONAL_ID_PREFIX: groupId, SLUICE_NORMALIZER_CDC_TOPIC: otherCdcTopic },
    });
    running.push(usurper);
    expect(usurper.transactionalId).toBe(zombie.transactionalId);

    const second = await produce('b', 100);
    await expect(zombie.failed).rejects.toBeInstanceOf(ProducerFencedError);
    await eventually(async () => ((await fetch(`http://127.0.0.1:${zombie.port}/healthz`)).status === 503 ? true : undefined), 10_000, 'the zombie reporting itself down');
    await zombie.stop();
    await usurper.stop();

    // A fresh instance (the zombie restarted) resumes where the last committed transaction left off.
    const successor = await startNormalizer({ env });
    running.push(successor);
    const reader = registryReader(settings.registry.url);
    const messages = (await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(isOurs).length >= 200, { quietMs: 1500 })).filter(isOurs);
    const ids = await Promise.all(messages.map(async (m) => ((await reader.decode(m.value!)) as { id: string }).id));
    expect(ids.sort()).toEqual([...first, ...second].sort());
  });
});
