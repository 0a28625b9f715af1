import { randomUUID } from 'node:crypto';
import { Partitioners, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import type { RunningNormalizer } from '../../processors/normalizer/normalizer.js';
import { collectUntilQuiet } from '../support/consume.js';
import { endOffsetsOf } from '../support/kafka.js';
import { registryReader } from '../support/registry-reader.js';
import { ensureCdcConnector } from '../support/cdc.js';
import { CDC_TOPIC, startTestNormalizer } from '../support/normalizer.js';
import { testSettings } from '../support/servers.js';

const settings = testSettings();

/** Unique per run: the topics, group and subject are this run's; the CDC topic is shared, so rows are filtered by their ids. */
const run = randomUUID().slice(0, 8);
const eventsTopic = `test.normalizer.${run}.events`;
const dlqTopic = `test.normalizer.${run}.dlq`;

interface Row {
  event_id: string;
  event_type: string | null;
  agent_id: string;
  customer_id: string | null;
  amount_minor: bigint | null;
  currency: string | null;
  occurred_at: string;
  received_at: string;
  source: string | null;
  session_id: string | null;
  correlation_id: string | null;
  metadata: string | null;
}

const row = (name: string, overrides: Partial<Row> = {}): Row => ({
  event_id: randomUUID(),
  event_type: 'deposit_made',
  agent_id: `agent-${run}-${name}`,
  customer_id: `customer-${run}`,
  amount_minor: 12_345n,
  currency: 'USD',
  occurred_at: '2026-11-01T10:00:00.123456Z',
  received_at: '2026-11-01T10:00:01Z',
  source: 'web',
  session_id: null,
  correlation_id: null,
  metadata: null,
  ...overrides,
});

const valid = {
  deposit: row('deposit', { amount_minor: 2n ** 53n + 3n, metadata: '{"k": "v"}', session_id: 'session-1', correlation_id: 'corr-1' }),
  withdrawal: row('withdrawal', { event_type: 'withdrawal_made', amount_minor: 500n }),
  investment: row('investment', { event_type: 'investment_made', amount_minor: 100_000n, metadata: '{"product": "bonds"}', source: 'agent_app' }),
  onboarding: row('onboarding', { event_type: 'customer_onboarded', amount_minor: null, currency: null, source: null }),
  boundary: row('boundary', { received_at: '2026-11-01T10:00:00Z', occurred_at: '2026-11-02T10:00:00Z' }),
};
const invalid: [reason: string, row: Row][] = [
  ['unknown_event_type', row('unknown', { event_type: 'loan_granted' })],
  ['missing_field:customer_id', row('no-customer', { customer_id: null })],
  ['missing_field:amount_minor', row('no-amount', { event_type: 'withdrawal_made', amount_minor: null })],
  ['missing_field:currency', row('no-currency', { event_type: 'investment_made', currency: null })],
  ['invalid_amount', row('zero', { amount_minor: 0n })],
  ['invalid_amount', row('negative', { event_type: 'withdrawal_made', amount_minor: -5n })],
  ['currency_mismatch', row('eur', { currency: 'EUR' })],
  ['invalid_timestamp', row('future', { received_at: '2026-11-01T10:00:00Z', occurred_at: '2026-11-02T10:00:01Z' })],
];
const updated = row('updated');
const deleted = row('deleted');
/** Inserted last: its event is awaited too (with the CDC topic's several partitions, the collection also waits for every expected event and a quiet period). */
const sentinel = row('sentinel', { event_type: 'customer_onboarded', amount_minor: null, currency: null });
const ours = (m: KafkaMessage) => m.key?.toString().startsWith(`agent-${run}-`) ?? false;
const deadLetterIds = new Set([...invalid.map(([, r]) => r.event_id), updated.event_id]);
/** The event_id of a CDC (or dead-lettered) record's key {"event_id": ...}. */
function keyId(m: KafkaMessage): string {
  try {
    return (JSON.parse(m.key?.toString() ?? '{}') as { event_id?: string }).event_id ?? '';
  } catch {
    return '';
  }
}
/** ISO-8601 UTC with up to 6 fraction digits -> microseconds. */
function micros(iso: string): number {
  const [, whole, frac = ''] = /^(.*?)(?:\.(\d+))?Z$/.exec(iso)!;
  return Date.parse(`${whole}Z`) * 1000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

describe('normalizer: staging.agent_events -> Debezium -> normalizer -> events topic + DLQ', () => {
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  const reader = registryReader(settings.registry.url);
  let normalizer: RunningNormalizer;
  let events: { key: string; value: Record<string, unknown> }[] = [];
  let deadLetters: KafkaMessage[] = [];
  let cdc: KafkaMessage[] = [];
  let partitionOf: (m: KafkaMessage) => number = () => -1;

  beforeAll(async () => {
    await ensureCdcConnector(settings);
    // The shared CDC topic keeps growing: this run's group starts at its end.
    normalizer = await startTestNormalizer(kafka, settings, { name: `test-normalizer-${run}`, eventsTopic, dlqTopic, logLevel: 'error' });

    const pool = createPool(settings.database.url);
    const insert = (r: Row) =>
      pool.query(
        `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, received_at, source, session_id, correlation_id, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [r.event_id, r.event_type, r.agent_id, r.customer_id, r.amount_minor?.toString() ?? null, r.currency, r.occurred_at, r.received_at, r.source, r.session_id, r.correlation_id, r.metadata],
      );
    try {
      for (const r of [...Object.values(valid), ...invalid.map(([, r]) => r), updated, deleted]) await insert(r);
      await pool.query(`UPDATE staging.agent_events SET amount_minor = 1, currency = 'EUR' WHERE event_id = $1`, [updated.event_id]);
      await pool.query(`DELETE FROM staging.agent_events WHERE event_id = $1`, [deleted.event_id]);
      await insert(sentinel);
    } finally {
      await pool.end();
    }

    const expectedEvents = Object.keys(valid).length + 3; // + updated, deleted (their inserts) and the sentinel
    const raw = await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(ours).length >= expectedEvents && ms.some((m) => m.key?.toString() === sentinel.agent_id), {
      timeoutMs: 90_000,
    });
    events = await Promise.all(raw.filter(ours).map(async (m) => ({ key: m.key!.toString(), value: (await reader.decode(m.value!)) as Record<string, unknown> })));
    deadLetters = (await collectUntilQuiet(kafka, dlqTopic, (ms) => ms.filter((m) => deadLetterIds.has(keyId(m))).length >= deadLetterIds.size)).filter((m) =>
      deadLetterIds.has(keyId(m)),
    );
    // The original CDC records, read from the lowest offset the DLQ headers name in each partition (the others from their end: none of ours is there).
    const lowest = new Map<number, bigint>();
    for (const m of deadLetters) {
      const h = readDeadLetterHeaders(m.headers)!;
      const offset = BigInt(h.offset);
      if (!lowest.has(h.partition) || offset < lowest.get(h.partition)!) lowest.set(h.partition, offset);
    }
    const from = (await endOffsetsOf(kafka, CDC_TOPIC))!.map((p) => ({ partition: p.partition, offset: (lowest.get(p.partition) ?? BigInt(p.offset)).toString() }));
    cdc = (await collectUntilQuiet(kafka, CDC_TOPIC, (ms) => ms.filter((m) => deadLetterIds.has(keyId(m))).length >= deadLetterIds.size, { quietMs: 0, from })).filter((m) =>
      deadLetterIds.has(keyId(m)),
    );
    // Where Kafka Connect put each key: the Java client's default partitioner (murmur2), which kafkajs's DefaultPartitioner reproduces.
    const admin = kafka.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [CDC_TOPIC] }).finally(() => admin.disconnect());
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = metadata.topics[0]!.partitions.map((p) => ({ ...p, partitionErrorCode: p.partitionErrorCode ?? 0 }));
    partitionOf = (m) => partitioner({ topic: CDC_TOPIC, partitionMetadata, message: { key: m.key, value: m.value } });
  });

  afterAll(async () => {
    await normalizer?.stop();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [eventsTopic, dlqTopic] }).catch(() => undefined);
    await admin.deleteGroups([normalizer.groupId]).catch(() => undefined);
    await admin.disconnect();
  });

  const eventFor = (r: Row) => events.filter((e) => e.value.id === r.event_id);

  it('writes exactly the valid inserts as events, once each, keyed by agent_id', () => {
    const expected = [...Object.values(valid), updated, deleted, sentinel].map((r) => r.event_id).sort();
    expect(events.map((e) => e.value.id as string).sort()).toEqual(expected);
    for (const e of events) expect(e.key).toBe(e.value.subject);
  });

  it('maps every field of the envelope, with the amount above 2^53 exact', () => {
    const [deposit] = eventFor(valid.deposit);
    expect(deposit!.value).toEqual({
      specversion: '1.0',
      id: valid.deposit.event_id,
      type: 'io.sluice.agent.deposit_made',
      source: '/channels/web',
      time: Number(micros(valid.deposit.occurred_at)),
      subject: valid.deposit.agent_id,
      schema_version: 1,
      received_at: Number(micros(valid.deposit.received_at)),
      correlation_id: 'corr-1',
      session_id: 'session-1',
      data: { 'io.sluice.events.DepositMade': { customer_id: `customer-${run}`, amount_minor: 9007199254740995n, currency: 'USD', metadata: '{"k": "v"}' } },
    });
  });

  it('maps each event type to its data branch', () => {
    expect(eventFor(valid.withdrawal)[0]!.value).toMatchObject({
      type: 'io.sluice.agent.withdrawal_made',
      data: { 'io.sluice.events.WithdrawalMade': { amount_minor: 500n, currency: 'USD' } },
    });
    expect(eventFor(valid.investment)[0]!.value).toMatchObject({
      type: 'io.sluice.agent.investment_made',
      source: '/channels/agent_app',
      data: { 'io.sluice.events.InvestmentMade': { amount_minor: 100000n, product: 'bonds', metadata: '{"product": "bonds"}' } },
    });
    expect(eventFor(valid.onboarding)[0]!.value).toMatchObject({
      type: 'io.sluice.agent.customer_onboarded',
      source: '/channels/unknown',
      data: { 'io.sluice.events.CustomerOnboarded': { customer_id: `customer-${run}`, metadata: null } },
    });
    expect(eventFor(valid.boundary)).toHaveLength(1); // exactly 24 h after received_at is still valid
  });

  it('dead-letters each invalid insert with its reason code and the original record', () => {
    for (const [reason, r] of invalid) {
      const matches = deadLetters.filter((m) => keyId(m) === r.event_id);
      expect(matches, `${reason} for ${r.agent_id}`).toHaveLength(1);
      const info = readDeadLetterHeaders(matches[0]!.headers)!;
      expect(info).toMatchObject({ reason, topic: CDC_TOPIC, processor: 'normalizer' });
      expect(info.error.length).toBeGreaterThan(0);
      expect(Number(info.failedAt)).toBeGreaterThan(0);
      const original = cdc.find((m) => m.offset === info.offset && keyId(m) === r.event_id);
      expect(original, `the CDC record at offset ${info.offset}`).toBeDefined();
      expect(matches[0]!.value!.equals(original!.value!)).toBe(true);
      expect(matches[0]!.key!.equals(original!.key!)).toBe(true);
      expect(info.timestamp).toBe(original!.timestamp);
      expect(info.partition, 'the partition of the original record').toBe(partitionOf(original!));
    }
  });

  it('dead-letters an UPDATE with immutable_event_mutated and keeps the original event', () => {
    const matches = deadLetters.filter((m) => keyId(m) === updated.event_id);
    expect(matches).toHaveLength(1);
    const info = readDeadLetterHeaders(matches[0]!.headers)!;
    expect(info.reason).toBe('immutable_event_mutated');
    expect(info.error).toContain('changed: amount_minor, currency');
    expect(JSON.parse(matches[0]!.value!.toString())).toMatchObject({ op: 'u', after: { amount_minor: 1, currency: 'EUR' } });
    expect(eventFor(updated)).toHaveLength(1);
    expect(eventFor(updated)[0]!.value).toMatchObject({ data: { 'io.sluice.events.DepositMade': { amount_minor: 12345n } } });
  });

  it('ignores a DELETE: the event of the insert stands and nothing else is written', () => {
    expect(eventFor(deleted)).toHaveLength(1);
    expect(deadLetters.filter((m) => keyId(m) === deleted.event_id)).toHaveLength(0);
  });

  it('serves /healthz, /readyz and the metrics', async () => {
    const base = `http://127.0.0.1:${normalizer.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { startup: 'ok', kafka: 'ok', registry: 'ok' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const line of [
      /sluice_normalizer_events_total\{event_type="deposit_made",processor="normalizer"\} \d+/,
      /sluice_normalizer_dead_letters_total\{reason="currency_mismatch",processor="normalizer"\} \d+/,
      /sluice_normalizer_dead_letters_total\{reason="immutable_event_mutated",processor="normalizer"\} \d+/,
      /sluice_normalizer_ignored_total\{kind="delete",processor="normalizer"\} \d+/,
      /sluice_normalizer_records_total\{op="c",processor="normalizer"\} \d+/,
      /sluice_normalizer_batch_seconds_count\{processor="normalizer"\} \d+/,
      /sluice_normalizer_consumer_lag\{topic="sluice.staging.agent_events",partition="\d+",processor="normalizer"\} \d+/,
    ]) {
      expect(metrics).toMatch(line);
    }
  });
});
