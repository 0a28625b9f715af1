import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import avro from 'avsc';
import type { Admin, Message, Producer, TopicMessages, Transaction } from 'kafkajs';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { ConfigError, isFenced } from '../../core/errors/errors.js';
import { MAX_PRODUCE_BYTES, splitBySize } from '../../core/kafka/transactional-loop.js';
import { TOPIC_FIX, TOPIC_NAME } from '../../core/kafka/topics.js';
import { defineComponent } from '../../core/pipeline/component.js';
import { bool, byteSize, duration, expression, int, map, object, oneOf, string, template, type Infer } from '../../core/pipeline/fields.js';
import { partSource, type PathTemplate } from '../../core/pipeline/path-template.js';
import { requireKafkaInput } from '../../core/pipeline/input-config.js';
import { RegistryRestClient } from '../../core/registry/ccompat.js';
import { exactLongHook } from '../../core/registry/codec.js';
import { compileExpression, type CompiledExpression } from '../expressions.js';
import type { Output, OutputBatch, OutputComponent, OutputContext, OutputRecord, PreparedWrite, RejectedRow, WriteContext } from './output.js';

/**
 * The `kafka` output: records to a topic, exactly once when the input is kafka.
 *
 * A flush is one Kafka transaction per input partition: the batch's records and the input
 * offsets (sendOffsets to the pipeline's consumer group) commit together, so a
 * read_committed consumer sees each record once whatever crashes (`offsets: 'output'`: the
 * transaction, not the consumer, makes offsets durable).
 *
 * Fencing, the way Kafka Streams' first exactly-once mode (one producer per task) does it,
 * because kafkajs 2.2 has no KIP-447 (TxnOffsetCommit carries no group generation): the
 * transactional id is stable per input partition (`<prefix>-<topic>-<partition>`). When a
 * partition is assigned, the runner asks `committedOffsets`; that (re)initialises the
 * partition's producer first (InitProducerId bumps the epoch: the previous owner, a zombie
 * or this process before a failure, is fenced and its open transaction completed or
 * aborted), and only then reads the group's offset, which is now stable. A flush of an
 * old owner fails on the fence and commits nothing. core/kafka/transactional-loop.ts does
 * the same per instance for the normalizer; its request splitting is reused here.
 */

const VALUE_FORMATS = ['json', 'avro'] as const;

const config = object(
  {
    topic: template({
      doc: 'Topic to write to. May hold `${topic}` and `${partition}` (the input record\'s) and `${data.<field>}` (a field of the record), e.g. `events.${data.event_type}`. The topic must exist (Sluice never auto-creates topics): a record whose rendered topic does not exist or is not a valid name goes to the DLQ (`topic_error`).',
      examples: ['sluice.agent-events.json'],
    }),
    key: expression({
      doc: 'The message key: a JSONata expression over the record (a field path such as `agent_id` is one). Its value as text (objects as JSON); unset, null or absent: no key (the partitioner spreads such records). Records with the same key go to the same partition (murmur2, as the Java client), so order per key holds.',
      optional: true,
      examples: ['agent_id'],
    }),
    value: object(
      {
        format: oneOf(VALUE_FORMATS, { doc: '`json` (UTF-8 JSON of the record; 64-bit integers beyond 2^53 as exact numbers) or `avro` (Confluent wire format with the schema id of `subject`).', default: 'json' }),
        subject: string({ doc: 'For `avro`: the registry subject whose schema the records are written with (e.g. `<topic>-value`).', optional: true, minLength: 1, examples: ['sluice.agent-events.v2-value'] }),
        schema_file: string({ doc: 'For `avro`: the Avro schema (.avsc), relative to the pipeline file. It must be registered under `subject` (`sluice schemas publish`), unless `auto_register` is on.', optional: true, minLength: 1, examples: ['../../schemas/agent-event/v1.avsc'] }),
        auto_register: bool({ doc: 'For `avro`: register the schema under `subject` at start when it is not there. Off in production, where schemas ship through CI checks.', default: false }),
      },
      { doc: 'How each record becomes the message value.' },
    ),
    headers: map(expression({ doc: 'a JSONata expression over the record; its value as text (objects as JSON); null or absent: the header is left out' }), {
      doc: 'Message headers: name -> JSONata expression over the record.',
      default: {},
      keyPattern: /^[\x21-\x7e]{1,255}$/,
      keyFix: 'header names are printable ASCII without spaces',
      examples: [{ event_type: 'event_type', source: '"sluice"' }],
    }),
    transactional_id_prefix: string({
      doc: 'Prefix of the transactional ids (`<prefix>-<input topic>-<partition>`). Unset: the input\'s consumer group. Two pipelines must never share one (they would fence each other); instances of one pipeline do share it, which is what fences a partition\'s previous owner.',
      optional: true,
      pattern: /^[A-Za-z0-9._-]{1,200}$/,
      patternFix: 'use letters, digits, ".", "_" and "-"',
    }),
    transaction_timeout: duration({ doc: 'How long the broker lets a transaction stay open before aborting it (and fencing its producer). A flush must finish within it; at most the broker\'s transaction.max.timeout.ms (15 min by default).', default: '60s', min: 1000, max: 900_000 }),
    max_message_bytes: byteSize({ doc: "Largest message value accepted; a bigger record goes to the DLQ (`message_too_large`) instead of failing the transaction. Keep it at or below the topic's max.message.bytes.", default: '1MiB', min: 1024, max: 100 * 1024 ** 2 }),
    batching: object(
      {
        count: int({ doc: 'Flush (commit a transaction) when a partition\'s batch holds this many records.', default: 10000, min: 1, max: 1_000_000 }),
        bytes: byteSize({ doc: 'Flush when the batch\'s input reaches about this size.', default: '16MiB', min: 1024, max: 1024 ** 3 }),
        period: duration({ doc: 'Flush at the latest this long after the batch\'s first record: the end-to-end latency a read_committed consumer sees.', default: '1s', min: 1 }),
      },
      { doc: 'When a partition\'s transaction commits: whichever limit is reached first.' },
    ),
  },
  { doc: 'Kafka output settings.' },
);

