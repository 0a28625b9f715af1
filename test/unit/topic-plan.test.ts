import { describe, expect, it } from 'vitest';
import type { Admin } from 'kafkajs';
import { loadSettings } from '../../processors/core/config/settings.js';
import { coreSettings } from '../../processors/core/config/core-settings.js';
import { loadConnectorSpec, pgVarsFromUrl } from '../../processors/core/connect/client.js';
import { planTopics, normalizerTopics, describeTopicSpec, type TopicPlanInput } from '../../processors/core/kafka/topic-plan.js';
import { ensureTopics, isAuthorizationError } from '../../processors/core/kafka/topics.js';
import { PermanentError } from '../../processors/core/errors/errors.js';
import { normalizerSettings } from '../../processors/normalizer/settings.js';
import { reportsSettings } from '../../processors/reports/settings.js';
import { SERVERS_ENV } from '../support/servers.js';

const connectorFile = new URL('../../connectors/debezium/staging-agent-events.json', import.meta.url).pathname;
const pg = pgVarsFromUrl('postgres://u:p@db:5432/d');

function input(env: NodeJS.ProcessEnv = {}): TopicPlanInput {
  const s = loadSettings({ ...coreSettings, ...normalizerSettings, ...reportsSettings }, { env: { ...SERVERS_ENV, ...env } });
  return {
    kafka: s.kafka,
    normalizer: s.normalizer,
    reports: s.reports,
    connectors: [loadConnectorSpec(connectorFile, { ...pg, ...env })],
    pipelines: [{ name: 'lake', dlqTopic: 'sluice.agent-events.export.dlq' }],
  };
}

