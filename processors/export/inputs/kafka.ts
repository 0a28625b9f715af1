import { defineComponent } from '../../core/pipeline/component.js';
import { bool, byteSize, duration, int, list, object, oneOf, regex, string, type Infer } from '../../core/pipeline/fields.js';
import { coreDefault } from '../../core/pipeline/components/core-defaults.js';
import type { Consumer, Kafka } from 'kafkajs';
import { coreSettings } from '../../core/config/core-settings.js';
import { loadSettings } from '../../core/config/settings.js';
import { createKafka } from '../../core/kafka/client.js';
import { ensureTopics, TOPIC_FIX, TOPIC_NAME } from '../../core/kafka/topics.js';
import { exportTopics } from '../../core/kafka/topic-plan.js';
import type { Logger } from '../../core/log/logger.js';
import type { PipelineConfig } from '../../core/pipeline/pipeline.js';
import { FAIL_FAST_RETRY, type StartupState } from '../../core/runtime/startup.js';
import { within } from '../../core/runtime/timeouts.js';
import { KafkaDeadLetters } from '../dead-letters.js';
import type { Input, InputComponent, InputContext, InputHandler } from './input.js';

export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512', 'aws-msk-iam'] as const;

const config = object(
  {
    brokers: list(string({ doc: 'a broker as host:port', pattern: /^[^\s:,/]+:\d{1,5}$/, patternFix: 'write host:port' }), {
      doc: 'Bootstrap brokers as host:port. An item may hold several, comma-separated, so `[${SLUICE_KAFKA_BROKERS}]` works.',
      commaSeparated: true,
      minItems: 1,
      ...coreDefault('kafka', 'brokers'),
      examples: [['b-1.msk.example.com:9098', 'b-2.msk.example.com:9098']],
    }),
    topics: list(string({ doc: 'a topic name', pattern: TOPIC_NAME, patternFix: TOPIC_FIX }), {
      doc: 'Topics to consume. Set this or `topic_pattern`.',
      optional: true,
      minItems: 1,
      unique: true,
      examples: [['sluice.agent-events']],
    }),
    topic_pattern: regex({
      doc: 'A JavaScript regular expression; every topic whose name it matches is consumed, including topics created later (on the next metadata refresh). Anchor it (`^...$`) to match whole names. Set this or `topics`.',
      optional: true,
      examples: ['^sluice\\.agent-events(\\.v[0-9]+)?$'],
    }),
    consumer_group: string({
      doc: "Consumer group id. Its committed offsets are the pipeline's progress: renaming it starts over from `start_from`, and replay is an offset reset of this group. Instances of the same pipeline share it and split the partitions.",
      minLength: 1,
      examples: ['sluice-export-lake'],
    }),
    client_id: string({ doc: 'Client id sent to the brokers (shows in broker logs and quotas).', minLength: 1, ...coreDefault('kafka', 'clientId') }),
    start_from: oneOf(['earliest', 'latest'] as const, {
      doc: 'Where a group with no committed offset for a partition starts: `earliest` (the whole retained log) or `latest` (only new records). Committed offsets always win.',
      default: 'earliest',
    }),
    decode: oneOf(['avro_registry', 'json', 'raw'] as const, {
      doc: "How record values are decoded: `avro_registry` (Confluent wire format, the writer's schema fetched from `registry` by id; logical types kept, longs beyond 2^53 as BigInt), `json` (UTF-8 JSON) or `raw` (the bytes). A value that does not decode goes to the DLQ.",
      default: 'avro_registry',
    }),
    registry: object(
      {
        url: string({ doc: 'Confluent-compatible schema registry base URL.', pattern: /^https?:\/\/\S+$/, patternFix: 'write an http(s) URL', ...coreDefault('registry', 'url') }),
        username: string({ doc: 'Basic-auth user.', optional: true, ...coreDefault('registry', 'username') }),
        password: string({ doc: 'Basic-auth password; write it as ${ENV}.', optional: true, ...coreDefault('registry', 'password') }),
      },
      { doc: 'The schema registry, for `decode: avro_registry`.' },
    ),
    max_batch_records: int({
      doc: 'Most records taken from a partition into the pipeline at once. With the output batch limits it bounds memory: consumption pauses (backpressure) rather than buffering more.',
      default: 10000,
      min: 1,
      max: 1_000_000,
    }),
    fetch_max_bytes: byteSize({ doc: 'Most bytes one fetch request returns.', default: '10MiB', min: 1024 }),
    session_timeout: duration({ doc: 'Consumer group session timeout: how long the group waits for a silent member before rebalancing its partitions.', default: '30s', min: 1000 }),
    tls: object(
      {
        enabled: bool({ doc: 'Connect to the brokers over TLS.', ...coreDefault('kafka', 'ssl') }),
        ca_file: string({ doc: 'PEM file of the CAs to trust (system CAs when unset).', optional: true, ...coreDefault('kafka', 'sslCaFile') }),
      },
      { doc: 'TLS to the brokers.' },
    ),
    sasl: object(
      {
        mechanism: oneOf(SASL_MECHANISMS, { doc: 'SASL mechanism; `aws-msk-iam` signs with the default AWS credentials chain.', ...coreDefault('kafka', 'saslMechanism') }),
        username: string({ doc: 'User for plain and scram.', optional: true, ...coreDefault('kafka', 'saslUsername') }),
        password: string({ doc: 'Password for plain and scram; write it as ${ENV}.', optional: true, ...coreDefault('kafka', 'saslPassword') }),
      },
      { doc: 'SASL authentication.' },
    ),
  },
  { doc: 'Kafka consumer settings.' },
);

