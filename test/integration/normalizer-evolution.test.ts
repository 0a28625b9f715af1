import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { startNormalizer } from '../../processors/normalizer/normalizer.js';
import { collectUntilQuiet } from '../support/consume.js';
import { debeziumKey, debeziumValue, stagingRow, type StagingRow } from '../support/debezium.js';
import { registryReader } from '../support/registry-reader.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

const settings = testSettings();
const run = randomUUID().slice(0, 8);
// Everything of this test is its own: a CDC-like topic fed with Debezium's exact JSON, the
// output topics, the group and the registry subject; the contract lives in a temp folder.
const cdcTopic = `test.normalizer-evolution.${run}.cdc`;
const eventsTopic = `test.normalizer-evolution.${run}.events`;
const dlqTopic = `test.normalizer-evolution.${run}.dlq`;
const groupId = `test-normalizer-evolution-${run}`;
const subject = `test.normalizer-evolution.${run}.events-value`;
const v1Path = new URL('../../schemas/agent-event/v1.avsc', import.meta.url).pathname;

describe('normalizer: a compatible contract version flows without code changes', () => {
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  const reader = registryReader(settings.registry.url);
  const schemasDir = mkdtempSync(join(tmpdir(), 'sluice-schemas-'));
  const contractDir = join(schemasDir, 'agent-event');
  const env = {
    ...process.env,
    SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'error',
    SLUICE_NORMALIZER_SCHEMAS_DIR: schemasDir,
    SLUICE_NORMALIZER_SUBJECT: subject,
    SLUICE_NORMALIZER_CDC_TOPIC: cdcTopic,
    SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
    SLUICE_NORMALIZER_DLQ_TOPIC: dlqTopic,
    SLUICE_NORMALIZER_GROUP_ID: groupId,
    SLUICE_NORMALIZER_INSTANCE_ID: `evolution-${run}`,
    SLUICE_NORMALIZER_HTTP_PORT: '0',
  };
  const agent = (phase: string, i: number) => `agent-${run}-${phase}-${i}`;
  const rowsV1 = [0, 1, 2].map((i) => stagingRow({ agent_id: agent('v1', i), amount_minor: 2n ** 53n + BigInt(i) }));
  const rowsV2 = [0, 1, 2].map((i) => stagingRow({ agent_id: agent('v2', i), event_type: 'investment_made', metadata: '{"product": "etf"}' }));
  const garbage = Buffer.from('{"this is": not a change event');

  async function produce(rows: StagingRow[], extra: Buffer[] = []): Promise<void> {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({
      topic: cdcTopic,
      acks: -1,
      messages: [...rows.map((r) => ({ key: debeziumKey(r.event_id), value: debeziumValue('c', { after: r }) })), ...extra.map((value) => ({ key: 'junk', value }))],
    });
    await producer.disconnect();
  }

  const isOurs = (m: KafkaMessage) => m.key?.toString().startsWith(`agent-${run}-`) ?? false;

  beforeAll(async () => {
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    await requireServer('schema registry', hostPortOf(settings.registry.url));
    mkdirSync(contractDir);
    writeFileSync(join(contractDir, 'contract.yaml'), `subject: ${subject}\ntopic: ${eventsTopic}\ncompatibility: BACKWARD_TRANSITIVE\n`);
    copyFileSync(v1Path, join(contractDir, 'v1.avsc'));
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: cdcTopic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
  });

  afterAll(async () => {
    rmSync(schemasDir, { recursive: true, force: true });
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [cdcTopic, eventsTopic, dlqTopic] }).catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  });

  it('writes v1 events, then v2 events after v2.avsc appears, and a reader decodes both through the registry', async () => {
    await produce(rowsV1, [garbage]);
    const v1 = await startNormalizer({ env });
    expect(v1.contract.version).toBe(1);
    await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(isOurs).length >= 3, { quietMs: 500 });
    await v1.stop();

    // v2: an optional field with a default, at the top and in a data branch.
    const schema = JSON.parse(readFileSync(v1Path, 'utf8')) as { fields: { name: string; type: unknown }[] };
    schema.fields.push({ name: 'tenant', type: ['null', 'string'], default: null } as never);
    const data = schema.fields.find((f) => f.name === 'data')!.type as { name: string; fields: unknown[] }[];
    data.find((b) => b.name === 'InvestmentMade')!.fields.push({ name: 'risk_class', type: ['null', 'string'], default: null });
    writeFileSync(join(contractDir, 'v2.avsc'), JSON.stringify(schema, null, 2));

    await produce(rowsV2);
    const v2 = await startNormalizer({ env });
    expect(v2.contract.version).toBe(2);
    expect(v2.schemaId).not.toBe(v1.schemaId);
    const messages = (await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(isOurs).length >= 6, { quietMs: 1500 })).filter(isOurs);
    await v2.stop();

    expect(messages).toHaveLength(6); // the v2 run resumed after the v1 run's committed offsets
    const decoded = await Promise.all(messages.map(async (m) => ({ schemaId: m.value!.readInt32BE(1), value: (await reader.decode(m.value!)) as Record<string, unknown> })));
    const first = decoded.filter((d) => String(d.value.subject).includes('-v1-'));
    const second = decoded.filter((d) => String(d.value.subject).includes('-v2-'));
    expect(first.map((d) => d.value.id).sort()).toEqual(rowsV1.map((r) => r.event_id).sort());
    expect(second.map((d) => d.value.id).sort()).toEqual(rowsV2.map((r) => r.event_id).sort());
    for (const d of first) {
      expect(d.schemaId).toBe(v1.schemaId);
      expect(d.value.schema_version).toBe(1);
      expect(d.value).not.toHaveProperty('tenant');
    }
    expect(first.find((d) => d.value.id === rowsV1[1]!.event_id)!.value.data).toMatchObject({ 'io.sluice.events.DepositMade': { amount_minor: 2n ** 53n + 1n } });
    for (const d of second) {
      expect(d.schemaId).toBe(v2.schemaId);
      expect(d.value).toMatchObject({ schema_version: 2, tenant: null, data: { 'io.sluice.events.InvestmentMade': { product: 'etf', risk_class: null } } });
    }

    const versions = (await (await fetch(`${settings.registry.url}/subjects/${encodeURIComponent(subject)}/versions`)).json()) as number[];
    expect(versions).toHaveLength(2);

    // The record that is no change event at all went to the DLQ as it was.
    const dead = await collectUntilQuiet(kafka, dlqTopic, (ms) => ms.some((m) => m.key?.toString() === 'junk'), { quietMs: 200 });
    const junk = dead.filter((m) => m.key?.toString() === 'junk');
    expect(junk).toHaveLength(1);
    expect(junk[0]!.value!.equals(garbage)).toBe(true);
    expect(readDeadLetterHeaders(junk[0]!.headers)).toMatchObject({ reason: 'unparseable_record', topic: cdcTopic, partition: 0, offset: '3' });
  });

  it('refuses to start with an incompatible version (a new field without a default), naming the subject', async () => {
    const schema = JSON.parse(readFileSync(join(contractDir, 'v2.avsc'), 'utf8')) as { fields: unknown[] };
    schema.fields.push({ name: 'region', type: 'string' });
    writeFileSync(join(contractDir, 'v3.avsc'), JSON.stringify(schema));
    try {
      await expect(startNormalizer({ env })).rejects.toThrow(new RegExp(`subject ${subject.replace(/\./g, '\\.')} is incompatible`));
    } finally {
      rmSync(join(contractDir, 'v3.avsc'));
    }
  });
});