describe('topic plan', () => {
  it('lists every topic of the shipped configuration once, with its owner', () => {
    const plan = planTopics(input());
    expect(plan.map((t) => [t.topic, t.owner, t.createdBy])).toEqual([
      ['sluice.staging.agent_events', 'debezium', 'kafka-connect'],
      ['__debezium-heartbeat.sluice', 'debezium', 'kafka-connect'],
      ['sluice.agent-events', 'normalizer', 'processor'],
      ['sluice.agent-events.dlq', 'normalizer', 'processor'],
      ['sluice-normalizer-dedupe-changelog', 'normalizer', 'processor'],
      ['sluice.agent-events.export.dlq', 'export lake', 'processor'],
      ['report-requests', 'reports', 'processor'],
      ['report-status', 'reports', 'processor'],
      ['report-requests.dlq', 'reports', 'processor'],
    ]);
  });

  it('reads the CDC topic from the connector topic.creation settings: 6 partitions, the cluster RF, a heartbeat group of 1', () => {
    const [cdc, heartbeat] = planTopics(input());
    expect(cdc).toMatchObject({ numPartitions: 6, replicationFactor: -1 });
    expect(cdc!.configEntries).toContainEqual({ name: 'cleanup.policy', value: 'delete' });
    expect(heartbeat).toMatchObject({ numPartitions: 1, replicationFactor: -1 });
    expect(heartbeat!.configEntries).toContainEqual({ name: 'retention.ms', value: '86400000' });
  });

  it('takes partitions, RF and min.insync.replicas from the settings, for processors and Connect alike', () => {
    const plan = planTopics(input({ SLUICE_CDC_TOPIC_PARTITIONS: '12', SLUICE_KAFKA_TOPIC_REPLICATION_FACTOR: '3', SLUICE_KAFKA_TOPIC_MIN_INSYNC_REPLICAS: '2', SLUICE_NORMALIZER_EVENTS_PARTITIONS: '9' }));
    const byName = new Map(plan.map((t) => [t.topic, t]));
    expect(byName.get('sluice.staging.agent_events')).toMatchObject({ numPartitions: 12, replicationFactor: 3 });
    expect(byName.get('sluice.agent-events')).toMatchObject({ numPartitions: 9, replicationFactor: 3 });
    for (const t of plan.filter((p) => p.createdBy === 'processor')) expect(t.configEntries).toContainEqual({ name: 'min.insync.replicas', value: '2' });
  });

  it('marks the compacted status topic as required and lets a processor take its own entries', () => {
    const status = planTopics(input()).find((t) => t.topic === 'report-status')!;
    expect(status.requiredConfigs).toEqual(['cleanup.policy']);
    expect(status.configEntries).toContainEqual({ name: 'cleanup.policy', value: 'compact' });
    const own = normalizerTopics({ kafka: { topicReplicationFactor: -1 }, normalizer: input().normalizer! });
    expect(own.map((t) => t.topic)).toEqual(['sluice.agent-events', 'sluice.agent-events.dlq', 'sluice-normalizer-dedupe-changelog']);
  });

  it('plans the dedupe changelog with a retention of the window plus a day, with as many partitions as the CDC topic', () => {
    const byName = new Map(planTopics(input({ SLUICE_CDC_TOPIC_PARTITIONS: '12', SLUICE_NORMALIZER_GROUP_ID: 'norm', SLUICE_NORMALIZER_DEDUPE_WINDOW_DAYS: '40' })).map((t) => [t.topic, t]));
    const changelog = byName.get('norm-dedupe-changelog')!;
    expect(changelog).toMatchObject({ numPartitions: 12 });
    expect(changelog.configEntries).toContainEqual({ name: 'cleanup.policy', value: 'compact,delete' });
    expect(changelog.configEntries).toContainEqual({ name: 'retention.ms', value: String(41 * 86_400_000) });
    // The normalizer at start passes the CDC topic's actual partition count.
    const s = input().normalizer!;
    expect(normalizerTopics({ kafka: { topicReplicationFactor: -1 }, normalizer: s, cdcPartitions: 3 }).at(-1)).toMatchObject({ topic: 'sluice-normalizer-dedupe-changelog', numPartitions: 3 });
    expect(normalizerTopics({ kafka: { topicReplicationFactor: -1 }, normalizer: { ...s, dedupe: false } }).map((t) => t.topic)).not.toContain('sluice-normalizer-dedupe-changelog');
  });

  it('lists a topic two owners plan once, naming both owners', () => {
    const base = input();
    const plan = planTopics({ ...base, pipelines: [{ name: 'a', dlqTopic: 'x.dlq' }, { name: 'b', dlqTopic: 'x.dlq' }] });
    expect(plan.filter((t) => t.topic === 'x.dlq').map((t) => t.owner)).toEqual(['export a, export b']);
  });

  it('describes a topic as an operator asks for it', () => {
    expect(describeTopicSpec({ topic: 't', numPartitions: 6, replicationFactor: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] })).toBe('6 partitions, RF 3, cleanup.policy=compact');
    expect(describeTopicSpec({ topic: 't', numPartitions: 1 })).toBe("1 partition, the cluster's default RF");
  });
});

describe('connector placeholders', () => {
  it('fill ${VAR:default} from the default when the variable is unset or empty, and leave config provider references alone', () => {
    const spec = loadConnectorSpec(connectorFile, { ...pg, SLUICE_CDC_TOPIC_PARTITIONS: '' });
    expect(spec.config['topic.creation.default.partitions']).toBe('6');
    expect(spec.config['topic.creation.default.replication.factor']).toBe('-1');
  });
});

/** An admin whose CreateTopics is refused as a broker with ACLs refuses it. */
function deniedAdmin(type: string): Admin {
  const refusal = Object.assign(new Error('aggregate'), { name: 'KafkaJSAggregateError', errors: [Object.assign(new Error('Not authorized'), { type, retriable: false })] });
  return {
    listTopics: async () => [],
    createTopics: async () => {
      throw refusal;
    },
  } as unknown as Admin;
}

describe('ensureTopics without a CreateTopics ACL', () => {
  for (const type of ['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED']) {
    it(`stops with one line naming the topic and the fix (${type})`, async () => {
      const spec = { topic: 'sluice.agent-events', numPartitions: 6, replicationFactor: 3 };
      const error = await ensureTopics(deniedAdmin(type), [spec]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PermanentError);
      expect(isAuthorizationError(error)).toBe(true);
      const message = (error as Error).message;
      expect(message.split('\n')).toHaveLength(1);
      expect(message).toBe('topic sluice.agent-events does not exist and this principal may not create it: create it with `sluice topics apply` or ask for it (6 partitions, RF 3)');
    });
  }
});
