import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConnectClient, loadConnectorSpec, pgVarsFromUrl } from '../../processors/core/connect/client.js';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { collect } from '../support/kafka.js';
import { eventually, hostPortOf, requireServer, testSettings } from '../support/servers.js';

const settings = testSettings();
const CDC_TOPIC = 'sluice.staging.agent_events';
const connectorFile = new URL('../../connectors/debezium/staging-agent-events.json', import.meta.url).pathname;

describe('PostgreSQL staging table -> Debezium -> Kafka', () => {
  const connect = new ConnectClient(settings.connect.url);
  const spec = loadConnectorSpec(connectorFile, pgVarsFromUrl(settings.database.url));

  beforeAll(async () => {
    await requireServer('PostgreSQL', hostPortOf(settings.database.url));
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    await requireServer('Kafka Connect', hostPortOf(settings.connect.url), async () => {
      const plugins = await connect.plugins();
      if (!plugins.some((p) => p.class === 'io.debezium.connector.postgresql.PostgresConnector')) {
        throw new Error('the Debezium PostgreSQL plugin is not installed');
      }
    });
    await connect.apply(spec);
    await eventually(async () => {
      const s = await connect.status(spec.name);
      return s?.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING') ? s : undefined;
    }, 60_000, `connector ${spec.name} RUNNING`);
  });

  it('applies the connector idempotently', async () => {
    await expect(connect.apply(spec)).resolves.toEqual({ created: false });
  });

  it('turns an INSERT into a Debezium change event on Kafka within seconds', async () => {
    const pool = createPool(settings.database.url);
    const kafka = createKafka(settings.kafka, { region: settings.s3.region });
    const eventId = randomUUID();
    const amount = 2n ** 53n + 3n;
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
    const messages = await collect(kafka, CDC_TOPIC, (ms) => ms.some((m) => m.key?.toString().includes(eventId)), 15_000);
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
