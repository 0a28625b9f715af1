import { defineComponent } from '../../core/pipeline/component.js';
import { bool, byteSize, duration, int, list, object, oneOf, regex, string, type Infer } from '../../core/pipeline/fields.js';
import { coreDefault } from '../../core/pipeline/components/core-defaults.js';
import { TOPIC_FIX, TOPIC_NAME } from '../../core/kafka/topics.js';
import type { InputComponent } from './input.js';


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
export const kafkaInput: InputComponent<KafkaInputConfig> = { spec: kafkaInputSpec };
