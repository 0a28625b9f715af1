/**
 * docs/domain.md-shaped agent events for the export bench, encoded the way the normalizer
 * writes them to the events topic: the schemas/agent-event envelope (processors/normalizer/
 * envelope.ts), Avro in the Confluent wire format (magic 0 + 4-byte schema id + body),
 * Kafka key = agent_id. Encoded with avsc directly (no registry round trip a record), so a
 * backlog of millions is produced in about a minute.
 *
 * The shape of a real month: events arrive in time order over `days` days (so a flush
 * covers a day or two, not the whole month), 3 % of them late (occurred_at up to 36 h
 * before they were received, landing in an earlier day partition), a few hundred agents
 * of unequal activity, ~40 customers each, the four event types in a realistic mix,
 * money in minor units with a few amounts beyond 2^53.
 */
import avro from 'avsc';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Partitioners, type Kafka } from 'kafkajs';
import type { RegistryRestClient } from '../../processors/core/registry/ccompat.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { seededRandom } from '../../test/support/random.js';
import { ROOT } from './processes.js';

export const AGENT_EVENT_SCHEMA_FILE = `${ROOT}schemas/agent-event/v1.avsc`;

export function agentEventSchemaText(): string {
  return readFileSync(AGENT_EVENT_SCHEMA_FILE, 'utf8');
}

/** The avsc type the export's decoder uses too (exact longs, wrapped union of records). */
export function agentEventType(schemaText: string): avro.Type {
  return avro.Type.forSchema(JSON.parse(schemaText) as avro.Schema, { typeHook: exactLongHook as never, wrapUnions: 'auto' });
}

const EVENT_TYPES = [
  // type, share, data branch
  ['customer_onboarded', 0.1, 'io.sluice.events.CustomerOnboarded'],
  ['deposit_made', 0.45, 'io.sluice.events.DepositMade'],
  ['withdrawal_made', 0.25, 'io.sluice.events.WithdrawalMade'],
  ['investment_made', 0.2, 'io.sluice.events.InvestmentMade'],
] as const;
const CHANNELS = ['agent_app', 'agent_app', 'mobile', 'web', 'backend'] as const;
const PRODUCTS = ['index-fund', 'bond-ladder', 'money-market', 'growth-fund'] as const;
const DAY_US = 86_400_000_000;

export interface BacklogOptions {
  total: number;
  schemaId: number;
  type: avro.Type;
  /** First day of the month, UTC, e.g. '2026-09-01'. */
  monthStart: string;
  days: number;
  agents: number;
  seed?: number;
}

export interface EncodedEvent {
  key: Buffer;
  value: Buffer;
}

export class AgentEventBacklog {
  private readonly random: () => number;
  private readonly startUs: number;
  private readonly header: Buffer;
  private readonly agentKeys: Buffer[];
  private readonly agentIds: string[];
  /** amount_minor summed since the last takeAmountSum(): safe integers as a number (exact below 2^53), the rest as bigint. */
  private smallSum = 0;
  private bigSum = 0n;

  constructor(private readonly o: BacklogOptions) {
    this.random = seededRandom(o.seed ?? 20260901); // the backlog is the same on every run
    this.startUs = Date.parse(`${o.monthStart}T00:00:00Z`) * 1000;
    this.header = Buffer.alloc(5);
    this.header.writeInt32BE(o.schemaId, 1);
    this.agentIds = Array.from({ length: o.agents }, (_, a) => `agent-${String(a + 1).padStart(4, '0')}`);
    this.agentKeys = this.agentIds.map((a) => Buffer.from(a));
  }

