import avro from 'avsc';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, Message } from 'kafkajs';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { RegistryRestClient } from '../../processors/core/registry/ccompat.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { ROOT } from './build.js';

/**
 * Agent events as the normalizer writes them (schemas/agent-event/v1.avsc, Confluent wire
 * format, key = agent_id) on a topic of a test's own, and the shipped lake pipeline pointed
 * at that topic: what the export, report and operations tests start from.
 */

export const EVENT_TYPES = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
const BRANCH: Record<EventType, string> = {
  customer_onboarded: 'io.sluice.events.CustomerOnboarded',
  deposit_made: 'io.sluice.events.DepositMade',
  withdrawal_made: 'io.sluice.events.WithdrawalMade',
  investment_made: 'io.sluice.events.InvestmentMade',
};

export interface AgentEvent {
  eventId: string;
  type: EventType;
  agentId: string;
  customerId: string;
  amount: bigint | null;
  occurredAtMicros: bigint;
  receivedAtMicros: bigint;
  /** Channel, `web` when absent. */
  source?: string;
  sessionId?: string | null;
  correlationId?: string | null;
  /** investment_made only; `fund-a` when absent. */
  product?: string | null;
  metadata?: string | null;
}

/** Produces agent events to a topic it creates, v1 registered under `<topic>-value`. */
export class AgentEventProducer {
  private type: avro.Type | undefined;
  private schemaId = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly settings: CoreSettings,
    readonly topic: string,
  ) {}

  async setUp(partitions = 6): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: this.topic, numPartitions: partitions }] });
    } finally {
      await admin.disconnect();
    }
    const text = readFileSync(join(ROOT, 'schemas/agent-event/v1.avsc'), 'utf8');
    this.schemaId = await new RegistryRestClient(this.settings.registry.url).register(`${this.topic}-value`, text);
    this.type = avro.Type.forSchema(JSON.parse(text) as avro.Schema, { typeHook: exactLongHook as never, wrapUnions: 'auto' } as never);
  }

  /** The envelope of v1.avsc, `data` wrapped by its record's full name. */
  envelope(e: AgentEvent): Record<string, unknown> {
    const payload: Record<string, unknown> = { customer_id: e.customerId };
    if (e.type !== 'customer_onboarded') Object.assign(payload, { amount_minor: e.amount, currency: 'USD' });
    if (e.type === 'investment_made') payload.product = e.product === undefined ? 'fund-a' : e.product;
    payload.metadata = e.metadata ?? null;
    return {
      specversion: '1.0',
      id: e.eventId,
      type: `io.sluice.agent.${e.type}`,
      source: `/channels/${e.source ?? 'web'}`,
      // timestamp-micros: avsc takes numbers, exact below 2^53 µs (the year 2255).
      time: Number(e.occurredAtMicros),
      subject: e.agentId,
      schema_version: 1,
      received_at: Number(e.receivedAtMicros),
      correlation_id: e.correlationId ?? null,
      session_id: e.sessionId ?? null,
      data: { [BRANCH[e.type]]: payload },
    };
  }

  /** Confluent wire format: magic 0, int32 schema id, Avro binary. */
  encode(e: AgentEvent): Buffer {
    const head = Buffer.alloc(5);
    head.writeInt32BE(this.schemaId, 1);
    return Buffer.concat([head, this.type!.toBuffer(this.envelope(e))]);
  }

  /** The event id of an encoded event (e.g. a dead letter's original value). */
  decodeId(value: Buffer): string {
    return (this.type!.fromBuffer(value.subarray(5)) as { id: string }).id;
  }

  message(e: AgentEvent): Message {
    return { key: e.agentId, value: this.encode(e) };
  }

  /** Sends raw messages (events or poison) in chunks, acknowledged by all replicas. */
  async send(messages: Message[]): Promise<void> {
    const producer = this.kafka.producer();
    await producer.connect();
    try {
      for (let i = 0; i < messages.length; i += 2000) await producer.send({ topic: this.topic, acks: -1, messages: messages.slice(i, i + 2000) });
    } finally {
      await producer.disconnect();
    }
  }

  sendEvents(events: readonly AgentEvent[]): Promise<void> {
    return this.send(events.map((e) => this.message(e)));
  }

  /** Produces `event(i)` for i in [from, to) at about `perSecond`; ends when all are acknowledged. */
  async trickle(event: (i: number) => AgentEvent, from: number, to: number, perSecond: number): Promise<void> {
    const producer = this.kafka.producer();
    await producer.connect();
    try {
      const started = Date.now();
      const chunk = Math.max(1, Math.round(perSecond / 10));
      for (let i = from; i < to; i += chunk) {
        const end = Math.min(to, i + chunk);
        const messages: Message[] = [];
        for (let k = i; k < end; k++) messages.push(this.message(event(k)));
        await producer.send({ topic: this.topic, acks: -1, messages });
        const due = started + ((end - from) / perSecond) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
    } finally {
      await producer.disconnect();
    }
  }
}

export interface LakePipelineOptions {
  topic: string;
  dlq: string;
  /** Replaces the shipped `lake/agent_events/`; ends with `/`. */
  prefix: string;
  /** A literal consumer group and a 6 s session timeout; absent, the file keeps `${SLUICE_LAKE_CONSUMER_GROUP:...}`. */
  group?: string;
  period?: string;
  count?: number;
  /** The mapping fails for this agent's events (mapping_error dead letters). */
  failAgent?: string;
  /** `http.port: 0`, for runners started in-process. */
  anyHttpPort?: boolean;
  /** File name (without .yaml). */
  name?: string;
  /** `encode_threads`: Parquet encoded on worker threads (the shipped file encodes on the event loop). */
  encodeThreads?: number;
}

/**
 * A copy of the shipped connectors/exports/lake.yaml pointed at a test's topic, DLQ and key
 * prefix. Fails naming the text when lake.yaml no longer holds what is swapped.
 */
export function lakePipelineFile(o: LakePipelineOptions): string {
  let text = readFileSync(join(ROOT, 'connectors/exports/lake.yaml'), 'utf8');
  const swap = (from: string, to: string) => {
    if (!text.includes(from)) throw new Error(`connectors/exports/lake.yaml no longer holds "${from}": update test/support/agent-events.ts`);
    text = text.split(from).join(to);
  };
  swap('topics: [sluice.agent-events]', `topics: [${o.topic}]`);
  swap('topic: sluice.agent-events.export.dlq', `topic: ${o.dlq}`);
  swap('path: lake/agent_events/', `path: ${o.prefix}`);
  swap('period: 10s', `period: ${o.period ?? '500ms'}`);
  if (o.group !== undefined) swap('consumer_group: ${SLUICE_LAKE_CONSUMER_GROUP:sluice-export-lake}', `consumer_group: ${o.group}\n    session_timeout: 6s`);
  if (o.count !== undefined) swap('count: 50000', `count: ${o.count}`);
  if (o.failAgent !== undefined) swap('      mapping: |\n        (', `      mapping: |\n        subject = "${o.failAgent}" ? $error("bug: cannot map ${o.failAgent}") : (`);
  if (o.encodeThreads !== undefined) swap('    time_field: occurred_at\n', `    time_field: occurred_at\n    encode_threads: ${o.encodeThreads}\n`);
  if (o.anyHttpPort) text += '\nhttp:\n  port: 0\n';
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-lake-pipeline-')), `${o.name ?? 'lake'}.yaml`);
  writeFileSync(file, text);
  return file;
}
