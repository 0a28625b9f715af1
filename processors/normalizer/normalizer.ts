import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { PermanentError } from '../core/errors/errors.js';
import type { HealthServer } from '../core/http/health-server.js';
import { createKafka } from '../core/kafka/client.js';
import { ensureTopics } from '../core/kafka/topics.js';
import { dedupeChangelogTopic, normalizerTopics } from '../core/kafka/topic-plan.js';
import { RegistryCodec } from '../core/registry/codec.js';
import { changelogTopicName } from '../core/state/changelog.js';
import { KafkaChangelogSource } from '../core/state/changelog-reader.js';
import { StateMetrics } from '../core/state/metrics.js';
import { StateStores } from '../core/state/state-stores.js';
import { LoopLiveness } from '../core/runtime/liveness.js';
import { serve, startProcessor, type ProcessorContext, type StartOptions } from '../core/runtime/processor.js';
import { endpointName, FAIL_FAST_RETRY } from '../core/runtime/startup.js';
import { defaultSchemasDir, loadContract, type AgentEventContract } from './contract.js';
import { DEDUPE_CHANGELOG_CODEC } from './dedupe.js';
import { toEnvelope } from './envelope.js';
import { NormalizerMetrics } from './metrics.js';
import { EVENT_TYPES, type ValidEvent } from './rules.js';
import { normalizerSettings } from './settings.js';
import { TransactionalLoop } from '../core/kafka/transactional-loop.js';
import { routeRecords, type ChunkStats } from './transform.js';

export const PROCESSOR_NAME = 'normalizer';

export type NormalizerOptions = StartOptions;

export interface RunningNormalizer {
  /** Port of /healthz, /readyz, /metrics. */
  port: number;
  transactionalId: string;
  groupId: string;
  contract: AgentEventContract;
  /** Registry id of the schema the events are written with. */
  schemaId: number;
  metrics: Registry;
  /** Rejects when the loop stopped for good (fenced, a bug, a crashed consumer). */
  failed: Promise<never>;
  /** Graceful stop: the transaction in flight ends, then the group is left and everything closes. */
  stop(): Promise<void>;
}

/**
 * Starts the normalizer: the CDC topic of staging.agent_events in, contract-checked
 * Avro events (key agent_id) and dead letters out, in Kafka transactions.
 */
export async function startNormalizer(options: NormalizerOptions = {}): Promise<RunningNormalizer> {
  return startProcessor(PROCESSOR_NAME, normalizerSettings, options, start);
}

