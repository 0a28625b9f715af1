import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { listKeys } from '../../processors/core/s3/objects.js';
import { AgentEventProducer } from '../support/agent-events.js';
import { collectUntilQuiet } from '../support/consume.js';
import { runExportChaos, type ChaosSink } from '../support/export-chaos.js';
import { connectExportStack, domainEvent, freePort, RunnerProcess, runId, pipelineFromLines, waitDrained, type ExpectedEvent } from '../support/export-harness.js';
import { createTopics } from '../support/kafka.js';
import { testSettings } from '../support/servers.js';

/**
 * The kafka output on the real stack: the export's chaos run (SIGKILLs, a second runner
 * joining and leaving) with the records going to a Kafka topic instead of the lake; a
 * read_committed consumer must then see every event exactly once, with its key, header
 * and exact amount.
 */

const settings = testSettings();
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  await admin?.disconnect();
});

const MAPPING_LINES = ['pipeline:', '  processors:', '    - mapping: |', '        {"event_id": id, "event_type": $substringAfter(type, "io.sluice.agent."), "agent_id": subject, "amount_minor": data.*.amount_minor}'];

/** The input block of both pipelines: the test's topic and group. */
const kafkaInput = (topic: string, group: string) => ['input:', '  kafka:', `    topics: [${topic}]`, `    consumer_group: ${group}`, '    session_timeout: 6s'];

/** The pipeline: Avro events -> a flat row -> `<input topic>.out` (an interpolated topic), keyed by agent_id. */
function kafkaSink(found: { messages: KafkaMessage[] }): ChaosSink {
  let out = '';
  return {
    async pipeline({ topic, dlq, group }) {
      out = `${topic}.out`;
      await createTopics(kafka, [{ topic: out, numPartitions: 6 }]);
      return pipelineFromLines(group, [
        ...kafkaInput(topic, group),
        '    decode: avro_registry',
        ...MAPPING_LINES,
        'output:',
        '  kafka:',
        '    topic: ${topic}.out',
        '    key: agent_id',
        '    headers:',
        '      event_type: event_type',
        '    batching:',
        '      count: 2000',
        '      period: 300ms',
        'dlq:',
        `  topic: ${dlq}`,
      ]);
    },
    async verify(expected) {
      const messages = await collectUntilQuiet(kafka, out, (m) => m.length >= expected.length, { quietMs: 3000, timeoutMs: 120_000 });
      found.messages = messages;
      expectExactlyOnce(messages, expected);
    },
  };
}

function expectExactlyOnce(messages: KafkaMessage[], expected: readonly ExpectedEvent[]): void {
  const byId = new Map<string, { count: number; message: KafkaMessage }>();
  for (const m of messages) {
    const id = (JSON.parse(m.value!.toString()) as { event_id: string }).event_id;
    const seen = byId.get(id);
    if (seen) seen.count++;
    else byId.set(id, { count: 1, message: m });
  }
  const missing = expected.filter((e) => !byId.has(e.eventId)).map((e) => e.eventId);
  const doubled = [...byId].filter(([, v]) => v.count > 1).map(([id, v]) => `${id} x${v.count}`);
  const unexpected = [...byId.keys()].filter((id) => !expected.some((e) => e.eventId === id));
  expect({ missing: missing.slice(0, 5), missingCount: missing.length, doubled: doubled.slice(0, 5), doubledCount: doubled.length, unexpected: unexpected.slice(0, 5) }).toEqual({
    missing: [],
    missingCount: 0,
    doubled: [],
    doubledCount: 0,
    unexpected: [],
  });
  expect(messages.length).toBe(expected.length);
  // Key, header and value as the output block says; 64-bit amounts beyond 2^53 exact in the JSON text.
  for (const e of expected) {
    const m = byId.get(e.eventId)!.message;
    expect(m.key!.toString()).toBe(e.agentId);
    expect(m.headers!.event_type!.toString()).toBe(e.type);
    const amount = /"amount_minor":(-?\d+|null)/.exec(m.value!.toString())?.[1];
    expect(amount).toBe(e.amount === null ? undefined : e.amount.toString());
  }
}

describe('the kafka output', () => {
  it('is exactly once for a read_committed consumer through three SIGKILLs and a second runner joining and leaving', async () => {
    const found = { messages: [] as KafkaMessage[] };
    const result = await runExportChaos({ kafka, admin, settings, events: 12_000, perSecond: 600, s3OutageMs: 0, logPrefix: 'export-kafka-chaos', sink: kafkaSink(found) });
    expect(result.kills).toBe(3);
    expect(result.rebalances).toBeGreaterThanOrEqual(2);
    expect(found.messages.length).toBe(12_000);
  }, 300_000);
});

