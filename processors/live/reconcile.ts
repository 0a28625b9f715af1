import type { S3Client } from '@aws-sdk/client-s3';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import type { Logger } from '../core/log/logger.js';
import { RegistryRestClient } from '../core/registry/ccompat.js';
import { AvroDecoder } from '../export/decoder.js';
import { commission, type CommissionRules } from '../reports/commission.js';
import { aggregateMonth } from '../reports/lake-month.js';
import { byCodePoint } from '../reports/render.js';
import type { LiveTotals } from './output.js';
import { LiveView } from './view.js';

/**
 * `sluice reconcile --month YYYY-MM`: the live totals of a month (the compacted topic
 * agent-commissions.live) against the batch report of the month (the lake aggregated and
 * priced by the report's own code: reports/lake-month.ts + commission.ts), agent by agent
 * and cell by cell, and against the staging table's own sums (the rows of the month that
 * the normalizer's rules accept; pruned rows and rows updated after their insert show
 * there as differences, by design: the staging table is not the record of the events).
 */

/** The report's cells, in the report's column order (docs/domain.md "Report"), as text. */
export const CELLS = ['events', 'customers_onboarded', 'deposits_minor', 'withdrawals_minor', 'investments_minor', 'net_inflow_minor', 'commission_minor'] as const;
export type Cell = (typeof CELLS)[number];
export type Cells = Partial<Record<Cell, string>>;

export interface Difference {
  /** `batch` (the report) or `staging`. */
  against: 'batch' | 'staging';
  agentId: string;
  cell: Cell | 'row';
  live: string | undefined;
  other: string | undefined;
}

/** Compares two sets of rows cell by cell (only the cells `other` has); a row present on one side only is one `row` difference. */
export function compareRows(against: Difference['against'], live: ReadonlyMap<string, Cells>, other: ReadonlyMap<string, Cells>): Difference[] {
  const out: Difference[] = [];
  const agents = [...new Set([...live.keys(), ...other.keys()])].sort(byCodePoint);
  for (const agentId of agents) {
    const l = live.get(agentId);
    const o = other.get(agentId);
    if (!l || !o) {
      out.push({ against, agentId, cell: 'row', live: l ? 'present' : 'absent', other: o ? 'present' : 'absent' });
      continue;
    }
    for (const cell of CELLS) {
      if (o[cell] === undefined) continue;
      if (l[cell] !== o[cell]) out.push({ against, agentId, cell, live: l[cell], other: o[cell] });
    }
  }
  return out;
}

export const liveCells = (t: LiveTotals): Cells => ({
  events: String(t.events),
  customers_onboarded: String(t.customers_onboarded),
  deposits_minor: t.deposits_minor,
  withdrawals_minor: t.withdrawals_minor,
  investments_minor: t.investments_minor,
  net_inflow_minor: t.net_inflow_minor,
  commission_minor: t.commission_minor,
});

/** The live rows of a month, read whole from the output topic. */
export async function liveRows(kafka: Kafka, registryUrl: string, auth: ConstructorParameters<typeof RegistryRestClient>[1], topic: string, month: string, logger: Logger): Promise<Map<string, Cells>> {
  const view = new LiveView(kafka, topic, new AvroDecoder(new RegistryRestClient(registryUrl, auth)), logger);
  try {
    await view.start();
    return new Map(view.all(month).map((t) => [t.agent_id, liveCells(t)]));
  } finally {
    await view.stop();
  }
}

/** The batch report's rows of the month, computed as the report processor computes them. */
export async function batchRows(s3: S3Client, bucket: string, lakePrefix: string, month: string, rules: CommissionRules): Promise<Map<string, Cells>> {
  const aggregate = await aggregateMonth(s3, { bucket, prefix: lakePrefix, month });
  const out = new Map<string, Cells>();
  for (const m of aggregate.agents.values()) {
    const r = commission(m, rules);
    out.set(r.agentId, {
      events: String(r.events),
      customers_onboarded: String(r.customersOnboarded),
      deposits_minor: r.depositsMinor.toString(),
      withdrawals_minor: r.withdrawalsMinor.toString(),
      investments_minor: r.investmentsMinor.toString(),
      net_inflow_minor: r.netInflowMinor.toString(),
      commission_minor: r.commissionMinor.toString(),
    });
  }
  return out;
}

/**
 * The staging table's own sums of the month per agent: counts and money by event type of
 * the rows the normalizer accepts (docs/domain.md: the four types, customer_id set, money
 * > 0 in the base currency, occurred_at at most 24 h after received_at). No commission:
 * that is the report's rule, compared against the batch.
 */
export async function stagingRows(pool: pg.Pool, month: string, baseCurrency: string): Promise<Map<string, Cells>> {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const from = new Date(Date.UTC(y, m - 1, 1)).toISOString();
  const to = new Date(Date.UTC(y, m, 1)).toISOString();
  const { rows } = await pool.query<{ agent_id: string; events: string; n: string; d: string; w: string; i: string }>(
    `SELECT agent_id,
       count(*)::text AS events,
       count(DISTINCT customer_id) FILTER (WHERE event_type = 'customer_onboarded')::text AS n,
       coalesce(sum(amount_minor::numeric) FILTER (WHERE event_type = 'deposit_made'), 0)::text AS d,
       coalesce(sum(amount_minor::numeric) FILTER (WHERE event_type = 'withdrawal_made'), 0)::text AS w,
       coalesce(sum(amount_minor::numeric) FILTER (WHERE event_type = 'investment_made'), 0)::text AS i
     FROM staging.agent_events
     WHERE occurred_at >= $1 AND occurred_at < $2
       AND agent_id IS NOT NULL AND customer_id IS NOT NULL
       AND occurred_at <= received_at + interval '24 hours'
       AND (event_type = 'customer_onboarded'
            OR (event_type IN ('deposit_made', 'withdrawal_made', 'investment_made') AND amount_minor > 0 AND currency = $3))
     GROUP BY agent_id`,
    [from, to, baseCurrency],
  );
  return new Map(
    rows.map((r) => [
      r.agent_id,
      { events: r.events, customers_onboarded: r.n, deposits_minor: r.d, withdrawals_minor: r.w, investments_minor: r.i, net_inflow_minor: (BigInt(r.d) - BigInt(r.w) + BigInt(r.i)).toString() },
    ]),
  );
}

/** One line per difference, for the terminal. */
export function formatDifference(d: Difference): string {
  if (d.cell === 'row') return `${d.against}: agent ${JSON.stringify(d.agentId)}: live ${d.live}, ${d.against} ${d.other}`;
  return `${d.against}: agent ${JSON.stringify(d.agentId)} ${d.cell}: live ${d.live} != ${d.against} ${d.other}`;
}
