import type { ConnectorSpec } from '../connect/client.js';
import type { NormalizerSettings } from '../../normalizer/settings.js';
import type { ReportsSettings } from '../../reports/settings.js';
import type { LiveSettings } from '../../live/settings.js';
import { CHANGELOG_CONFIGS, changelogTopicName } from '../state/changelog.js';
import type { TopicSpec } from './topics.js';

/**
 * The topic plan: every topic the shipped configuration needs, with its partitions,
 * replication factor and configs, defined once. Processors create (or check) their own
 * entries at start from here, `sluice topics plan|apply` prints and applies the whole
 * list for teams whose cluster refuses auto-creation (Amazon MSK) or who create topics by
 * change request, and Kafka Connect creates the CDC topics from the connector file's
 * `topic.creation.*` settings, which the plan reads back so the table shows them too.
 *
 * To add a topic: add an entry to its owner's contribution below (or a new contribution
 * to TOPIC_CONTRIBUTIONS), and have the owner call its contribution at start.
 */

/** One planned topic: what ensureTopics needs, plus who owns it and why it exists. */
export interface PlannedTopic extends TopicSpec {
  /** The component that uses and normally creates it: `normalizer`, `reports`, `export lake.yaml`, `debezium`. */
  owner: string;
  /** Who creates it when the principal may: the owning processor, or Kafka Connect's topic creation. */
  createdBy: 'processor' | 'kafka-connect';
  purpose: string;
}

/** The settings the plan is computed from; a contribution whose part is absent adds nothing. */
export interface TopicPlanInput {
  kafka: { topicReplicationFactor: number; topicMinInsyncReplicas?: number | undefined };
  normalizer?: NormalizerSettings;
  /**
   * Partitions of the CDC topic as it exists (the normalizer passes it at start); else
   * what Kafka Connect creates it with (the connector files), else the cluster's default.
   */
  cdcPartitions?: number;
  reports?: ReportsSettings;
  /** Connector files as `sluice connectors apply` sends them (placeholders filled). */
  connectors?: ConnectorSpec[];
  /** `sluice files`: its DLQ of rejected rows. */
  files?: { dlqTopic: string; notificationsTopic?: string | undefined };
  /** `sluice live`'s settings. */
  live?: LiveSettings;
  /** Partitions of the events topic as it exists (live passes it at start); else the normalizer's setting. */
  eventsPartitions?: number;
  /** Export pipelines: the file (for the owner column) and its DLQ topic. */
  pipelines?: { name: string; dlqTopic: string }[];
}

export type TopicContribution = (input: TopicPlanInput) => PlannedTopic[];

/** A dead letter is the original record (up to the broker's 1 MiB) plus its reason headers. */
const DLQ_MAX_MESSAGE_BYTES = { name: 'max.message.bytes', value: String(2 * 1024 * 1024) };
const DELETE = { name: 'cleanup.policy', value: 'delete' };
const COMPACT = { name: 'cleanup.policy', value: 'compact' };

/** Replication factor and min.insync.replicas of the topics Sluice creates (core kafka settings). */
function durability(input: TopicPlanInput, replicationFactor?: number): Pick<TopicSpec, 'replicationFactor' | 'configEntries'> {
  const minIsr = input.kafka.topicMinInsyncReplicas;
  return {
    replicationFactor: replicationFactor ?? input.kafka.topicReplicationFactor,
    configEntries: minIsr === undefined ? [] : [{ name: 'min.insync.replicas', value: String(minIsr) }],
  };
}

function topic(input: TopicPlanInput, t: Omit<PlannedTopic, 'replicationFactor' | 'configEntries' | 'createdBy'> & { configEntries?: TopicSpec['configEntries']; replicationFactor?: number }): PlannedTopic {
  const base = durability(input, t.replicationFactor);
  return { createdBy: 'processor', ...t, replicationFactor: base.replicationFactor, configEntries: [...(t.configEntries ?? []), ...(base.configEntries ?? [])] };
}

