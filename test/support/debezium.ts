import { randomUUID } from 'node:crypto';
import { stringify } from 'lossless-json';

/** A staging.agent_events row as Debezium renders it (timestamptz as ISO text, jsonb as text). */
export interface StagingRow {
  event_id: string;
  event_type: string | null;
  agent_id: string | null;
  customer_id: string | null;
  amount_minor: bigint | number | null;
  currency: string | null;
  occurred_at: string | null;
  received_at: string | null;
  source: string | null;
  session_id: string | null;
  correlation_id: string | null;
  metadata: string | null;
}

export function stagingRow(overrides: Partial<StagingRow> = {}): StagingRow {
  return {
    event_id: randomUUID(),
    event_type: 'deposit_made',
    agent_id: 'agent-1',
    customer_id: 'customer-1',
    amount_minor: 12_345n,
    currency: 'USD',
    occurred_at: '2026-11-01T10:00:00.000000Z',
    received_at: '2026-11-01T10:00:01.500000Z',
    source: 'web',
    session_id: null,
    correlation_id: null,
    metadata: null,
    ...overrides,
  };
}

/**
 * A Debezium change event value exactly as the connector writes it (JsonConverter,
 * schemas disabled): bigints as plain JSON number literals, so values above 2^53 keep
 * every digit in the bytes.
 */
export function debeziumValue(op: 'c' | 'r' | 'u' | 'd', row: { before?: StagingRow | null; after?: StagingRow | null }): Buffer {
  const now = Date.now();
  const doc = {
    before: row.before ?? null,
    after: row.after ?? null,
    source: {
      version: '3.7.0.Final',
      connector: 'postgresql',
      name: 'sluice',
      ts_ms: now,
      snapshot: op === 'r' ? 'true' : 'false',
      db: 'sluice',
      sequence: '[null,"34722320"]',
      schema: 'staging',
      table: 'agent_events',
      txId: 768,
      lsn: 34722320,
      xmin: null,
    },
    transaction: null,
    op,
    ts_ms: now,
  };
  return Buffer.from(stringify(doc) ?? '');
}

export const debeziumKey = (eventId: string): Buffer => Buffer.from(JSON.stringify({ event_id: eventId }));
