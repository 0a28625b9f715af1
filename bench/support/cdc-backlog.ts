/**
 * A backlog of synthetic Debezium change events (the connector's exact JSON, keyed by
 * event_id as Debezium keys staging.agent_events) for the normalizer benches: the four
 * valid types in turn, and 1 in 20 invalid (currency, amount, type, timestamp).
 */
import { randomUUID } from 'node:crypto';
import { Partitioners, type Kafka, type Message } from 'kafkajs';
import { debeziumKey, debeziumValue, stagingRow } from '../../test/support/debezium.js';

export function cdcRecord(i: number): Message {
  const types = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
  const type = types[i % 4]!;
  const money = type !== 'customer_onboarded';
  let row = stagingRow({
    event_type: type,
    agent_id: `agent-${i % 997}`,
    customer_id: `customer-${i % 50_021}`,
    amount_minor: money ? (i % 7 === 0 ? 2n ** 53n + BigInt(i) : BigInt(100 + (i % 100_000))) : null,
    currency: money ? 'USD' : null,
    source: ['web', 'mobile', 'agent_app', 'backend'][i % 4]!,
    session_id: `session-${i % 10_000}`,
    correlation_id: randomUUID(),
    metadata: type === 'investment_made' ? '{"product": "index-fund", "channel": "app"}' : null,
  });
  if (i % 20 === 19) {
    const bad = [{ currency: 'EUR' }, { amount_minor: 0n }, { event_type: 'loan_granted' }, { occurred_at: '2030-01-01T00:00:00Z' }][(i / 20) % 4 | 0]!;
    row = { ...row, ...bad, ...(money ? {} : { event_type: 'deposit_made', amount_minor: 1n, currency: 'EUR' }) };
  }
  return { key: debeziumKey(row.event_id), value: debeziumValue('c', { after: row }) };
}

/** Creates `topic` with `partitions` and fills it with `n` records; returns the time and bytes. */
export async function prefillCdcTopic(kafka: Kafka, topic: string, n: number, partitions: number): Promise<{ ms: number; bytes: number }> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const started = Date.now();
  let bytes = 0;
  // 500 records (~0.5 MiB) a request: one record batch must stay under the broker's 1 MiB.
  for (let i = 0; i < n; i += 500) {
    const messages = Array.from({ length: Math.min(500, n - i) }, (_, j) => cdcRecord(i + j));
    bytes += messages.reduce((s, m) => s + (m.value as Buffer).length + (m.key as Buffer).length, 0);
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
  return { ms: Date.now() - started, bytes };
}
