import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { setting, type SettingsOf } from '../core/config/settings.js';
import { apiKeysSetting, MIN_API_KEY_LENGTH } from '../core/http/api-key.js';
import { topicName } from '../core/config/values.js';
import { HEAP_DEFAULTS } from './heap-defaults.js';
import { heapSettings } from '../core/config/heap-settings.js';

const positiveInt = z.coerce.number().int().positive();

/**
 * `sluice live`'s own settings (env SLUICE_LIVE_*), beside the core ones every processor
 * shares (Kafka, registry, logs). `sluice live --help` prints them.
 */
export const liveSettings = {
  live: {
    groupId: setting(z.string().min(1), { doc: 'consumer group of the events topic; its committed offsets travel inside the transactions', default: 'sluice-live' }),
    instanceId: setting(z.string().regex(/^[A-Za-z0-9._-]+$/).optional(), {
      doc: 'stable id of this instance (e.g. the StatefulSet pod name); part of the transactional id, so a restarted instance fences its zombie. Default: the host name',
      example: 'live-0',
    }),
    transactionalIdPrefix: setting(z.string().min(1).optional(), { doc: 'transactional id = PREFIX-INSTANCE_ID; default: the group id. Two running instances must never share one' }),
    eventsTopic: setting(topicName, { doc: 'topic of the contract-checked Avro agent events (key agent_id), written by the normalizer', default: 'sluice.agent-events' }),
    outputTopic: setting(topicName, { doc: 'compacted topic of the live totals (key `<agent_id>|<YYYY-MM>`, Avro value through the registry): what the API serves', default: 'agent-commissions.live' }),
    outputPartitions: setting(positiveInt, { doc: 'partitions of the output topic when live creates it', default: 6 }),
    dlqTopic: setting(topicName, { doc: 'dead-letter topic: events that cannot be decoded, with sluice.dlq.* reason headers', default: 'agent-commissions.live.dlq' }),
    replicationFactor: setting(z.coerce.number().int().min(-1).refine((n) => n !== 0, 'must be -1 or positive').optional(), {
      doc: "replication factor of the topics live creates, -1 = the broker's default; default: SLUICE_KAFKA_TOPIC_REPLICATION_FACTOR",
    }),
    openMonths: setting(z.coerce.number().int().min(1).max(1200), {
      doc: "months kept open, counted back from the current UTC month (3 = the current one and the previous two). An event of an older month is not counted live: it is logged and counted in sluice_live_late_outside_window_total (the batch report still counts it from the lake)",
      default: 3,
    }),
    baseCurrency: setting(z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code in capitals'), { doc: "the deployment's base currency, the totals' currency column", default: 'USD', example: 'EUR' }),
    rulesFile: setting(z.string().optional(), { doc: 'commission rules YAML, the same file as the report processor (SLUICE_REPORTS_RULES_FILE); default: connectors/reports/commission-rules.yaml' }),
    schemasDir: setting(z.string().optional(), { doc: 'folder of the Avro contracts; default: the schemas/ folder shipped with Sluice (contract agent-commission-live)' }),
    maxBatchRecords: setting(positiveInt, { doc: "most events of one partition in one transaction (a partition's fetched batch is split into chunks of this size); the chunks of every partition one fetch brings are written in one transaction", default: 5000 }),
    maxBytesPerPartition: setting(positiveInt, {
      doc: 'most bytes fetched per partition and request (bounds memory: a fetch of every partition is held until its transaction commits; 512 KiB is ~2,500 events). 512 KiB rather than 1 MiB: 26-45 MB less private memory at 5M events of state (BENCHMARKS.md, live memory)',
      default: 512 * 1024,
    }),
    sessionTimeoutMs: setting(z.coerce.number().int().min(6000), { doc: 'consumer group session timeout: how long a dead instance holds its partitions', default: 30_000 }),
    transactionTimeoutMs: setting(z.coerce.number().int().min(1000), { doc: 'transaction timeout: the broker aborts a transaction left open this long', default: 60_000 }),
    ...heapSettings('live', HEAP_DEFAULTS, {
      oldSpace: 'Its live objects are ~60-90 MB whatever the state\'s size (the state is on disk); without a limit V8 let the heap grow to ~290 MB before collecting hard',
    }),
    stateCacheMb: setting(z.coerce.number().int().min(1).max(1024), {
      doc: "SQLite page cache of each partition's local store, MiB (private memory, taken as pages are read; the rest of the store is read with pread from the OS cache, outside the process's RSS). The recent hours' pages and the totals fit in the default",
      default: 4,
    }),
    stateDir: setting(z.string().min(1), {
      doc: 'folder of the local state stores (one SQLite database per events partition under <dir>/<group>-<instance>/live.v3/<partition>); a cache of the changelog topic <group>-live-changelog',
      default: join(tmpdir(), 'sluice-state'),
      example: '/var/lib/sluice/state',
    }),
    apiKey: setting(apiKeysSetting.optional(), {
      doc: `keys clients send in the X-API-Key header of the /live API (at least ${MIN_API_KEY_LENGTH} characters); several comma-separated keys are all accepted, for a rotation; required`,
      secret: true,
      example: 'a-long-random-key-for-live',
    }),
    pageSize: setting(z.coerce.number().int().min(1).max(10_000), { doc: 'default and largest page of GET /live/months/{month} is this many agents', default: 500 }),
    httpPort: setting(z.coerce.number().int().min(0).max(65535), { doc: 'port of the /live API, /openapi.json, /healthz, /readyz and /metrics (0 picks a free one)', default: 9469 }),
  },
};

export type LiveSettings = SettingsOf<typeof liveSettings>['live'];