/** The normalizer: contract-checked events (its output) and its DLQ. */
export const normalizerTopics: TopicContribution = (input) => {
  const s = input.normalizer;
  if (!s) return [];
  return [
    topic(input, {
      topic: s.eventsTopic,
      numPartitions: s.eventsPartitions,
      replicationFactor: s.replicationFactor,
      configEntries: [DELETE],
      owner: 'normalizer',
      purpose: 'contract-checked Avro events, key agent_id (read by the export pipelines)',
    }),
    topic(input, {
      topic: s.dlqTopic,
      numPartitions: s.dlqPartitions,
      replicationFactor: s.replicationFactor,
      configEntries: [DELETE, DLQ_MAX_MESSAGE_BYTES],
      owner: 'normalizer',
      purpose: 'dead letters: original CDC records with sluice.dlq.* reason headers',
    }),
    ...(s.dedupe ? [dedupeChangelogTopic(input)!] : []),
  ];
};

/**
 * The normalizer's dedupe changelog (core/state, in the packed format of
 * normalizer/dedupe.ts): one partition per CDC partition (a store's partition p is
 * changelog partition p), named as Kafka Streams names changelogs. Its ids are forgotten
 * by retention, not tombstones: every record's ids expire one window after it was
 * written, so records older than the window plus a day are deleted; compaction stays on
 * for records of the one-id-per-record format (keyed by event_id). A topic created
 * before (compact only) still works, and is reported as differing from the plan until
 * altered (`kafka-configs --alter --add-config 'cleanup.policy=[compact,delete],retention.ms=...'`).
 */
export function dedupeChangelogTopic(input: TopicPlanInput): PlannedTopic | undefined {
  const s = input.normalizer;
  if (!s) return undefined;
  const cdc = input.cdcPartitions ?? debeziumTopics(input).find((t) => t.topic === s.cdcTopic)?.numPartitions ?? -1;
  const retentionMs = Math.ceil((s.dedupeWindowDays + 1) * 86_400_000);
  return topic(input, {
    topic: changelogTopicName(s.groupId, 'dedupe'),
    numPartitions: cdc,
    replicationFactor: s.replicationFactor,
    configEntries: [
      ...CHANGELOG_CONFIGS.filter((c) => c.name !== 'cleanup.policy'),
      { name: 'cleanup.policy', value: 'compact,delete' },
      { name: 'retention.ms', value: String(retentionMs) },
    ],
    owner: 'normalizer',
    purpose: `durable dedupe state by event_id (each record: the ids one transaction emitted, 16 bytes each, with their expiry); retention ${s.dedupeWindowDays} + 1 days, as many partitions as ${s.cdcTopic}, written in the normalizer's transactions`,
  });
}

/** The report processor and shim: requests, their state (compacted: the status view is rebuilt from it) and a DLQ. */
export const reportsTopics: TopicContribution = (input) => {
  const s = input.reports;
  if (!s) return [];
  return [
    topic(input, { topic: s.requestsTopic, numPartitions: 3, configEntries: [DELETE], owner: 'reports', purpose: 'report requests (JSON, key request_id)' }),
    topic(input, {
      topic: s.statusTopic,
      numPartitions: 3,
      configEntries: [COMPACT],
      requiredConfigs: ['cleanup.policy'],
      owner: 'reports',
      purpose: 'report state changes (JSON, key request_id); compacted: the status view is rebuilt from it, so it must keep the last state of every request',
    }),
    topic(input, { topic: s.dlqTopic, numPartitions: 1, configEntries: [DELETE, DLQ_MAX_MESSAGE_BYTES], owner: 'reports', purpose: 'dead letters: malformed report requests' }),
  ];
};

