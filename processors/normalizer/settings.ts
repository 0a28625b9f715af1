import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { setting, type SettingsOf } from '../core/config/settings.js';
import { topicName } from '../core/config/values.js';

const positiveInt = z.coerce.number().int().positive();
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

/** The staging pruner's default retention (`sluice prune --retention`, 30 days) plus a 15-day margin. */
export const DEFAULT_DEDUPE_WINDOW_DAYS = 45;

/**
 * The normalizer's own settings (env SLUICE_NORMALIZER_*), beside the core ones every
 * processor shares (Kafka, registry, logs). `sluice normalizer --help` prints them.
 */
export const normalizerSettings = {
  normalizer: {
    groupId: setting(z.string().min(1), { doc: 'consumer group of the CDC topic; its committed offsets travel inside the transactions', default: 'sluice-normalizer' }),
    instanceId: setting(z.string().regex(/^[A-Za-z0-9._-]+$/).optional(), {
      doc: 'stable id of this instance (e.g. the StatefulSet pod name); part of the transactional id, so a restarted instance fences its zombie. Default: the host name',
      example: 'normalizer-0',
    }),
    transactionalIdPrefix: setting(z.string().min(1).optional(), {
      doc: 'transactional id = PREFIX-INSTANCE_ID; default: the group id. Two live instances must never share one',
    }),
    cdcTopic: setting(topicName, { doc: 'Debezium topic of staging.agent_events (JSON, schemas disabled)', default: 'sluice.staging.agent_events' }),
    eventsTopic: setting(topicName, { doc: 'topic of the contract-checked Avro events, keyed by agent_id', default: 'sluice.agent-events' }),
    dlqTopic: setting(topicName, { doc: 'dead-letter topic: original CDC records with sluice.dlq.* reason headers', default: 'sluice.agent-events.dlq' }),
    baseCurrency: setting(z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code in capitals'), { doc: 'the deployment base currency every money event must carry', default: 'USD', example: 'EUR' }),
    schemasDir: setting(z.string().optional(), { doc: 'folder of the Avro contracts (<contract>/vN.avsc + contract.yaml); default: the schemas/ folder shipped with Sluice' }),
    contract: setting(z.string().regex(/^[a-z0-9-]+$/), { doc: 'contract folder under schemasDir; its highest vN.avsc is the version written', default: 'agent-event' }),
    subject: setting(z.string().min(1).optional(), { doc: "registry subject; default: the contract's contract.yaml subject" }),
    eventsPartitions: setting(positiveInt, { doc: 'partitions of the events topic when the normalizer creates it', default: 6 }),
    dlqPartitions: setting(positiveInt, { doc: 'partitions of the DLQ topic when the normalizer creates it', default: 3 }),
    replicationFactor: setting(z.coerce.number().int().min(-1).refine((n) => n !== 0, 'must be -1 or positive').optional(), {
      doc: "replication factor of the topics the normalizer creates, -1 = the broker's default; default: SLUICE_KAFKA_TOPIC_REPLICATION_FACTOR",
    }),
    maxBatchRecords: setting(positiveInt, { doc: 'most CDC records in one transaction (a fetched batch is split into transactions of this size)', default: 5000 }),
    maxBytesPerPartition: setting(positiveInt, { doc: 'most bytes fetched per partition and request (bounds memory)', default: 4 * 1024 * 1024 }),
    transactionPerFetch: setting(bool, {
      doc: "one Kafka transaction for all the CDC partitions a fetch brings, pipelined (the next fetch is read and routed while it commits), instead of one transaction per partition's batch, each waited for: a transaction's round trips (AddPartitionsToTxn, Produce, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) are paid once a fetch, which is most of the normalizer's share of commit -> events-topic latency and of its throughput. Exactly once either way. false: the per-partition transactions of earlier versions",
      default: true,
    }),
    sessionTimeoutMs: setting(z.coerce.number().int().min(6000), { doc: 'consumer group session timeout: how long a dead instance holds its partitions', default: 30_000 }),
    transactionTimeoutMs: setting(z.coerce.number().int().min(1000), { doc: 'transaction timeout: the broker aborts a transaction left open this long', default: 60_000 }),
    dedupe: setting(bool, {
      doc: 'deduplicate by event_id durably: an INSERT or snapshot read of an event_id already emitted within the window is not emitted again (state in a local store + the compacted changelog topic <group>-dedupe-changelog, written in the same transactions as the events)',
      default: true,
    }),
    dedupeWindowDays: setting(z.coerce.number().positive().max(3650), {
      doc: "how long an emitted event_id is remembered, from when it was first emitted; must exceed the staging retention (sluice prune's --retention, 30 days by default), since a re-snapshot re-reads every staging row. Older duplicates are counted (sluice_normalizer_beyond_dedupe_window_total) and emitted; sluice compact removes them from the lake",
      default: DEFAULT_DEDUPE_WINDOW_DAYS,
    }),
    stateDir: setting(z.string().min(1), {
      doc: 'folder of the local state stores (one LMDB store per CDC partition under <dir>/<group>-<instance>/dedupe/<partition>); a cache of the changelog topic: on a persistent volume a restart only reads the changelog records it has not seen, without one a restart rebuilds it from the changelog',
      default: join(tmpdir(), 'sluice-state'),
      example: '/var/lib/sluice/state',
    }),
    httpPort: setting(z.coerce.number().int().min(0).max(65535), { doc: 'port of /healthz, /readyz and /metrics (0 picks a free one)', default: 9465 }),
  },
};

export type NormalizerSettings = SettingsOf<typeof normalizerSettings>['normalizer'];