/** event_id -> how many times it was written, from JSON values (Kafka messages or JSON lines). */
function countIds(values: string[]): Map<string, number> {
  const ids = new Map<string, number>();
  for (const v of values) {
    const id = (JSON.parse(v) as { event_id: string }).event_id;
    ids.set(id, (ids.get(id) ?? 0) + 1);
  }
  return ids;
}

function expectOnce(ids: Map<string, number>, expected: readonly ExpectedEvent[]): void {
  const doubled = [...ids].filter(([, n]) => n > 1).length;
  const missing = expected.filter((e) => !ids.has(e.eventId)).length;
  expect({ doubled, missing, extra: ids.size - (expected.length - missing) }).toEqual({ doubled: 0, missing: 0, extra: 0 });
}

describe('the switch output', () => {
  it('routes deposits to Kafka and to S3 (continue), other money events to S3, onboardings to the DLQ (no_route): each sink exactly once through a SIGKILL', async () => {
    const run = runId();
    const topic = `test.export-switch.${run}`;
    const deposits = `${topic}.deposits`;
    const dlq = `${topic}.dlq`;
    const group = `test-export-switch-${run}`;
    const prefix = `test-export-switch-${run}`;
    const producer = new AgentEventProducer(kafka, settings, topic);
    await producer.setUp(3);
    await createTopics(kafka, [{ topic: deposits, numPartitions: 3 }]);
    const events = Array.from({ length: 6000 }, (_, i) => domainEvent(run, i));
    await producer.sendEvents(events);
    const file = pipelineFromLines(group, [
      ...kafkaInput(topic, group),
      ...MAPPING_LINES,
      'output:',
      '  switch:',
      '    cases:',
      '      - check: event_type = "deposit_made"',
      '        continue: true',
      '        output:',
      '          kafka:',
      '            topic: ${topic}.deposits',
      '            key: agent_id',
      '            batching: { count: 500, period: 200ms }',
      '      - check: event_type != "customer_onboarded"',
      '        output:',
      '          s3:',
      `            bucket: ${settings.s3.bucket}`,
      `            path: ${prefix}/\${topic}+\${partition}+\${first_offset}.jsonl`,
      '            format: jsonl',
      '            columns:',
      '              - { name: event_id, type: string }',
      '              - { name: event_type, type: string }',
      '              - { name: agent_id, type: string }',
      '              - { name: amount_minor, type: int64, nullable: true }',
      'dlq:',
      `  topic: ${dlq}`,
    ]);
    let runner = new RunnerProcess(file, `export-switch-${run}-1`, await freePort()).start();
    try {
      await runner.ready();
      // Killed while it works through the backlog: the restart replays from the offsets the Kafka transactions committed.
      await new Promise((r) => setTimeout(r, 1500));
      await runner.kill('SIGKILL');
      runner = new RunnerProcess(file, `export-switch-${run}-2`, await freePort()).start();
      await runner.ready();
      await waitDrained(admin, group, topic, 90_000);
      expect(await runner.kill('SIGTERM')).toBe(0);
    } finally {
      await runner.kill('SIGKILL');
    }

    const inKafka = await collectUntilQuiet(kafka, deposits, (m) => m.length >= events.filter((e) => e.type === 'deposit_made').length, { quietMs: 1500 });
    expectOnce(countIds(inKafka.map((m) => m.value!.toString())), events.filter((e) => e.type === 'deposit_made'));

    const s3 = createS3Client(settings.s3);
    const lines: string[] = [];
    for (const key of await listKeys(s3, settings.s3.bucket, `${prefix}/`)) {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: settings.s3.bucket, Key: key }))).Body!.transformToString();
      lines.push(...body.split('\n').filter((l) => l.trim() !== ''));
    }
    s3.destroy();
    expectOnce(countIds(lines), events.filter((e) => e.type !== 'customer_onboarded'));

    const onboarded = events.filter((e) => e.type === 'customer_onboarded');
    const letters = await collectUntilQuiet(kafka, dlq, (m) => m.length >= onboarded.length, { quietMs: 1500 });
    expect(new Set(letters.map((m) => readDeadLetterHeaders(m.headers)?.reason))).toEqual(new Set(['no_route']));
    // Dead letters are at least once (a replay may send some again): every onboarding is there.
    const ids = new Set(letters.map((m) => producer.decodeId(m.value!)));
    expect(onboarded.filter((e) => !ids.has(e.eventId))).toEqual([]);
  }, 180_000);
});