/** Each export pipeline's DLQ (its input topics belong to their producers). */
export const exportTopics: TopicContribution = (input) =>
  (input.pipelines ?? []).map((p) =>
    topic(input, {
      topic: p.dlqTopic,
      numPartitions: 3,
      configEntries: [DELETE, DLQ_MAX_MESSAGE_BYTES],
      owner: `export ${p.name}`,
      purpose: 'dead letters of the export pipeline: original records with sluice.dlq.* reason headers',
    }),
  );

/** `sluice files`: rejected rows of partner files (the original line, sluice.dlq.* headers). */
export const filesTopics: TopicContribution = (input) =>
  input.files
    ? [
        topic(input, {
          topic: input.files.dlqTopic,
          numPartitions: 3,
          configEntries: [DELETE, DLQ_MAX_MESSAGE_BYTES],
          owner: 'files',
          purpose: 'dead letters of file ingestion: rejected rows (the original line, key file@version:line) with sluice.dlq.* reason headers',
        }),
        ...(input.files.notificationsTopic
          ? [
              topic(input, {
                topic: input.files.notificationsTopic,
                numPartitions: 3,
                configEntries: [DELETE],
                owner: 'files',
                purpose: 'S3 event notifications of the files bucket (JSON), written by the bucket\'s notification bridge, read by sluice files',
              }),
            ]
          : []),
      ]
    : [];

