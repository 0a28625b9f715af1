import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../processors/core/kafka/client.js';
import { reportsTopics } from '../../processors/core/kafka/topic-plan.js';
import { ensureTopics } from '../../processors/core/kafka/topics.js';
import { PermanentError } from '../../processors/core/errors/errors.js';
import { loadSettings } from '../../processors/core/config/settings.js';
import { reportsSettings } from '../../processors/reports/settings.js';
import { buildDist, ROOT } from '../support/build.js';
import { createTopics } from '../support/kafka.js';
import { requireServer, testSettings } from '../support/servers.js';

/**
 * `sluice topics plan|apply` against the real broker (which, like MSK, does not
 * auto-create topics), with topic names of the test's own for the normalizer and reports.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const t = {
  events: `test.topics.${run}.events`,
  dlq: `test.topics.${run}.events.dlq`,
  requests: `test.topics.${run}.report-requests`,
  status: `test.topics.${run}.report-status`,
  requestsDlq: `test.topics.${run}.report-requests.dlq`,
};
const env = {
  ...process.env,
  SLUICE_LOG_LEVEL: 'warn',
  SLUICE_NORMALIZER_EVENTS_TOPIC: t.events,
  SLUICE_NORMALIZER_DLQ_TOPIC: t.dlq,
  SLUICE_REPORTS_REQUESTS_TOPIC: t.requests,
  SLUICE_REPORTS_STATUS_TOPIC: t.status,
  SLUICE_REPORTS_DLQ_TOPIC: t.requestsDlq,
};

interface Row {
  topic: string;
  partitions: number;
  configs: Record<string, string>;
  createdBy: string;
  exists?: boolean;
  created?: boolean;
  differences?: string[];
  errors?: string[];
}

function sluice(...args: string[]): { status: number | null; rows: Map<string, Row>; out: string } {
  const r = spawnSync(process.execPath, [`${ROOT}bin/sluice.mjs`, 'topics', ...args], { encoding: 'utf8', env });
  const rows = new Map<string, Row>();
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const row = JSON.parse(line) as Row;
    rows.set(row.topic, row);
  }
  return { status: r.status, rows, out: r.stdout + r.stderr };
}

describe('sluice topics plan|apply', () => {
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });

  beforeAll(async () => {
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    buildDist('processors/cli/main.js');
    // An events topic with fewer partitions than planned, and a status topic that is not compacted.
    await createTopics(kafka, [
      { topic: t.events, numPartitions: 2 },
      { topic: t.status, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] },
    ]);
  });

  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: Object.values(t) }).catch(() => undefined);
    await admin.disconnect();
  });

  it('plans every topic of the shipped config, says which exist as planned, and changes nothing', async () => {
    const plan = sluice('plan', '--json');
    expect(plan.status, plan.out).toBe(0);
    expect([...plan.rows.keys()]).toEqual(expect.arrayContaining(['sluice.staging.agent_events', '__debezium-heartbeat.sluice', 'sluice.agent-events.export.dlq', ...Object.values(t)]));
    expect(plan.rows.get('sluice.staging.agent_events')).toMatchObject({ partitions: 6, createdBy: 'kafka-connect' });
    expect(plan.rows.get(t.events)).toMatchObject({ exists: true, partitions: 6, errors: [] });
    expect(plan.rows.get(t.events)!.differences!.join()).toContain('2 partitions, planned 6');
    expect(plan.rows.get(t.status)).toMatchObject({ exists: true, configs: { 'cleanup.policy': 'compact' } });
    expect(plan.rows.get(t.status)!.errors).toEqual(['has cleanup.policy=delete, planned compact']);
    for (const missing of [t.dlq, t.requests, t.requestsDlq]) expect(plan.rows.get(missing)).toMatchObject({ exists: false });

    const table = sluice('plan');
    expect(table.status).toBe(0);
    expect(table.out).toMatch(new RegExp(`${t.dlq.replace(/\./g, '\\.')}\\s+3\\s+default\\s+cleanup\\.policy=delete,max\\.message\\.bytes=2097152\\s+normalizer\\s+missing`));
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(t.dlq);
    } finally {
      await admin.disconnect();
    }
  });

  it('apply creates the missing topics as planned, is idempotent, and reports what it will not change', async () => {
    const first = sluice('apply', '--json');
    // Exit 1: report-status is not compacted, which the reports cannot run with.
    expect(first.status, first.out).toBe(1);
    for (const made of [t.dlq, t.requests, t.requestsDlq]) expect(first.rows.get(made), made).toMatchObject({ created: true, exists: true });
    expect(first.rows.get(t.events)).toMatchObject({ created: false });

    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [t.dlq, t.requests, t.requestsDlq, t.events] });
      expect(Object.fromEntries(topics.map((x) => [x.name, x.partitions.length]))).toEqual({ [t.dlq]: 3, [t.requests]: 3, [t.requestsDlq]: 1, [t.events]: 2 });
      const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: t.dlq }] });
      const dlqConfigs = Object.fromEntries(described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
      expect(dlqConfigs).toMatchObject({ 'max.message.bytes': '2097152', 'cleanup.policy': 'delete' });
    } finally {
      await admin.disconnect();
    }

    const second = sluice('apply', '--json');
    expect(second.status).toBe(1);
    expect([...second.rows.values()].filter((r) => r.created)).toEqual([]);
    expect(second.rows.get(t.dlq)).toMatchObject({ exists: true, differences: [], errors: [] });
  });

  it('a processor whose compacted topic is not compacted stops with the topic, the difference and the fix', async () => {
    const reports = loadSettings(reportsSettings, { env }).reports;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const error = await ensureTopics(admin, reportsTopics({ kafka: { topicReplicationFactor: -1 }, reports })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as Error).message).toBe(`topic ${t.status} has cleanup.policy=delete, planned compact; it must be changed (kafka-configs --alter) or recreated: see \`sluice topics plan\``);
    } finally {
      await admin.disconnect();
    }
  });
});