type RawKafkaOutputConfig = Infer<typeof config>;
export type KafkaOutputConfig = RawKafkaOutputConfig;

const TOPIC_VARIABLES = new Set(['topic', 'partition']);

export const kafkaOutputSpec = defineComponent({
  name: 'kafka',
  kind: 'output',
  summary: 'Produces records to a Kafka topic (key, value as JSON or Avro, headers), exactly once with a kafka input: records and input offsets in one transaction.',
  description: [
    "It writes to the input's cluster (its brokers, TLS and SASL), because exactly once needs the input offsets and the records in one transaction of one cluster. Each input partition's batch is one transaction holding its records and the partition's next offset (sendOffsets to `input.kafka.consumer_group`); consumers of the topic with `isolation.level=read_committed` see every record once through crashes, restarts and rebalances. Transactional ids are stable per input partition (see `transactional_id_prefix`): the member a partition is assigned to fences its previous owner before it reads the committed offset.",
    "Records whose topic cannot be rendered or does not exist, whose value does not fit the Avro schema, or is larger than `max_message_bytes` go to the DLQ with a reason (`topic_error`, `schema_mismatch`, `message_too_large`, `key_error`); broker faults block and retry, they never drop data. Dead letters are at least once (they are sent before the transaction commits, outside it).",
  ].join('\n\n'),
  config,
  example: ['kafka:', '  topic: sluice.agent-events.json', '  key: agent_id', '  value:', '    format: json', '  headers:', '    event_type: event_type', '  batching:', '    period: 500ms'].join('\n'),
  finish(c, ctx): KafkaOutputConfig {
    for (const part of c.topic.parts) {
      if ((part.kind === 'kafka' && !TOPIC_VARIABLES.has(part.name)) || part.kind === 'time') {
        ctx.reportInValue(['topic'], part.offset, `${partSource(part)} cannot be part of a topic name`, 'use ${topic}, ${partition} or ${data.<field>}');
      }
    }
    if (c.topic.parts.every((p) => p.kind === 'text') && !TOPIC_NAME.test(c.topic.text)) ctx.report(['topic'], `"${c.topic.text}" is not a topic name`, TOPIC_FIX);
    if (c.value.format === 'avro') {
      if (!c.value.subject) ctx.report(['value', 'subject'], 'format avro needs the subject of its schema', 'add subject: <topic>-value');
      if (!c.value.schema_file) ctx.report(['value', 'schema_file'], 'format avro needs the schema file', 'add schema_file: path/to/schema.avsc (relative to the pipeline file)');
    } else if (c.value.subject || c.value.schema_file) {
      ctx.report([c.value.subject ? 'value' : 'value', c.value.subject ? 'subject' : 'schema_file'], 'subject and schema_file apply to format avro only', 'remove them, or set format: avro');
    }
    return c;
  },
});

