import { hostname } from 'node:os';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin, Kafka, Message } from 'kafkajs';
import type { Registry } from 'prom-client';
import { deadLetterMessage } from '../core/dlq/dead-letter.js';
import { ConfigError, PermanentError } from '../core/errors/errors.js';
import { withRetry } from '../core/errors/retry.js';
import { ApiKeyCheck } from '../core/http/api-key.js';
import type { HealthServer } from '../core/http/health-server.js';
import { createKafka } from '../core/kafka/client.js';
import { liveChangelogTopic, liveTopics } from '../core/kafka/topic-plan.js';
import { ensureTopics } from '../core/kafka/topics.js';
import { TransactionalLoop } from '../core/kafka/transactional-loop.js';
import { RegistryCodec } from '../core/registry/codec.js';
import { LoopLiveness } from '../core/runtime/liveness.js';
import { serve, startProcessor, type ProcessorContext, type StartOptions } from '../core/runtime/processor.js';
import { endpointName, FAIL_FAST_RETRY } from '../core/runtime/startup.js';
import { loadContracts } from '../core/schemas/contracts.js';
import { changelogTopicName } from '../core/state/changelog.js';
import { KafkaChangelogSource } from '../core/state/changelog-reader.js';
import { StateMetrics } from '../core/state/metrics.js';
import { StateStores } from '../core/state/state-stores.js';
import { AvroDecoder, DecodeError } from '../export/decoder.js';
import { defaultSchemasDir } from '../normalizer/contract.js';
import { loadRules } from '../reports/rules.js';
import { applyEvents } from './aggregate.js';
import { LIVE_CHANGELOG_CODEC } from './changelog.js';
import { CustomerIndex } from './customers.js';
import { registerLiveRoutes } from './api.js';
import { toLiveEvent, type LiveEvent } from './event.js';
import { LiveMetrics } from './metrics.js';
import { monthOfMicros } from './months.js';
import { toTotals, TotalsCodec } from './output.js';
import { liveSettings } from './settings.js';
import { LiveView } from './view.js';

export const PROCESSOR_NAME = 'live';
/** The state store's name: changelog `<group>-live-changelog`, folder `<dir>/<group>-<instance>/live.v2` (the API's view beside it in `view`). */
export const LIVE_STORE = 'live';
/** The contract of the output values (schemas/agent-commission-live). */
export const OUTPUT_CONTRACT = 'agent-commission-live';

export type LiveOptions = StartOptions;

export interface RunningLive {
  port: number;
  url: string;
  transactionalId: string;
  metrics: Registry;
  view: LiveView;
  failed: Promise<never>;
  stop(): Promise<void>;
}

/**
 * Starts `sluice live`: the agent events in, per agent and UTC month the report's totals
 * and commission (state in core/state, changelog and output in the same Kafka
 * transactions as the consumed offsets), the compacted topic agent-commissions.live out,
 * and the /live API over it.
 */
export async function startLive(options: LiveOptions = {}): Promise<RunningLive> {
  return startProcessor(PROCESSOR_NAME, liveSettings, options, start);
}