/** Debezium's topics, as Kafka Connect creates them from the connector's `topic.creation.*` settings. */
export const debeziumTopics: TopicContribution = (input) =>
  (input.connectors ?? []).flatMap((spec) => {
    const c = spec.config;
    if (!/debezium/i.test(c['connector.class'] ?? '')) return [];
    const prefix = c['topic.prefix'] ?? '';
    const tables = (c['table.include.list'] ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    const out: PlannedTopic[] = tables.map((table) => ({
      ...connectCreation(c, `${prefix}.${table}`),
      owner: 'debezium',
      createdBy: 'kafka-connect',
      purpose: `change events of ${table} (${spec.name}; key event_id), read by the normalizer`,
    }));
    if (Number(c['heartbeat.interval.ms'] ?? 0) > 0) {
      out.push({
        ...connectCreation(c, `${c['topic.heartbeat.prefix'] ?? '__debezium-heartbeat'}.${prefix}`),
        owner: 'debezium',
        createdBy: 'kafka-connect',
        purpose: `heartbeats of ${spec.name} (keep the replication slot advancing while the table is quiet)`,
      });
    }
    return out;
  });

/**
 * The topic Kafka Connect creates for `name` (KIP-158): the first group of
 * `topic.creation.groups` whose include list matches (and exclude list does not), over
 * `topic.creation.default.*`. Without topic creation settings: the broker's defaults (-1).
 */
function connectCreation(c: Record<string, string>, name: string): TopicSpec {
  const groups = (c['topic.creation.groups'] ?? '').split(',').map((g) => g.trim()).filter(Boolean);
  const matches = (list: string | undefined) => (list ?? '').split(',').map((r) => r.trim()).filter(Boolean).some((r) => new RegExp(`^(?:${r})$`).test(name));
  const group = groups.find((g) => matches(c[`topic.creation.${g}.include`]) && !matches(c[`topic.creation.${g}.exclude`]));
  const settings = new Map<string, string>();
  for (const prefix of ['topic.creation.default.', ...(group ? [`topic.creation.${group}.`] : [])]) {
    for (const [k, v] of Object.entries(c)) if (k.startsWith(prefix)) settings.set(k.slice(prefix.length), v);
  }
  const partitions = Number(settings.get('partitions') ?? -1);
  const replicationFactor = Number(settings.get('replication.factor') ?? -1);
  const configEntries = [...settings].filter(([k]) => !['partitions', 'replication.factor', 'include', 'exclude'].includes(k)).map(([name, value]) => ({ name, value }));
  return { topic: name, numPartitions: partitions, replicationFactor, configEntries };
}

/** `sluice live`: the compacted totals (what the API serves), its DLQ and its state changelog. */
export const liveTopics: TopicContribution = (input) => {
  const s = input.live;
  if (!s) return [];
  return [
    topic(input, {
      topic: s.outputTopic,
      numPartitions: s.outputPartitions,
      replicationFactor: s.replicationFactor,
      configEntries: [COMPACT],
      requiredConfigs: ['cleanup.policy'],
      owner: 'live',
      purpose: 'live totals per agent and UTC month (Avro agent-commission-live, key <agent_id>|<YYYY-MM>); compacted: every instance reads it whole to serve the /live API',
    }),
    topic(input, { topic: s.dlqTopic, numPartitions: 1, replicationFactor: s.replicationFactor, configEntries: [DELETE, DLQ_MAX_MESSAGE_BYTES], owner: 'live', purpose: 'dead letters: events live cannot decode' }),
    liveChangelogTopic(input)!,
  ];
};

/**
 * Live's state changelog (core/state, in the packed format of live/changelog.ts): one
 * partition per events partition. Records are never rewritten under one key, so it is
 * not compacted: retention deletes a record once every entry in it has expired (an entry
 * expires when its month leaves the window of open months: at most the window plus the
 * month it was written in, so the window + 1 month, at 31 days a month). A changelog
 * created compacted by an earlier version must be altered
 * (`kafka-configs --alter --add-config 'cleanup.policy=delete,retention.ms=...'`).
 */
export function liveChangelogTopic(input: TopicPlanInput): PlannedTopic | undefined {
  const s = input.live;
  if (!s) return undefined;
  const retentionMs = (s.openMonths + 1) * 31 * 86_400_000;
  return topic(input, {
    topic: changelogTopicName(s.groupId, 'live'),
    numPartitions: input.eventsPartitions ?? input.normalizer?.eventsPartitions ?? -1,
    replicationFactor: s.replicationFactor,
    configEntries: [DELETE, { name: 'retention.ms', value: String(retentionMs) }, { name: 'segment.bytes', value: String(64 * 1024 * 1024) }],
    requiredConfigs: ['cleanup.policy'],
    owner: 'live',
    purpose: `live state (counted event ids, onboarded customers, agent-month totals: a transaction's changes of a month packed in one record); retention ${s.openMonths} + 1 months, as many partitions as ${s.eventsTopic}, written in live's transactions`,
  });
}

/** Every contribution, in the order the plan lists them. Add new owners here. */
export const TOPIC_CONTRIBUTIONS: readonly TopicContribution[] = [debeziumTopics, normalizerTopics, exportTopics, reportsTopics, liveTopics, filesTopics];

/**
 * The whole plan: every contribution's topics, each topic once (when two owners plan the
 * same topic, the first one's settings stand and the owners are listed together).
 */
export function planTopics(input: TopicPlanInput, contributions: readonly TopicContribution[] = TOPIC_CONTRIBUTIONS): PlannedTopic[] {
  const byName = new Map<string, PlannedTopic>();
  for (const t of contributions.flatMap((c) => c(input))) {
    const seen = byName.get(t.topic);
    if (!seen) byName.set(t.topic, t);
    else if (!seen.owner.split(', ').includes(t.owner)) seen.owner = `${seen.owner}, ${t.owner}`;
  }
  return [...byName.values()];
}

/** `6 partitions, RF 3, cleanup.policy=compact`: how a topic is described to whoever creates it. */
export function describeTopicSpec(t: TopicSpec): string {
  const rf = (t.replicationFactor ?? -1) === -1 ? "the cluster's default RF" : `RF ${t.replicationFactor}`;
  const partitions = t.numPartitions === -1 ? "the cluster's default partitions" : `${t.numPartitions} partition${t.numPartitions === 1 ? '' : 's'}`;
  return [partitions, rf, ...(t.configEntries ?? []).map((e) => `${e.name}=${e.value}`)].join(', ');
}