async function start(ctx: ProcessorContext<typeof normalizerSettings>): Promise<RunningNormalizer> {
  const { logger, core } = ctx;
  const s = ctx.settings.normalizer;
  const contract = loadContract(s.schemasDir ?? defaultSchemasDir(), s.contract);
  const subject = s.subject ?? contract.subject;
  const instanceId = s.instanceId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-');
  const transactionalId = `${s.transactionalIdPrefix ?? s.groupId}-${instanceId}`;
  logger.info(
    { contract: contract.name, version: contract.version, subject, cdcTopic: s.cdcTopic, eventsTopic: s.eventsTopic, dlqTopic: s.dlqTopic, groupId: s.groupId, transactionalId, baseCurrency: s.baseCurrency },
    'starting the normalizer',
  );

  const kafka = createKafka(core.kafka, { region: core.s3.region, logger, clientId: `${core.kafka.clientId}-${PROCESSOR_NAME}` });
  const codec = new RegistryCodec(core.registry.url, core.registry);
  // Fails fast: the startup waits below log what they wait for and back off themselves.
  const admin = kafka.admin({ retry: FAIL_FAST_RETRY });
  const metrics = new NormalizerMetrics(ctx.metrics);

  const server: HealthServer = await serve(
    ctx,
    {
      kafka: async () => void (await admin.describeCluster()),
      registry: async () => void (await codec.rest.subjects()),
    },
    undefined,
    s.httpPort,
  );
  const liveness = new LoopLiveness(ctx, server);

  const { startup } = ctx;
  const kafkaAt = `Kafka at ${core.kafka.brokers.join(',')}`;
  const registryAt = `the schema registry at ${endpointName(core.registry.url)}`;
  ctx.shutdown.add('kafka admin', () => admin.disconnect());
  await startup.dependency(kafkaAt, () => admin.connect());
  // Its own topics as the topic plan defines them (`sluice topics plan`); the dedupe
  // changelog once the CDC topic exists (it takes the CDC topic's partition count).
  await startup.dependency(kafkaAt, () => ensureTopics(admin, normalizerTopics({ kafka: core.kafka, normalizer: { ...s, dedupe: false } }), logger));

  const schemaId = await startup.dependency(registryAt, () => codec.register(subject, contract.schemaText, contract.compatibility));
  logger.info({ subject, schemaId, version: contract.version, compatibility: contract.compatibility }, 'contract registered');
  const encode = (value: unknown) => codec.encode(schemaId, value);
  await checkContractWritable(contract, encode);

  await startup.topic(admin, s.cdcTopic, {
    createdBy: 'the Debezium connector on Kafka Connect, at its first change of staging.agent_events',
    hint: 'check the connector with `sluice connectors status` (apply it with `sluice connectors apply`)',
  });
  const state = s.dedupe ? await openDedupeState(ctx, kafka, admin, instanceId) : undefined;
  const dedupeOptions = { windowMs: s.dedupeWindowDays * 86_400_000 };

  const rules = { baseCurrency: s.baseCurrency };
  const cdcPartitions = s.transactionPerFetch ? await startup.dependency(kafkaAt, async () => (await admin.fetchTopicMetadata({ topics: [s.cdcTopic] })).topics[0]?.partitions.length ?? 1) : 1;
  const loop = new TransactionalLoop<ChunkStats>({
    kafka,
    admin,
    groupId: s.groupId,
    transactionalId,
    inputTopic: s.cdcTopic,
    maxBatchRecords: s.maxBatchRecords,
    // SLUICE_NORMALIZER_TRANSACTION_PER_FETCH: every partition of a fetch in one transaction, pipelined (as `sluice live`).
    partitionsPerTransaction: cdcPartitions,
    pipeline: s.transactionPerFetch,
    maxBytesPerPartition: s.maxBytesPerPartition,
    sessionTimeoutMs: s.sessionTimeoutMs,
    transactionTimeoutMs: s.transactionTimeoutMs,
    logger,
    signal: ctx.shutdown.signal,
    fenceHint: { instanceIdSetting: 'SLUICE_NORMALIZER_INSTANCE_ID', transactionTimeoutSetting: 'SLUICE_NORMALIZER_TRANSACTION_TIMEOUT_MS' },
    ...(state ? { state } : {}),
    route: async (records, txn) => {
      const routed = await routeRecords(records, { rules, contract, encode, processor: PROCESSOR_NAME, ...(txn ? { dedupe: { state: txn, options: dedupeOptions } } : {}) });
      return {
        topicMessages: [
          { topic: s.eventsTopic, messages: routed.events },
          { topic: s.dlqTopic, messages: routed.deadLetters },
        ],
        result: routed.stats,
      };
    },
    onCommitted: (stats, seconds) => metrics.committed(stats, seconds),
    onTransactionFailed: (outcome) => metrics.transactions.inc({ outcome }),
    onLag: (topic, partition, lag, lastTimestampMs) => metrics.lagged({ topic, partition: String(partition) }, lag, lastTimestampMs),
    onActivity: liveness.touch,
  });
  ctx.shutdown.add('transactional loop', () => loop.stop());
  loop.failed.catch(liveness.fail);
  await startup.dependency(kafkaAt, async () => {
    try {
      await loop.start();
    } catch (error) {
      await loop.stop().catch(() => undefined); // a half-started loop: its clients closed before the next attempt
      throw error;
    }
  });
  startup.ready();
  logger.info({ port: server.port }, 'normalizer running');

  return {
    port: server.port,
    transactionalId,
    groupId: s.groupId,
    contract,
    schemaId,
    metrics: ctx.metrics,
    failed: loop.failed,
    stop: async () => {
      await ctx.shutdown.run();
    },
  };
}