async function start(ctx: ProcessorContext<typeof liveSettings>): Promise<RunningLive> {
  const { logger, core } = ctx;
  const s = ctx.settings.live;
  if (!s.apiKey) {
    throw new ConfigError([{ source: 'env SLUICE_LIVE_API_KEY', setting: 'live.apiKey', message: 'missing: the /live API needs at least one key', fix: 'set SLUICE_LIVE_API_KEY to a random key of at least 16 characters (several comma-separated for a rotation)' }]);
  }
  const apiKeys = new ApiKeyCheck(s.apiKey);
  const rules = loadRules(s.rulesFile);
  const contract = loadContracts(s.schemasDir ?? defaultSchemasDir()).find((c) => c.name === OUTPUT_CONTRACT);
  if (!contract) throw new PermanentError(`no contract ${OUTPUT_CONTRACT} under ${s.schemasDir ?? defaultSchemasDir()}: SLUICE_LIVE_SCHEMAS_DIR must hold schemas/${OUTPUT_CONTRACT}/`);
  const current = contract.versions[contract.versions.length - 1]!;
  const instanceId = s.instanceId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-');
  const transactionalId = `${s.transactionalIdPrefix ?? s.groupId}-${instanceId}`;
  logger.info({ eventsTopic: s.eventsTopic, outputTopic: s.outputTopic, groupId: s.groupId, transactionalId, openMonths: s.openMonths, rules: rules.version }, 'starting live');

  const kafka = createKafka(core.kafka, { region: core.s3.region, logger, clientId: `${core.kafka.clientId}-${PROCESSOR_NAME}` });
  const codec = new RegistryCodec(core.registry.url, core.registry);
  const admin = kafka.admin({ retry: FAIL_FAST_RETRY });
  const metrics = new LiveMetrics(ctx.metrics);
  const instanceDir = join(s.stateDir, `${s.groupId}-${instanceId}`);
  const view = new LiveView(kafka, s.outputTopic, new AvroDecoder(codec.rest), logger, join(instanceDir, 'view'));

  const server: HealthServer = await serve(
    ctx,
    {
      kafka: async () => void (await admin.describeCluster()),
      registry: async () => void (await codec.rest.subjects()),
      view: async () => {
        if (!view.ready) throw new Error(`reading ${s.outputTopic}`);
      },
    },
    (app) => registerLiveRoutes(app, { view, apiKeys, pageSize: s.pageSize, metrics, logger }),
    s.httpPort,
  );
  const liveness = new LoopLiveness(ctx, server, { onCheck: () => metrics.viewRows.set(view.size) });

  const { startup } = ctx;
  const kafkaAt = `Kafka at ${core.kafka.brokers.join(',')}`;
  const registryAt = `the schema registry at ${endpointName(core.registry.url)}`;
  ctx.shutdown.add('kafka admin', () => admin.disconnect());
  await startup.dependency(kafkaAt, () => admin.connect());
  await startup.topic(admin, s.eventsTopic, { createdBy: 'the normalizer, at its start', hint: 'start `sluice normalizer` (or create the topic from `sluice topics plan`)' });
  const partitionsOf = async (name: string) => (await admin.fetchTopicMetadata({ topics: [name] })).topics[0]?.partitions.length ?? 0;
  const eventsPartitions = await startup.dependency(kafkaAt, () => partitionsOf(s.eventsTopic));
  await startup.dependency(kafkaAt, () => ensureTopics(admin, liveTopics({ kafka: core.kafka, live: s, eventsPartitions }), logger));
  const state = await openState(ctx, kafka, admin, instanceId, eventsPartitions);

  const schemaId = await startup.dependency(registryAt, () => codec.register(contract.subject, current.text, contract.compatibility));
  const totalsCodec = new TotalsCodec(schemaId, current.text);
  const decoder = new AvroDecoder(codec.rest);
  logger.info({ subject: contract.subject, schemaId, version: current.version }, 'output contract registered');

  const loop = new TransactionalLoop<{ counted: number; duplicates: number; late: number; dead: number }>({
    kafka,
    admin,
    groupId: s.groupId,
    transactionalId,
    inputTopic: s.eventsTopic,
    maxBatchRecords: s.maxBatchRecords,
    // Every partition of a fetch in one transaction: its round trips paid once a fetch.
    partitionsPerTransaction: eventsPartitions,
    // The next fetch is decoded and applied while the transaction before it commits.
    pipeline: true,
    maxBytesPerPartition: s.maxBytesPerPartition,
    sessionTimeoutMs: s.sessionTimeoutMs,
    transactionTimeoutMs: s.transactionTimeoutMs,
    logger,
    signal: ctx.shutdown.signal,
    fenceHint: { instanceIdSetting: 'SLUICE_LIVE_INSTANCE_ID', transactionTimeoutSetting: 'SLUICE_LIVE_TRANSACTION_TIMEOUT_MS' },
    state,
    route: async (records, txn) => {
      const nowMs = Date.now();
      const events: LiveEvent[] = [];
      const dead: Message[] = [];
      for (const r of records) {
        const value = r.message.value;
        try {
          // Schemas are fetched once (cached); a registry away is waited for, not a dead letter.
          if (!decoder.ready(s.eventsTopic, value)) await withRetry(() => decoder.prepare(s.eventsTopic, value), { policy: { maxAttempts: Infinity, maxMs: 10_000 }, signal: ctx.shutdown.signal });
          const e = toLiveEvent(decoder.decode(s.eventsTopic, value).value);
          if ('reason' in e) dead.push(deadLetterMessage(r, e, PROCESSOR_NAME));
          else events.push(e);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          dead.push(deadLetterMessage(r, { reason: error.reason, error: error.message }, PROCESSOR_NAME));
        }
      }
      const applied = applyEvents(txn!, events, { nowMs, openMonths: s.openMonths, rules });
      txn!.expireDue(nowMs);
      for (const e of applied.late) {
        const month = monthOfMicros(e.occurredAtMicros);
        metrics.lateOutsideWindow.inc({ month });
        logger.warn({ eventId: e.eventId, agentId: e.agentId, month, openMonths: s.openMonths }, 'event of a month outside the open window: not counted live (the batch report counts it)');
      }
      const out = [...applied.changed.values()].map((row) => totalsCodec.message(toTotals(row, s.baseCurrency, rules.version, nowMs)));
      return {
        topicMessages: [
          { topic: s.outputTopic, messages: out },
          { topic: s.dlqTopic, messages: dead },
        ],
        result: { counted: applied.counted, duplicates: applied.duplicates, late: applied.late.length, dead: dead.length },
      };
    },
    onCommitted: (r, seconds) => {
      metrics.events.inc({ outcome: 'counted' }, r.counted);
      metrics.events.inc({ outcome: 'duplicate' }, r.duplicates);
      metrics.events.inc({ outcome: 'late_outside_window' }, r.late);
      metrics.events.inc({ outcome: 'dead_letter' }, r.dead);
      metrics.batchSeconds.observe(seconds);
    },
    onTransactionFailed: (outcome) => metrics.transactions.inc({ outcome }),
    onLag: (_topic, partition, lag) => metrics.lag.set({ partition: String(partition) }, lag),
    onActivity: liveness.touch,
  });
  ctx.shutdown.add('transactional loop', () => loop.stop());
  loop.failed.catch(liveness.fail);
  ctx.shutdown.add('live view', () => view.stop());
  await startup.dependency(kafkaAt, () => view.start());
  await startup.dependency(kafkaAt, async () => {
    try {
      await loop.start();
    } catch (error) {
      await loop.stop().catch(() => undefined);
      throw error;
    }
  });
  startup.ready();
  logger.info({ port: server.port }, 'live running');
  return {
    port: server.port,
    url: server.url,
    transactionalId,
    metrics: ctx.metrics,
    view,
    failed: loop.failed,
    stop: async () => {
      await ctx.shutdown.run();
    },
  };
}