  /** The envelope of event `i` (0 <= i < total), in avsc's shape. */
  envelope(i: number): { agent: number; value: Record<string, unknown> } {
    const r = this.random;
    // Unequal activity: agent index skewed towards the low numbers (the busiest ~10x the quietest).
    const agent = Math.min(this.o.agents - 1, Math.floor(this.o.agents * r() ** 1.6));
    const agentId = this.agentIds[agent]!;
    const pick = r();
    let t = 0;
    let share: number = EVENT_TYPES[0][1];
    while (pick >= share && t < EVENT_TYPES.length - 1) share += EVENT_TYPES[++t]![1];
    const [eventType, , branch] = EVENT_TYPES[t]!;
    // Received in time order over the month, a few seconds after it happened; 3 % late by up to 36 h.
    const receivedUs = this.startUs + Math.floor(((i + r()) / this.o.total) * this.o.days * DAY_US);
    const delayUs = r() < 0.03 ? 60_000_000 + Math.floor(r() * 36 * 3_600_000_000) : Math.floor(r() * 5_000_000);
    const occurredUs = Math.max(this.startUs, receivedUs - delayUs);
    const customer = `cust-${agentId.slice(6)}-${String(Math.floor(r() * 40)).padStart(2, '0')}`;
    let data: Record<string, unknown>;
    if (eventType === 'customer_onboarded') {
      data = { customer_id: customer, metadata: r() < 0.3 ? '{"kyc":"tier-1","referral":true}' : null };
    } else {
      // Log-uniform from 5.00 to 50,000.00; 1 in 100,000 beyond 2^53 (exact money must hold).
      const amount = r() < 0.00001 ? 2n ** 53n + BigInt(1 + Math.floor(r() * 1000)) : Math.round(500 * 10_000 ** r());
      if (typeof amount === 'bigint') this.bigSum += amount;
      else this.smallSum += amount;
      if (eventType === 'investment_made') {
        const product = PRODUCTS[Math.floor(r() * PRODUCTS.length)]!;
        data = { customer_id: customer, amount_minor: amount, currency: 'USD', product, metadata: `{"product":"${product}","term_months":${12 * (1 + Math.floor(r() * 5))}}` };
      } else {
        data = { customer_id: customer, amount_minor: amount, currency: 'USD', metadata: r() < 0.2 ? `{"branch":"br-${Math.floor(r() * 80)}"}` : null };
      }
    }
    return {
      agent,
      value: {
        specversion: '1.0',
        id: randomUUID(),
        type: `io.sluice.agent.${eventType}`,
        source: `/channels/${CHANNELS[Math.floor(r() * CHANNELS.length)]}`,
        time: occurredUs,
        subject: agentId,
        schema_version: 1,
        received_at: receivedUs,
        correlation_id: r() < 0.8 ? randomUUID() : null,
        session_id: r() < 0.7 ? `sess-${Math.floor(r() * 0xffffffff).toString(16).padStart(8, '0')}` : null,
        data: { [branch]: data },
      },
    };
  }

  /** The exact sum of the amounts generated since the last call (call it often enough that the number part stays below 2^53). */
  takeAmountSum(): bigint {
    const sum = BigInt(this.smallSum) + this.bigSum;
    this.smallSum = 0;
    this.bigSum = 0n;
    return sum;
  }

  /** Event `i` as a Kafka message: key agent_id, value in the Confluent wire format. */
  message(i: number): EncodedEvent {
    const { agent, value } = this.envelope(i);
    const body = this.o.type.toBuffer(value);
    const framed = Buffer.allocUnsafe(5 + body.length);
    this.header.copy(framed, 0);
    body.copy(framed, 5);
    return { key: this.agentKeys[agent]!, value: framed };
  }
}

/**
 * Creates `topic` (`partitions` partitions), registers the agent-event schema under
 * `<topic>-value` and produces `total` events of an AgentEventBacklog (a month from
 * 2026-09-01, 300 agents), 6,000 a request, 4 requests in flight.
 */
export async function produceAgentEventBacklog(
  kafka: Kafka,
  registry: Pick<RegistryRestClient, 'register'>,
  o: { topic: string; partitions: number; total: number },
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: o.topic, numPartitions: o.partitions }], waitForLeaders: true });
  await admin.disconnect();
  const text = agentEventSchemaText();
  const schemaId = await registry.register(`${o.topic}-value`, text);
  const backlog = new AgentEventBacklog({ total: o.total, schemaId, type: agentEventType(text), monthStart: '2026-09-01', days: 30, agents: 300 });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < o.total; i += 6000) {
    const messages = [];
    for (let j = i; j < Math.min(o.total, i + 6000); j++) messages.push(backlog.message(j));
    backlog.takeAmountSum();
    const p: Promise<void> = producer.send({ topic: o.topic, acks: -1, messages }).then(() => void inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 4) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await producer.disconnect();
}
