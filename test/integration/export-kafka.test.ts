import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectUntilQuiet } from '../support/consume.js';
import { runExportChaos, type ChaosSink } from '../support/export-chaos.js';
import { connectExportStack, lintedPipeline, type ExpectedEvent } from '../support/export-harness.js';
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

/** The pipeline: Avro events -> a flat row -> `<input topic>.out` (an interpolated topic), keyed by agent_id. */
function kafkaSink(found: { messages: KafkaMessage[] }): ChaosSink {
  let out = '';
  return {
    async pipeline({ topic, dlq, group }) {
      out = `${topic}.out`;
      await createTopics(kafka, [{ topic: out, numPartitions: 6 }]);
      const file = join(mkdtempSync(join(tmpdir(), 'sluice-kafka-output-')), `${group}.yaml`);
      writeFileSync(
        file,
        [
          'input:',
          '  kafka:',
          `    topics: [${topic}]`,
          `    consumer_group: ${group}`,
          '    session_timeout: 6s',
          '    decode: avro_registry',
          'pipeline:',
          '  processors:',
          '    - mapping: |',
          '        {"event_id": id, "event_type": $substringAfter(type, "io.sluice.agent."), "agent_id": subject, "amount_minor": data.*.amount_minor}',
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
          '',
        ].join('\n'),
      );
      return lintedPipeline(file);
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