/** A record waiting in the batch (everything is rendered at flush, where a JSONata expression may be asynchronous). */
class KafkaBatch implements OutputBatch {
  readonly records: OutputRecord[] = [];

  add(record: OutputRecord): undefined {
    this.records.push(record);
    return undefined;
  }

  get rows(): number {
    return this.records.length;
  }
}

class Refused extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

interface AvroValue {
  id: number;
  type: avro.Type;
}

export class KafkaOutput implements Output<KafkaBatch> {
  readonly type = 'kafka';
  readonly offsets = 'output' as const;
  readonly batching: Output['batching'];
  readonly describe: Record<string, unknown>;
  private readonly group: string;
  private readonly prefix: string;
  private readonly key: CompiledExpression | undefined;
  private readonly headers: [string, CompiledExpression][];
  private admin: Admin | undefined;
  /** Per input partition (`topic/partition`): its transactional producer, initialised on assignment. */
  private readonly producers = new Map<string, Producer>();
  /** Topics known to exist (listTopics), refreshed when a record names one not listed. */
  private topics = new Set<string>();
  private avro: AvroValue | undefined;

  constructor(
    private readonly config: KafkaOutputConfig,
    private readonly ctx: OutputContext,
  ) {
    const input = ctx.pipeline.input;
    if (input.type !== 'kafka' || !ctx.kafka) {
      throw new ConfigError([{ source: 'file', setting: `${ctx.pipeline.file}: output.kafka`, message: 'the kafka output needs a kafka input (exactly once commits the input offsets in its transactions)', fix: 'use input: kafka' }]);
    }
    this.group = input.config.consumer_group;
    this.prefix = config.transactional_id_prefix ?? this.group;
    this.key = config.key !== undefined ? compileExpression(config.key) : undefined;
    this.headers = Object.entries(config.headers).map(([name, text]) => [name, compileExpression(text)]);
    this.batching = config.batching;
    this.describe = { topic: config.topic.text, value: config.value.format, transactionalIds: `${this.prefix}-<topic>-<partition>` };
  }

  async connect(): Promise<void> {
    if (!this.admin) {
      const admin = this.ctx.kafka!.admin();
      await admin.connect();
      this.admin = admin;
    }
    await this.refreshTopics();
    const fixed = this.config.topic.parts.every((p) => p.kind === 'text') ? this.config.topic.text : undefined;
    if (fixed !== undefined && !this.topics.has(fixed)) throw new Error(`topic ${fixed} does not exist (create it: \`sluice topics apply\` or your platform's topic tooling; Sluice never auto-creates topics)`);
    if (this.config.value.format === 'avro' && !this.avro) this.avro = await this.avroValue();
  }

  async check(): Promise<void> {
    if (!this.admin) throw new Error('not connected to Kafka yet');
    await this.admin.describeCluster();
  }

  openBatch(): KafkaBatch {
    return new KafkaBatch();
  }

  /**
   * On assignment: fences the partition's previous owner (a new InitProducerId for its
   * transactional id), then reads the group's committed offset, stable once the fence is up.
   */
  async committedOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>> {
    for (const partition of partitions) await this.initProducer(topic, partition);
    const fetched = await this.admin!.fetchOffsets({ groupId: this.group, topics: [topic] });
    const out = new Map<number, bigint>();
    for (const p of fetched.find((t) => t.topic === topic)?.partitions ?? []) {
      if (partitions.includes(p.partition) && Number(p.offset) >= 0) out.set(p.partition, BigInt(p.offset));
    }
    return out;
  }

