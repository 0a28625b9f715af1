import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import type pg from 'pg';
import { createPool } from '../../processors/core/db/pool.js';
import { ROOT } from './build.js';
import type { ExpectedEvent } from './export-harness.js';

/**
 * The warehouse pipelines under test: the shipped connectors/exports/warehouse.yaml and
 * warehouse-daily.yaml with a topic, DLQ, group and schema of the test's own, run by
 * `sluice run` child processes; the warehouse read back with plain SQL.
 */

export const WAREHOUSE_FILES = ['warehouse', 'warehouse-daily'] as const;

export interface WarehousePipelines {
  /** The two files (events, daily), linted. */
  files: string[];
  /** The pipelines' names (their offsets' key in sluice_offsets). */
  names: string[];
  schema: string;
  dlq: string;
}

/** Both shipped warehouse pipelines, pointed at the test's topic and a schema of its own. */
export function warehousePipelines(o: { run: string; topic: string; period?: string; count?: number }): WarehousePipelines {
  const schema = `it_${o.run.replaceAll('-', '_')}`;
  const dlq = `${o.topic}.warehouse.dlq`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-warehouse-pipeline-'));
  const files: string[] = [];
  const names: string[] = [];
  for (const base of WAREHOUSE_FILES) {
    let text = readFileSync(join(ROOT, `connectors/exports/${base}.yaml`), 'utf8');
    const swap = (from: string | RegExp, to: string) => {
      const next = text.replace(from, to);
      if (next === text) throw new Error(`connectors/exports/${base}.yaml no longer holds ${String(from)}: update test/support/warehouse.ts`);
      text = next;
    };
    swap('topics: [sluice.agent-events]', `topics: [${o.topic}]`);
    swap(/consumer_group: \$\{[A-Z_]+:([a-z-]+)\}/, `consumer_group: test-${o.run}-$1\n    session_timeout: 6s`);
    swap(/topic: sluice\.agent-events\.(export[a-z-]*)\.dlq/, `topic: ${dlq}`);
    swap(/table: analytics\./, `table: ${schema}.`);
    swap('period: 1s', `period: ${o.period ?? '500ms'}`);
    if (o.count !== undefined) swap('count: 20000', `count: ${o.count}`);
    const name = `${base}-${o.run}`;
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, text);
    const lint = spawnSync(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'lint', file], { encoding: 'utf8' });
    if (lint.status !== 0) throw new Error(`the test pipeline does not lint:\n${lint.stdout}${lint.stderr}`);
    files.push(file);
    names.push(name);
  }
  return { files, names, schema, dlq };
}

export function warehousePool(): pg.Pool {
  const url = process.env.SLUICE_WAREHOUSE_URL;
  if (!url) throw new Error('SLUICE_WAREHOUSE_URL is not set: start the local stack (infra/local/stack up postgres), which writes it to .sluice/stack.env');
  return createPool(url, { max: 2, applicationName: 'sluice-tests' });
}

/**
 * Pre-creates the test's tables as the pipelines would (create_table leaves them), with a
 * CHECK the test's refused agent breaks: rows of that agent are refused by the database
 * (sql_rejected), in both tables, while the rest of their batches land.
 */
export async function createRefusingTables(pool: pg.Pool, schema: string, refusedAgent: string): Promise<void> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await pool.query(`CREATE TABLE ${schema}.agent_events (event_id text NOT NULL PRIMARY KEY, event_type text NOT NULL, agent_id text NOT NULL CHECK (agent_id <> '${refusedAgent}'), customer_id text, amount_minor bigint, currency text,
    occurred_at timestamptz NOT NULL, received_at timestamptz NOT NULL, source text, session_id text, correlation_id text, product text, metadata text, schema_version integer NOT NULL)`);
  await pool.query(`CREATE TABLE ${schema}.agent_daily (agent_id text NOT NULL CHECK (agent_id <> '${refusedAgent}'), day date NOT NULL, event_type text NOT NULL, events bigint NOT NULL, amount_minor bigint NOT NULL, PRIMARY KEY (agent_id, day, event_type))`);
}

/** Waits until every pipeline's stored offsets reach the topic's end offsets. */
export async function waitWarehouseDrained(pool: pg.Pool, admin: Admin, topic: string, pipelines: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let behind = -1n;
  while (Date.now() < deadline) {
    const ends = await admin.fetchTopicOffsets(topic);
    behind = 0n;
    for (const pipeline of pipelines) {
      const stored = await pool
        .query<{ partition: number; next_offset: bigint }>('SELECT "partition", next_offset FROM sluice_offsets WHERE pipeline = $1 AND topic = $2', [pipeline, topic])
        .then((r) => r.rows, () => []);
      for (const e of ends) {
        const s = stored.find((x) => x.partition === e.partition)?.next_offset;
        behind += BigInt(e.high) - (s === undefined ? BigInt(e.low) : BigInt(s));
      }
    }
    if (behind <= 0n) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`the warehouse pipelines are still ${behind} records behind on ${topic} after ${timeoutMs} ms`);
}

/**
 * The warehouse against the events it must hold: count(*) = count(DISTINCT event_id) = the
 * events, every value equal to the source (exact int64 money, microsecond times), and
 * agent_daily equal to a GROUP BY over agent_events. Throws naming what differs.
 */
export async function verifyWarehouse(pool: pg.Pool, schema: string, expected: readonly ExpectedEvent[]): Promise<void> {
  const [totals] = (await pool.query<{ n: string; d: string }>(`SELECT count(*)::text AS n, count(DISTINCT event_id)::text AS d FROM ${schema}.agent_events`)).rows;
  if (Number(totals!.n) !== expected.length || Number(totals!.d) !== expected.length) {
    throw new Error(`agent_events holds ${totals!.n} rows and ${totals!.d} distinct event ids, expected ${expected.length}`);
  }
  const { rows } = await pool.query<{ event_id: string; event_type: string; agent_id: string; customer_id: string | null; amount: string | null; us: string; currency: string | null }>(
    `SELECT event_id, event_type, agent_id, customer_id, amount_minor::text AS amount, currency,
            ((extract(epoch FROM occurred_at) * 1000000)::numeric(30,0))::text AS us FROM ${schema}.agent_events`,
  );
  const byId = new Map(rows.map((r) => [r.event_id, r]));
  for (const e of expected) {
    const r = byId.get(e.eventId);
    const want = { event_type: e.type, agent_id: e.agentId, customer_id: e.customerId, amount: e.amount === null ? null : e.amount.toString(), us: e.occurredAtMicros.toString(), currency: e.type === 'customer_onboarded' ? null : 'USD' };
    const got = r && { event_type: r.event_type, agent_id: r.agent_id, customer_id: r.customer_id, amount: r.amount, us: r.us, currency: r.currency };
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`event ${e.eventId}: warehouse ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  const groupBy = `SELECT agent_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, event_type, count(*)::bigint AS events, COALESCE(sum(amount_minor), 0)::bigint AS amount_minor FROM ${schema}.agent_events GROUP BY 1, 2, 3`;
  const daily = `SELECT agent_id, day, event_type, events, amount_minor FROM ${schema}.agent_daily`;
  const diff = await pool.query(`(${groupBy} EXCEPT ALL ${daily}) UNION ALL (${daily} EXCEPT ALL ${groupBy}) LIMIT 5`);
  if (diff.rows.length > 0) throw new Error(`agent_daily differs from a GROUP BY over agent_events: ${JSON.stringify(diff.rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
}
