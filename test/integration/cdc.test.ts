import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { collect, endOffsetsOf } from '../support/kafka.js';
import { ensureCdcConnector } from '../support/cdc.js';
import { testSettings } from '../support/servers.js';

const settings = testSettings();
const CDC_TOPIC = 'sluice.staging.agent_events';

describe('PostgreSQL staging table -> Debezium -> Kafka', () => {
  let applied: Awaited<ReturnType<typeof ensureCdcConnector>>;

  beforeAll(async () => {
    applied = await ensureCdcConnector(settings);
  });

  it('applies the connector idempotently', async () => {
    await expect(applied.connect.apply(applied.spec)).resolves.toEqual({ created: false });
  });

  it('turns an INSERT into a Debezium change event on Kafka within seconds', async () => {
    const pool = createPool(settings.database.url);
    const kafka = createKafka(settings.kafka, { region: settings.s3.region });
    const eventId = randomUUID();
    const amount = 2n ** 53n + 3n;
    // The topic may hold millions of older changes: read only what comes after the insert.
    const from = await endOffsetsOf(kafka, CDC_TOPIC);
    try {
      await pool.query(
        `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source, metadata)
         VALUES ($1, 'deposit_made', 'agent-cdc', 'customer-cdc', $2, 'USD', '2026-11-01T10:00:00Z', 'web', '{"k":"v"}')`,
        [eventId, amount.toString()],
      );
    } finally {
      await pool.end();
    }
    const inserted = Date.now();
    const messages = await collect(kafka, CDC_TOPIC, (ms) => ms.some((m) => m.key?.toString().includes(eventId)), 15_000, from);
    const latencyMs = Date.now() - inserted;
    const message = messages.find((m) => m.key?.toString().includes(eventId))!;
    expect(JSON.parse(message.key!.toString())).toEqual({ event_id: eventId });
    const text = message.value!.toString();
    const change = JSON.parse(text) as { op: string; before: unknown; after: Record<string, unknown>; source: { table: string } };
    expect(change.op).toBe('c');
    expect(change.before).toBeNull();
    expect(change.source.table).toBe('agent_events');
    expect(change.after).toMatchObject({ event_id: eventId, event_type: 'deposit_made', agent_id: 'agent-cdc', currency: 'USD' });
    // JSON numbers lose precision past 2^53: the raw text must still carry the exact digits.
    expect(text).toContain(`"amount_minor":${amount}`);
    expect(latencyMs).toBeLessThan(15_000);
  });
});