export type KafkaInputConfig = Infer<typeof config>;

export const kafkaInputSpec = defineComponent({
  name: 'kafka',
  kind: 'input',
  summary: 'Consumes Kafka topics as a consumer group and decodes each value (Avro through the schema registry, JSON or raw bytes).',
  description: [
    'Records of one partition are processed in offset order; partitions are independent, so order holds per key (agent_id) and not across keys.',
    "Offsets are committed only after the output has durably written every record up to them, so a crash or a rebalance replays from the last commit (at least once); the S3 output's deterministic keys turn the replay into an overwrite (exactly once in effect).",
  ].join('\n\n'),
  config,
  example: ['kafka:', '  topics: [sluice.agent-events]', '  consumer_group: sluice-export-lake', '  start_from: earliest', '  decode: avro_registry'].join('\n'),
  finish(c, ctx) {
    if (c.topics && c.topic_pattern !== undefined) {
      ctx.report(['topic_pattern'], 'both topics and topic_pattern are set', 'keep one: a list of topics or one pattern');
    } else if (!c.topics && c.topic_pattern === undefined) {
      ctx.report([], 'names no topics', 'add topics: [sluice.agent-events] or topic_pattern: ^sluice\\..*$');
    }
    if ((c.sasl.mechanism === 'plain' || c.sasl.mechanism.startsWith('scram')) && (!c.sasl.username || !c.sasl.password)) {
      ctx.report(['sasl'], `sasl mechanism ${c.sasl.mechanism} needs a username and a password`, 'set sasl.username and sasl.password (e.g. ${SLUICE_KAFKA_SASL_PASSWORD}), or SLUICE_KAFKA_SASL_USERNAME / SLUICE_KAFKA_SASL_PASSWORD');
    }
    return c;
  },
});

/** The kafka input: its consumer group is driven by the export runner (runner.ts). */

/**
 * The kafka input (its spec above): a kafkajs consumer group.
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
    this.kafka = ctx.kafka ?? kafkaClientFor(config, ctx.pipeline, ctx.logger);
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

  /**
   * Leaves the group and disconnects, waiting at most `leaveTimeoutMs`: kafkajs finishes a
   * JoinGroup in progress before it can leave (a member re-joining after a rebalance or after
   * 'the coordinator is not aware of this member' waits for the whole group, up to the
   * rebalance timeout), and a SIGTERM must not wait for that. The runner flushed and
   * committed before this, so stopping without leaving loses nothing: the coordinator drops
   * the member after session_timeout and the partitions are read from their committed offsets.
   */
  async stop(): Promise<void> {
    const disconnected = this.consumer.disconnect();
    // Past the wait nobody awaits it any more: a late failure is logged, never an unhandled rejection.
    disconnected.catch((error: unknown) => this.log.warn({ err: error }, 'consumer disconnect failed'));
    const left = await within(disconnected, this.leaveTimeoutMs);
    if (!left.settled) {
      this.log.warn(
        { group: this.config.consumer_group, waitedMs: this.leaveTimeoutMs },
        'the consumer did not leave its group in time (it is re-joining the group); stopping without leaving: nothing uncommitted is lost, the coordinator drops this member after session_timeout',
      );
    }
    await this.deadLetters.close();
  }

  /** How long stop() waits for the consumer to leave its group (see stop). */
  leaveTimeoutMs = LEAVE_TIMEOUT_MS;
}

/** How long a stopping kafka input waits for its consumer to leave the group: well under the 30 s a SIGTERM's closer gets, with the flushes before it. */
export const LEAVE_TIMEOUT_MS = 10_000;

/** The Kafka client of a kafka input (its brokers, TLS and SASL; MSK IAM signs in the s3 output's region, else SLUICE_S3_REGION's). */
export function kafkaClientFor(config: KafkaInputConfig, pipeline: PipelineConfig, logger: Logger): Kafka {
  const output = pipeline.output.config as { region?: string };
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
    { region, logger, clientId: `${config.client_id}-export-${pipeline.name}` },
  );
}

/** The kafka input component: its spec and its constructor. */
export const kafkaInput: InputComponent<KafkaInputConfig> = {
  spec: kafkaInputSpec,
  create: (config, ctx) => new KafkaInput(config, ctx),
};
