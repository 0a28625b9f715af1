import type { Consumer, Kafka } from 'kafkajs';
import { coreSettings } from '../../core/config/core-settings.js';
import { loadSettings } from '../../core/config/settings.js';
import { createKafka } from '../../core/kafka/client.js';
import { ensureTopics } from '../../core/kafka/topics.js';
import { exportTopics } from '../../core/kafka/topic-plan.js';
import type { Logger } from '../../core/log/logger.js';
import { kafkaInput, type KafkaInputConfig } from '../../core/pipeline/components/kafka-input.js';
import type { PipelineConfig } from '../../core/pipeline/pipeline.js';
import { FAIL_FAST_RETRY, type StartupState } from '../../core/runtime/startup.js';
import { KafkaDeadLetters } from '../dead-letters.js';
import type { Input, InputComponent, InputContext, InputHandler } from './input.js';

/**
 * The kafka input (spec: core/pipeline/components/kafka-input.ts): a kafkajs consumer group.
 * Offsets are the group's (`offsets: 'group'`), committed by the runner after each flush;
 * rebalances and crashes are passed to the runner, which voids open batches and cuts writes
 * in flight. Dead letters go to the pipeline's DLQ topic through the same brokers (an
 * idempotent producer); the DLQ topic is created at start as the topic plan defines it.
 */
export class KafkaInput implements Input {
  readonly type = 'kafka';
  readonly offsets = 'group' as const;
  readonly finite = false;
  readonly ended = undefined;
  readonly describe: Record<string, unknown>;
  readonly decode: KafkaInputConfig['decode'];
  readonly deadLetters: KafkaDeadLetters;
  private readonly consumer: Consumer;
  private readonly kafka: Pick<Kafka, 'consumer' | 'producer' | 'admin'>;
  private readonly pipeline: PipelineConfig;
  private readonly log: Logger;

  constructor(
    private readonly config: KafkaInputConfig,
    private readonly ctx: InputContext,
  ) {
    this.pipeline = ctx.pipeline;
    this.log = ctx.logger;
    this.decode = config.decode;
    this.describe = { topics: config.topics ?? config.topic_pattern, group: config.consumer_group };
    this.kafka = ctx.kafka ?? kafkaClient(config, ctx);
    this.consumer = this.kafka.consumer({
      groupId: config.consumer_group,
      sessionTimeout: config.session_timeout,
      rebalanceTimeout: Math.max(60_000, config.session_timeout),
      heartbeatInterval: Math.min(3000, Math.floor(config.session_timeout / 5)),
      maxBytes: config.fetch_max_bytes,
      maxBytesPerPartition: Math.min(config.fetch_max_bytes, 4 * 1024 * 1024),
      maxWaitTimeInMs: 200,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    // Unlimited retries: kafkajs's idempotence needs them, and a sink's DLQ waits out a broker outage anyway.
    const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 } });
    this.deadLetters = new KafkaDeadLetters(producer, this.pipeline.dlq.topic, this.log);
  }

  /**
   * Waits for Kafka and for its input topics (another component creates them: the
   * normalizer, for sluice.agent-events), saying what it waits for in `startup`, creates the
   * DLQ topic, then connects and subscribes.
   */
  async connect(startup: StartupState): Promise<void> {
    const input = this.config;
    const kafkaAt = `Kafka at ${input.brokers.join(',')}`;
    // Fails fast: the startup waits log what they wait for and back off themselves.
    const admin = this.kafka.admin({ retry: FAIL_FAST_RETRY });
    await startup.dependency(kafkaAt, () => admin.connect());
    try {
      // Its DLQ as the topic plan defines it (`sluice topics plan`).
      const kafka = this.ctx.topics ?? { topicReplicationFactor: -1 };
      await startup.dependency(kafkaAt, () => ensureTopics(admin, exportTopics({ kafka, pipelines: [{ name: this.pipeline.name, dlqTopic: this.pipeline.dlq.topic }] }), this.log));
      // An input topic is another processor's output (sluice.agent-events: the normalizer's); subscribing before it exists fails.
      for (const topic of input.topics ?? []) {
        await startup.topic(admin, topic, {
          createdBy: 'the processor that writes it (sluice.agent-events: the normalizer, at its start)',
          hint: `check that its writer runs (\`sluice normalizer\`, its /readyz), or the pipeline's input.topics in ${this.pipeline.file}`,
        });
      }
    } finally {
      await admin.disconnect();
    }
    await startup.dependency(kafkaAt, () => this.deadLetters.connect());
    await startup.dependency(kafkaAt, () => this.consumer.connect());
    const topics = input.topics ?? [new RegExp(input.topic_pattern!)];
    await startup.dependency(kafkaAt, () => this.consumer.subscribe({ topics, fromBeginning: input.start_from === 'earliest' }));
  }

  /** Follows the group (rebalances, crashes) and consumes: the consumer connected and subscribed. */
  async run(handler: InputHandler): Promise<void> {
    const { REBALANCING, GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(REBALANCING, () => handler.rebalancing());
    this.consumer.on(GROUP_JOIN, (e) => handler.joined(e.payload.memberAssignment));
    this.consumer.on(CRASH, (e) => {
      if (!e.payload.restart) handler.crashed(e.payload.error);
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: ({ batch, heartbeat, resolveOffset, isRunning, isStale }) =>
        handler.batch({
          topic: batch.topic,
          partition: batch.partition,
          messages: batch.messages,
          highWatermark: batch.highWatermark,
          lastOffset: () => batch.lastOffset(),
          heartbeat,
          resolveOffset,
          isRunning,
          isStale,
        }),
    });
  }

  /** Commits the group's offset (kafkajs refuses a member of an old generation). */
  commit(topic: string, partition: number, next: bigint): Promise<void> {
    return this.consumer.commitOffsets([{ topic, partition, offset: next.toString() }]);
  }

  seek(topic: string, partition: number, offset: string): void {
    this.consumer.seek({ topic, partition, offset });
  }

  async check(): Promise<void> {
    // The runner's readiness checks group membership itself.
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.deadLetters.close();
  }
}

/** The Kafka client of a kafka input (its brokers, TLS and SASL; MSK IAM signs in the s3 output's region, else SLUICE_S3_REGION's). */
function kafkaClient(config: KafkaInputConfig, ctx: InputContext): Kafka {
  const output = ctx.pipeline.output.config as { region?: string };
  const region = output.region ?? loadSettings({ s3: { region: coreSettings.s3.region } }).s3.region;
  return createKafka(
    {
      brokers: config.brokers,
      clientId: config.client_id,
      ssl: config.tls.enabled,
      sslCaFile: config.tls.ca_file,
      saslMechanism: config.sasl.mechanism,
      saslUsername: config.sasl.username,
      saslPassword: config.sasl.password,
    },
    { region, logger: ctx.logger, clientId: `${config.client_id}-export-${ctx.pipeline.name}` },
  );
}

/** The kafka input component: its spec and its constructor. */
export const kafkaInputComponent: InputComponent<KafkaInputConfig> = {
  spec: kafkaInput,
  create: (config, ctx) => new KafkaInput(config, ctx),
};