/** The state stores over the changelog `<group>-live-changelog` (compacted, as many partitions as the events topic). */
async function openState(ctx: ProcessorContext<typeof liveSettings>, kafka: Kafka, admin: Admin, instanceId: string, eventsPartitions: number): Promise<StateStores> {
  const { logger } = ctx;
  const s = ctx.settings.live;
  const topic = changelogTopicName(s.groupId, LIVE_STORE);
  const kafkaAt = `Kafka at ${ctx.core.kafka.brokers.join(',')}`;
  await ctx.startup.dependency(kafkaAt, () => ensureTopics(admin, [liveChangelogTopic({ kafka: ctx.core.kafka, live: s, eventsPartitions })!], logger));
  const changelogPartitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 0;
  if (changelogPartitions < eventsPartitions) {
    throw new PermanentError(`the live changelog topic ${topic} has ${changelogPartitions} partitions and ${s.eventsTopic} ${eventsPartitions}: add partitions to ${topic} (kafka-topics --alter --partitions ${eventsPartitions}) before starting`);
  }
  // `live.v3`: SQLite stores (partition-store.ts: why); the folders of earlier versions (LMDB:
  // `live`, `live.v2`) are removed, the store being restored from the changelog.
  const instanceDir = join(s.stateDir, `${s.groupId}-${instanceId}`);
  for (const old of [LIVE_STORE, `${LIVE_STORE}.v2`]) {
    if (!existsSync(join(instanceDir, old))) continue;
    rmSync(join(instanceDir, old), { recursive: true, force: true });
    logger.info({ dir: join(instanceDir, old) }, 'removed the local live state of an earlier version (its changelog restores it)');
  }
  const dir = join(instanceDir, `${LIVE_STORE}.v3`);
  const state = new StateStores({
    name: LIVE_STORE,
    dir,
    changelogTopic: topic,
    codec: LIVE_CHANGELOG_CODEC,
    source: new KafkaChangelogSource(kafka, admin, topic, `${s.groupId}-${LIVE_STORE}-restore-${instanceId}`, logger),
    logger,
    metrics: new StateMetrics(ctx.metrics),
    // SQLite: read with pread into a bounded cache, so the RSS does not grow with millions of events of state (LMDB's memory map did).
    engine: 'sqlite',
    cacheKiB: s.stateCacheMb * 1024,
    // Onboarded customers are looked up in memory first (customers.ts): their store is only read to confirm.
    index: () => new CustomerIndex(),
    // Live's entries expire only when a month closes: a slow sweep (20,000 entries a minute per
    // partition, a round every 6 h) finds them in time.
    sweep: { stepIntervalMs: 60_000, roundIntervalMs: 6 * 3_600_000 },
  });
  ctx.shutdown.add('live state stores', () => state.close());
  logger.info({ changelog: topic, partitions: eventsPartitions, dir }, 'live state stores ready');
  return state;
}

/** The long-running entry of `sluice live` and main.ts: signals stop it gracefully; a loop that stops for good exits 1. */
export async function runLive(options: { configFile?: string } = {}): Promise<void> {
  const running = await startLive({ ...options, handleSignals: true });
  try {
    await running.failed;
  } catch {
    await running.stop().catch(() => undefined);
    process.exit(1);
  }
}