  async write(batch: KafkaBatch, ctx: WriteContext): Promise<PreparedWrite> {
    const key = `${ctx.topic}/${ctx.partition}`;
    const producer = this.producers.get(key);
    // Asked on every assignment before the first flush; absent after a failure: the runner asks again.
    if (!producer) throw new Error(`no transactional producer for ${key}: its offsets are read again first`);
    const rejected: RejectedRow[] = [];
    const byTopic = new Map<string, Message[]>();
    let bytes = 0;
    let sent = 0;
    const rendered: { topic: string; message: Message; record: OutputRecord }[] = [];
    for (const record of batch.records) {
      try {
        rendered.push({ record, ...(await this.render(record)) });
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        rejected.push({ reason: error.reason, error: error.message, record });
      }
    }
    const unknown = [...new Set(rendered.map((r) => r.topic))].filter((t) => !this.topics.has(t));
    if (unknown.length > 0) await this.refreshTopics();
    for (const r of rendered) {
      if (!this.topics.has(r.topic)) {
        rejected.push({ reason: DLQ_REASONS.topicError, error: `topic ${r.topic} does not exist`, record: r.record });
        continue;
      }
      let list = byTopic.get(r.topic);
      if (!list) byTopic.set(r.topic, (list = []));
      list.push(r.message);
      bytes += (r.message.value as Buffer).length;
      sent++;
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    let txn: Transaction | undefined;
    try {
      txn = await producer.transaction();
      for (const part of splitBySize(topicMessages, MAX_PRODUCE_BYTES)) {
        if (!ctx.owned()) throw new Error('partition lost while writing');
        await txn.sendBatch({ topicMessages: part, acks: -1 });
      }
      await txn.sendOffsets({ consumerGroupId: this.group, topics: [{ topic: ctx.topic, partitions: [{ partition: ctx.partition, offset: ctx.nextOffset.toString() }] }] });
    } catch (error) {
      await this.abandon(key, producer, txn);
      throw error;
    }
    const open = txn;
    return {
      rejected,
      stats: { bytes, objects: sent },
      commit: async () => {
        try {
          await open.commit();
        } catch (error) {
          // Outcome unknown (or fenced): the producer is re-initialised before this partition's next flush.
          this.forget(key, producer);
          throw error;
        }
      },
      abort: async () => {
        await this.abandon(key, producer, open);
      },
    };
  }

  /** Partitions revoked by a rebalance: their producers are closed now (the new owner fenced them anyway). */
  assigned(partitions: Readonly<Record<string, readonly number[]>>): void {
    for (const [key, producer] of [...this.producers]) {
      const cut = key.lastIndexOf('/');
      if (!(partitions[key.slice(0, cut)] ?? []).includes(Number(key.slice(cut + 1)))) this.forget(key, producer);
    }
  }

  async close(): Promise<void> {
    const producers = [...this.producers.values()];
    this.producers.clear();
    await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
    await this.admin?.disconnect();
    this.admin = undefined;
  }

  private transactionalId(topic: string, partition: number): string {
    return `${this.prefix}-${topic}-${partition}`;
  }

  private async initProducer(topic: string, partition: number): Promise<void> {
    const key = `${topic}/${partition}`;
    const old = this.producers.get(key);
    if (old) this.forget(key, old);
    const producer = this.ctx.kafka!.producer({
      transactionalId: this.transactionalId(topic, partition),
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.config.transaction_timeout,
      allowAutoTopicCreation: false,
      // CONCURRENT_TRANSACTIONS right after a commit lasts milliseconds: retry soon.
      retry: { initialRetryTime: 10, maxRetryTime: 5_000, retries: Number.MAX_SAFE_INTEGER },
    });
    await producer.connect();
    try {
      // InitProducerId now (kafkajs sends it at the first transaction): bumps the epoch, completes or aborts the previous owner's open transaction.
      const txn = await producer.transaction();
      await txn.abort();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    this.producers.set(key, producer);
  }

  /** Drops a producer whose state is unknown (a failed or fenced transaction). */
  private forget(key: string, producer: Producer): void {
    if (this.producers.get(key) === producer) this.producers.delete(key);
    void producer.disconnect().catch(() => undefined);
  }

  private async abandon(key: string, producer: Producer, txn: Transaction | undefined): Promise<void> {
    try {
      if (txn?.isActive()) await txn.abort();
    } catch (error) {
      if (!isFenced(error)) this.ctx.logger.debug({ err: error }, 'transaction abort failed; the producer is re-initialised');
      this.forget(key, producer);
    }
  }

  private async refreshTopics(): Promise<void> {
    this.topics = new Set(await this.admin!.listTopics());
  }

  private async render(record: OutputRecord): Promise<{ topic: string; message: Message }> {
    const topic = renderTopic(this.config.topic, record);
    const message: Message = { value: this.encode(record.value) };
    if (message.value!.length > this.config.max_message_bytes) throw new Refused(DLQ_REASONS.messageTooLarge, `the value is ${message.value!.length} bytes, more than max_message_bytes ${this.config.max_message_bytes}`);
    if (this.key) {
      const k = await evaluate(this.key, record.value, 'key');
      if (k !== undefined) message.key = k;
    }
    if (this.headers.length > 0) {
      const headers: Record<string, string> = {};
      for (const [name, expr] of this.headers) {
        const v = await evaluate(expr, record.value, `header ${name}`);
        if (v !== undefined) headers[name] = v;
      }
      message.headers = headers;
    }
    return { topic, message };
  }

  private encode(value: unknown): Buffer {
    if (!this.avro) return Buffer.from(toJson(value));
    const { id, type } = this.avro;
    let body: Buffer;
    try {
      body = type.toBuffer(value);
    } catch (error) {
      throw new Refused(DLQ_REASONS.schemaMismatch, `the record does not fit schema ${this.config.value.subject} (id ${id}): ${(error as Error).message}`);
    }
    const header = Buffer.alloc(5);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, body]);
  }

