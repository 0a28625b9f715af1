import type pg from 'pg';
import { isPostgresTransient } from '../core/errors/errors.js';
import type { StagedEvent } from './enrichment.js';
import type { CustomerBody } from './responses.js';

/**
 * The API's SQL: staging.agent_events (insert-only, idempotent by event_id) and
 * staging.customers (agent assignments). A batch is one transaction and one INSERT:
 * the columns travel as 12 arrays unnested server-side, so the statement and its
 * parameter count stay the same whatever the batch size.
 */

const INSERT_EVENTS = `
INSERT INTO staging.agent_events
  (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, received_at, source, session_id, correlation_id, metadata)
SELECT e.event_id, e.event_type, e.agent_id, e.customer_id, e.amount_minor, e.currency, e.occurred_at, $8::timestamptz, e.source, e.session_id, e.correlation_id, e.metadata
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
  AS e(event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source, session_id, correlation_id, metadata)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id::text`;

const UPSERT_CUSTOMER = `
INSERT INTO staging.customers AS c (customer_id, agent_id) VALUES ($1, $2)
ON CONFLICT (customer_id) DO UPDATE
  SET agent_id = EXCLUDED.agent_id,
      updated_at = CASE WHEN c.agent_id = EXCLUDED.agent_id THEN c.updated_at ELSE now() END
RETURNING customer_id, agent_id, created_at, updated_at, (xmax = 0) AS created`;

/** One connection inside BEGIN ... COMMIT. */
export class IngestTransaction {
  constructor(private readonly client: pg.PoolClient) {}

  /** customer_id -> assigned agent_id, for the customers that have one. */
  async findAssignments(customerIds: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await this.client.query<{ customer_id: string; agent_id: string }>(
      'SELECT customer_id, agent_id FROM staging.customers WHERE customer_id = ANY($1::text[])',
      [customerIds],
    );
    return new Map(rows.map((r) => [r.customer_id, r.agent_id]));
  }

  /** Inserts the events (distinct event_ids, one received_at); returns the ids that were new. */
  async insertEvents(unordered: readonly StagedEvent[], receivedAt: string): Promise<Set<string>> {
    // In event_id order: two batches sharing events then wait on each other's keys in
    // the same order instead of deadlocking.
    const events = [...unordered].sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
    const column = <T>(f: (e: StagedEvent) => T): T[] => events.map(f);
    const { rows } = await this.client.query<{ event_id: string }>(INSERT_EVENTS, [
      column((e) => e.eventId),
      column((e) => e.eventType),
      column((e) => e.agentId),
      column((e) => e.customerId),
      // As decimal text: node-pg would turn a bigint into a lossy number on the way.
      column((e) => (e.amountMinor === null ? null : e.amountMinor.toString())),
      column((e) => e.currency),
      column((e) => e.occurredAt),
      receivedAt,
      column((e) => e.source),
      column((e) => e.sessionId),
      column((e) => e.correlationId),
      column((e) => e.metadata),
    ]);
    return new Set(rows.map((r) => r.event_id));
  }

  /** event_id -> agent_id of rows already stored. */
  async storedAgents(eventIds: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await this.client.query<{ event_id: string; agent_id: string }>(
      'SELECT event_id::text, agent_id FROM staging.agent_events WHERE event_id = ANY($1::uuid[])',
      [eventIds],
    );
    return new Map(rows.map((r) => [r.event_id, r.agent_id]));
  }
}

export class IngestRepository {
  constructor(private readonly pool: pg.Pool) {}

  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  async transaction<T>(work: (tx: IngestTransaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(new IngestTransaction(client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      // A connection that cannot even roll back is not given to the next request.
      client.release(broken);
    }
  }

  /** Assigns a customer to an agent; `created` tells a new customer from a reassignment. */
  async assignCustomer(customerId: string, agentId: string): Promise<{ customer: CustomerBody; created: boolean }> {
    const { rows } = await this.pool.query<{ customer_id: string; agent_id: string; created_at: Date; updated_at: Date; created: boolean }>(UPSERT_CUSTOMER, [
      customerId,
      agentId,
    ]);
    const row = rows[0]!;
    return { customer: customerBody(row), created: row.created };
  }

  async findCustomer(customerId: string): Promise<CustomerBody | undefined> {
    const { rows } = await this.pool.query<{ customer_id: string; agent_id: string; created_at: Date; updated_at: Date }>(
      'SELECT customer_id, agent_id, created_at, updated_at FROM staging.customers WHERE customer_id = $1',
      [customerId],
    );
    return rows[0] ? customerBody(rows[0]) : undefined;
  }

  /** Readiness: PostgreSQL answers and both tables exist (migrations applied). */
  async checkReady(): Promise<void> {
    const { rows } = await this.pool.query<{ events: string | null; customers: string | null }>(
      "SELECT to_regclass('staging.agent_events')::text AS events, to_regclass('staging.customers')::text AS customers",
    );
    const missing = [rows[0]?.events ? undefined : 'staging.agent_events', rows[0]?.customers ? undefined : 'staging.customers'].filter(Boolean);
    if (missing.length > 0) throw new Error(`${missing.join(' and ')} missing: apply the migrations (infra/postgres/migrate.sh)`);
  }
}

function customerBody(row: { customer_id: string; agent_id: string; created_at: Date; updated_at: Date }): CustomerBody {
  return { customer_id: row.customer_id, agent_id: row.agent_id, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() };
}

/**
 * Whether a database failure may pass by retrying (the API answers 503 and the client
 * retries with the same event_ids) rather than being a fault of ours (500): the one
 * Postgres classification of core/errors.
 */
export const isTransientDbError = isPostgresTransient;
