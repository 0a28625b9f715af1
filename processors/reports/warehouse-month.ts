import type pg from 'pg';
import type { AgentMonth } from './commission.js';
import { EVENT_TYPES, MONEY_TYPES, type MonthAggregate } from './lake-month.js';

/**
 * One month of the warehouse (the table connectors/exports/warehouse.yaml keeps, one row per
 * event_id), aggregated per agent by the database: the same numbers lake-month.ts computes
 * from the Parquet lake, so the report is the same whichever source it reads. The month is
 * UTC, of occurred_at, as in the lake's partitions. Sums are exact (numeric, read as text).
 */

export interface WarehouseMonthQuery {
  /** `schema.table`, validated by the settings (lower-case identifiers). */
  table: string;
  month: string;
  agentIds?: ReadonlySet<string> | undefined;
}

export async function aggregateWarehouseMonth(pool: pg.Pool, q: WarehouseMonthQuery): Promise<MonthAggregate> {
  const [year, month] = q.month.split('-').map(Number) as [number, number];
  const from = new Date(Date.UTC(year, month - 1, 1)).toISOString();
  const to = new Date(Date.UTC(year, month, 1)).toISOString();
  const table = q.table
    .split('.')
    .map((p) => `"${p}"`)
    .join('.');
  const money = Object.keys(MONEY_TYPES)
    .map((type, i) => `COALESCE(sum(amount_minor) FILTER (WHERE event_type = $${i + 4}), 0)::text AS m${i}`)
    .join(', ');
  const { rows } = await pool.query<{ agent_id: string; events: string; customers: string; m0: string; m1: string; m2: string }>(
    `SELECT agent_id, count(*)::text AS events,
            count(DISTINCT customer_id) FILTER (WHERE event_type = 'customer_onboarded')::text AS customers, ${money}
       FROM ${table}
      WHERE occurred_at >= $1 AND occurred_at < $2 AND event_type = ANY($3::text[])
        AND ($7::text[] IS NULL OR agent_id = ANY($7::text[]))
      GROUP BY agent_id`,
    [from, to, [...EVENT_TYPES], ...Object.keys(MONEY_TYPES), q.agentIds ? [...q.agentIds] : null],
  );
  const agents = new Map<string, AgentMonth>();
  let total = 0;
  for (const r of rows) {
    const events = Number(r.events);
    total += events;
    agents.set(r.agent_id, {
      agentId: r.agent_id,
      events,
      customersOnboarded: Number(r.customers),
      depositsMinor: 0n,
      withdrawalsMinor: 0n,
      investmentsMinor: 0n,
    });
    Object.values(MONEY_TYPES).forEach((field, i) => (agents.get(r.agent_id)![field] = BigInt(r[`m${i}` as 'm0'])));
  }
  return { agents, files: 0, rows: total, duplicates: 0, bytes: 0 };
}