/** The store of the durable dedupe (state partitioned like the CDC topic, changelog `<group>-dedupe-changelog`). */
export const DEDUPE_STORE = 'dedupe';

/**
 * Creates the dedupe changelog topic (compacted, as many partitions as the CDC topic)
 * when absent, and the state stores over it; closed on shutdown after the loop.
 */
async function openDedupeState(ctx: ProcessorContext<typeof normalizerSettings>, kafka: Kafka, admin: Admin, instanceId: string): Promise<StateStores> {
  const { logger } = ctx;
  const s = ctx.settings.normalizer;
  const topic = changelogTopicName(s.groupId, DEDUPE_STORE);
  const partitionsOf = async (name: string) => (await admin.fetchTopicMetadata({ topics: [name] })).topics[0]?.partitions.length ?? 0;
  const kafkaAt = `Kafka at ${ctx.core.kafka.brokers.join(',')}`;
  const cdcPartitions = await ctx.startup.dependency(kafkaAt, () => partitionsOf(s.cdcTopic));
  // As the topic plan defines it (`sluice topics plan`), with the CDC topic's actual partition count.
  await ctx.startup.dependency(kafkaAt, () => ensureTopics(admin, [dedupeChangelogTopic({ kafka: ctx.core.kafka, normalizer: s, cdcPartitions })!], logger));
  const changelogPartitions = await ctx.startup.dependency(kafkaAt, () => partitionsOf(topic));
  if (changelogPartitions < cdcPartitions) {
    throw new PermanentError(
      `the dedupe changelog topic ${topic} has ${changelogPartitions} partitions and the CDC topic ${s.cdcTopic} ${cdcPartitions}: each CDC partition needs its own; add partitions to ${topic} (kafka-topics --alter --partitions ${cdcPartitions}) before starting`,
    );
  }
  const state = new StateStores({
    name: DEDUPE_STORE,
    dir: join(s.stateDir, `${s.groupId}-${instanceId}`, DEDUPE_STORE),
    changelogTopic: topic,
    codec: DEDUPE_CHANGELOG_CODEC,
    source: new KafkaChangelogSource(kafka, admin, topic, `${s.groupId}-${DEDUPE_STORE}-restore-${instanceId}`, logger),
    logger,
    metrics: new StateMetrics(ctx.metrics),
  });
  ctx.shutdown.add('dedupe state stores', () => state.close());
  logger.info({ changelog: topic, partitions: cdcPartitions, windowDays: s.dedupeWindowDays, dir: join(s.stateDir, `${s.groupId}-${instanceId}`, DEDUPE_STORE) }, 'durable dedupe by event_id on');
  return state;
}

/**
 * Encodes one sample event of each type with the registered schema, so a contract
 * version the mapping cannot fill (a new field without a default) stops the start with
 * the reason, instead of dead-lettering every event.
 */
async function checkContractWritable(contract: AgentEventContract, encode: (value: unknown) => Promise<Buffer>): Promise<void> {
  for (const eventType of EVENT_TYPES) {
    const sample: ValidEvent = {
      eventId: '00000000-0000-4000-8000-000000000000',
      eventType,
      agentId: 'sample-agent',
      customerId: 'sample-customer',
      amountMinor: eventType === 'customer_onboarded' ? null : 2n ** 53n + 1n,
      currency: eventType === 'customer_onboarded' ? null : 'USD',
      occurredAtMicros: 0,
      receivedAtMicros: 0,
      source: null,
      sessionId: null,
      correlationId: null,
      metadata: '{"product":"sample"}',
    };
    try {
      await encode(toEnvelope(sample, contract));
    } catch (error) {
      throw new PermanentError(`contract ${contract.name} v${contract.version} cannot hold a ${eventType} event as the normalizer maps it: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * The long-running entry of `sluice normalizer` and main.ts: signals shut it down
 * gracefully (exit 0); a loop that stops for good shuts down and exits 1, so the
 * orchestrator restarts it.
 */
export async function runNormalizer(options: { configFile?: string } = {}): Promise<void> {
  const running = await startNormalizer({ ...options, handleSignals: true });
  try {
    await running.failed;
  } catch {
    await running.stop().catch(() => undefined);
    process.exit(1);
  }
}
