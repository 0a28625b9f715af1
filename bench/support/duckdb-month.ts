import { DuckDBInstance } from '@duckdb/node-api';

/**
 * The reference every report benchmark measures against: DuckDB computing the month's
 * per-agent counts and sums (distinct by event_id) over the lake's Parquet files copied to
 * `dir`. Returns the time it took and the agents it found.
 */
export async function duckdbMonthReport(dir: string, month: string): Promise<{ ms: number; rows: number }> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const started = Date.now();
  const result = await c.runAndReadAll(`
    WITH e AS (
      SELECT DISTINCT event_id, event_type, agent_id, customer_id, amount_minor
      FROM read_parquet('${dir}/event_type=*/dt=${month}-*/*.parquet', hive_partitioning = false))
    SELECT agent_id, count(*) AS events,
           count(DISTINCT customer_id) FILTER (WHERE event_type = 'customer_onboarded') AS n,
           sum(amount_minor::HUGEINT) FILTER (WHERE event_type = 'deposit_made') AS d,
           sum(amount_minor::HUGEINT) FILTER (WHERE event_type = 'withdrawal_made') AS w,
           sum(amount_minor::HUGEINT) FILTER (WHERE event_type = 'investment_made') AS i
    FROM e GROUP BY agent_id ORDER BY agent_id`);
  const ms = Date.now() - started;
  const rows = result.getRowObjectsJson().length;
  c.closeSync();
  db.closeSync();
  return { ms, rows };
}