  private async avroValue(): Promise<AvroValue> {
    const { subject, schema_file, auto_register } = this.config.value;
    const file = resolve(dirname(this.ctx.pipeline.file), schema_file!);
    const text = readFileSync(file, 'utf8');
    const schema = JSON.parse(text) as avro.Schema;
    const type = avro.Type.forSchema(schema, { typeHook: exactLongHook as never });
    const registry = requireKafkaInput(this.ctx.pipeline, 'the kafka output').registry;
    const rest = new RegistryRestClient(registry.url, { username: registry.username, password: registry.password });
    const found = await rest.lookup(subject!, JSON.stringify(schema));
    if (found) return { id: found.id, type };
    if (!auto_register) {
      throw new ConfigError([{ source: 'file', setting: `${this.ctx.pipeline.file}: output.kafka.value`, message: `the schema of ${file} is not registered under subject ${subject}`, fix: 'publish it (`sluice schemas publish`), or set auto_register: true' }]);
    }
    return { id: await rest.register(subject!, JSON.stringify(schema)), type };
  }
}

async function evaluate(expr: CompiledExpression, value: unknown, what: string): Promise<string | undefined> {
  let v: unknown;
  try {
    v = await expr.evaluate(value);
  } catch (error) {
    throw new Refused(DLQ_REASONS.keyError, `the ${what} expression failed: ${(error as Error).message}`);
  }
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : toJson(v);
}

/** Marks a BigInt inside JSON.stringify's output (a private-use character and a per-process nonce: no real string is taken for one). */
const BIGINT_MARK = `\uE000${Math.random().toString(36).slice(2)}:`;

/** JSON with exact 64-bit integers (a BigInt is written as its digits); Buffers as base64. */
export function toJson(value: unknown): string {
  let marked = false;
  const text = JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    if (typeof v === 'bigint') {
      marked = true;
      return BIGINT_MARK + v.toString();
    }
    // JSON.stringify has already called Buffer's toJSON: read the original from the holder.
    const original = (this as Record<string, unknown>)[key];
    if (Buffer.isBuffer(original) || original instanceof Uint8Array) return Buffer.from(original).toString('base64');
    return v;
  });
  if (text === undefined) return 'null';
  return marked ? text.replace(new RegExp(`"${BIGINT_MARK}(-?\\d+)"`, 'g'), '$1') : text;
}

/** The topic of a record: `${topic}`, `${partition}` of the input record, `${data.<field>}` of the value. */
export function renderTopic(t: PathTemplate, record: Pick<OutputRecord, 'topic' | 'partition' | 'value'>): string {
  let out = '';
  for (const p of t.parts) {
    if (p.kind === 'text') out += p.text;
    else if (p.kind === 'kafka') out += p.name === 'topic' ? record.topic : String(record.partition);
    else if (p.kind === 'field') {
      let v: unknown = record.value;
      for (const name of p.path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[name] : undefined;
      if (v === null || v === undefined || typeof v === 'object') throw new Refused(DLQ_REASONS.topicError, `data.${p.path.join('.')} is ${v === null || v === undefined ? 'absent' : 'not a scalar'}: no topic name`);
      out += String(v);
    }
  }
  if (!TOPIC_NAME.test(out)) throw new Refused(DLQ_REASONS.topicError, `"${out.slice(0, 300)}" is not a topic name (${TOPIC_FIX})`);
  return out;
}

/** The kafka output component: its spec and its constructor. */
export const kafkaOutput: OutputComponent<KafkaOutputConfig> = {
  spec: kafkaOutputSpec,
  offsets: 'output',
  create: (config, ctx) => new KafkaOutput(config, ctx),
};
