import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createPool } from '../../processors/core/db/pool.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { createLogger } from '../../processors/core/log/logger.js';
import type { SqlOutputConfig } from '../../processors/export/outputs/sql.js';
import { copyLineEncoder } from '../../processors/export/sql/copy-text.js';
import { SqlWriter, StaleBatchError } from '../../processors/export/sql/writer.js';
import { runId } from '../support/export-harness.js';
import { hostPortOf, requireServer } from '../support/servers.js';

/**
 * The sql output's transaction against the real warehouse database (the local stack's
 * `warehouse`): rows and offsets commit together, refused rows are isolated with the
 * database's message while the rest lands, a stale batch is fenced, sums accumulate.
 */

const url = process.env.SLUICE_WAREHOUSE_URL ?? '';
const log = createLogger({ name: 'sql-writer-test', level: 'warn' });
let admin: pg.Pool;
const writers: SqlWriter[] = [];

beforeAll(async () => {
  if (!url) throw new Error('SLUICE_WAREHOUSE_URL is not set: start the local stack (infra/local/stack up postgres), which writes it to .sluice/stack.env');
  await requireServer('PostgreSQL (the warehouse)', hostPortOf(url));
  admin = createPool(url, { max: 2 });
});

afterAll(async () => {
  for (const w of writers) await w.close();
  await admin?.end();
});

function writer(pipeline: string, config: Partial<SqlOutputConfig> & Pick<SqlOutputConfig, 'table' | 'columns'>): SqlWriter {
  const full: SqlOutputConfig = { dsn: url, key: [], mode: 'merge', accumulate: [], create_table: true, offsets_table: 'sluice_offsets', max_connections: 2, batching: { count: 1000, bytes: 1 << 20, period: 1000 }, ...config };
  const w = new SqlWriter(pipeline, full, log);
  writers.push(w);
  return w;
}

const EVENTS = [
  { name: 'event_id', type: 'string', nullable: false },
  { name: 'agent_id', type: 'string', nullable: false },
  { name: 'amount_minor', type: 'int64', nullable: true },
  { name: 'occurred_at', type: 'timestamp_us', nullable: false },
  { name: 'note', type: 'string', nullable: true },
] as const satisfies SqlOutputConfig['columns'];

describe('sql writer', () => {
  it('merges a batch and its offset in one transaction, isolates refused rows with the database message, and fences a stale batch', async () => {
    const run = runId().slice(0, 8);
    const table = `it_${run}.events`;
    const w = writer(`p_${run}`, { table, columns: [...EVENTS], key: ['event_id'] });
    await w.connectRetrying();
    await admin.query(`ALTER TABLE it_${run}.events ADD CONSTRAINT positive CHECK (amount_minor IS NULL OR amount_minor > 0)`);
    const encode = copyLineEncoder(EVENTS);
    const big = 2n ** 62n + 7n;
    const records = Array.from({ length: 1000 }, (_, i) => ({
      event_id: `e-${i}`,
      agent_id: `agent-${i % 7}`,
      amount_minor: i === 999 ? big : i % 250 === 3 ? -5n : BigInt(i + 1),
      occurred_at: 1_790_000_000_000_000n + BigInt(i),
      note: i === 1 ? 'tab\there, back\\slash, new\nline' : i === 2 ? 'nul\u0000byte' : null,
    }));
    const tx = await w.begin({ topic: 't', partition: 3, startOffset: 100n, nextOffset: 1100n, lines: records.map(encode) });
    // -5 breaks the CHECK (4 rows); a NUL is refused by text: 5 rows isolated, the rest lands.
    expect(tx.rejected.map((r) => r.index).sort((a, b) => a - b)).toEqual([2, 3, 253, 503, 753]);
    expect(tx.rejected.find((r) => r.index === 3)!.message).toMatch(/violates check constraint "positive".*23514/);
    expect(tx.rejected.find((r) => r.index === 2)!.message).toMatch(/0x00|invalid byte sequence/);
    // Nothing is visible before the commit, neither rows nor offset.
    expect((await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
    await tx.commit();
    const { rows } = await admin.query(`SELECT event_id, amount_minor::text AS amount, note, (extract(epoch FROM occurred_at) * 1000000)::bigint::text AS us FROM ${table} ORDER BY event_id`);
    expect(rows).toHaveLength(995);
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    expect(byId.get('e-999')).toMatchObject({ amount: big.toString(), us: (1_790_000_000_000_000n + 999n).toString() });
    expect(byId.get('e-1').note).toBe('tab\there, back\\slash, new\nline');
    expect((await w.storedOffsets('t', [3, 4])).get(3)).toBe(1100n);

    // A batch that starts before the stored offset (an old owner, a replay) is refused, and changes nothing.
    await expect(w.begin({ topic: 't', partition: 3, startOffset: 100n, nextOffset: 1100n, lines: [encode({ ...records[0], agent_id: 'zombie' })] })).rejects.toBeInstanceOf(StaleBatchError);
    expect((await admin.query(`SELECT agent_id FROM ${table} WHERE event_id = 'e-0'`)).rows[0].agent_id).toBe('agent-0');

    // The next batch merges (last record of a key wins) and an abort leaves no trace.
    const next = await w.begin({ topic: 't', partition: 3, startOffset: 1100n, nextOffset: 1102n, lines: [encode({ ...records[0], agent_id: 'first' }), encode({ ...records[0], agent_id: 'second' })] });
    await next.abort();
    expect((await w.storedOffsets('t', [3])).get(3)).toBe(1100n);
    const again = await w.begin({ topic: 't', partition: 3, startOffset: 1100n, nextOffset: 1102n, lines: [encode({ ...records[0], agent_id: 'first' }), encode({ ...records[0], agent_id: 'second' })] });
    await again.commit();
    expect((await admin.query(`SELECT agent_id FROM ${table} WHERE event_id = 'e-0'`)).rows[0].agent_id).toBe('second');
    expect((await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(995);
    await admin.query(`DROP SCHEMA it_${run} CASCADE`);
  });

  it('COPYs a batch with no key twice straight into the table, and falls back to MERGE for stored keys (a replay) and refused rows', async () => {
    const run = runId().slice(0, 8);
    const table = `it_${run}.events`;
    const w = writer(`p_${run}`, { table, columns: [...EVENTS], key: ['event_id'] });
    await w.connectRetrying();
    await admin.query(`ALTER TABLE ${table} ADD CONSTRAINT positive CHECK (amount_minor IS NULL OR amount_minor > 0)`);
    const encode = copyLineEncoder(EVENTS);
    const record = (i: number, agent = `agent-${i % 7}`, amount = BigInt(i + 1)) => ({ event_id: `e-${i}`, agent_id: agent, amount_minor: amount, occurred_at: 1_790_000_000_000_000n + BigInt(i), note: null });
    const batch = (from: number, to: number, f: (i: number) => object = (i) => record(i)) => Array.from({ length: to - from }, (_, k) => encode(f(from + k)));

    // New keys: the direct COPY (no MERGE ran).
    const first = await w.begin({ topic: 't', partition: 0, startOffset: 0n, nextOffset: 500n, lines: batch(0, 500), uniqueKeys: true });
    expect(first.phases.load).toBe(0);
    expect(first.rejected).toEqual([]);
    await first.commit();
    // Keys 400-599 of which 400-499 are stored (a replay overlapping new records): the COPY is refused, MERGE updates and inserts.
    const overlap = await w.begin({ topic: 't', partition: 0, startOffset: 500n, nextOffset: 700n, lines: batch(400, 600, (i) => record(i, 'replayed')), uniqueKeys: true });
    expect(overlap.phases.load).toBeGreaterThan(0);
    await overlap.commit();
    // A refused row in a batch of new keys: isolated by the general way, the rest lands.
    const refused = await w.begin({ topic: 't', partition: 0, startOffset: 700n, nextOffset: 800n, lines: batch(600, 700, (i) => record(i, `agent-${i % 7}`, i === 650 ? -1n : BigInt(i + 1))), uniqueKeys: true });
    expect(refused.rejected.map((r) => r.index)).toEqual([50]);
    expect(refused.rejected[0]!.message).toMatch(/violates check constraint "positive"/);
    await refused.commit();
    // The refused direct COPY of the overlap was remembered: that next flush went the MERGE way without trying it (DirectCopyGate);
    // the one after tries it again, and new keys load straight into the table.
    const after = await w.begin({ topic: 't', partition: 0, startOffset: 800n, nextOffset: 900n, lines: batch(700, 800), uniqueKeys: true });
    expect(after.phases.load).toBe(0);
    await after.commit();

    const { rows } = await admin.query(`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d, count(*) FILTER (WHERE agent_id = 'replayed')::int AS replayed FROM ${table}`);
    expect(rows[0]).toEqual({ n: 799, d: 799, replayed: 200 });
    expect((await w.storedOffsets('t', [0])).get(0)).toBe(900n);
    await w.close();
    await admin.query(`DROP SCHEMA it_${run} CASCADE`);
  });

  it('accumulates per-key partial sums exactly (beyond 2^53), and adds a new nullable column to an existing table', async () => {
    const run = runId().slice(0, 8);
    const table = `it_${run}.daily`;
    const columns: SqlOutputConfig['columns'] = [
      { name: 'agent_id', type: 'string', nullable: false },
      { name: 'day', type: 'date', nullable: false },
      { name: 'events', type: 'int64', nullable: false },
      { name: 'amount_minor', type: 'int64', nullable: false },
    ];
    const w = writer(`p_${run}`, { table, columns, key: ['agent_id', 'day'], accumulate: ['events', 'amount_minor'] });
    await w.connectRetrying();
    const encode = copyLineEncoder(columns);
    const line = (agent: string, amount: bigint) => encode({ agent_id: agent, day: 20_400, events: 1n, amount_minor: amount });
    const huge = 2n ** 53n + 1n;
    await (await w.begin({ topic: 't', partition: 0, startOffset: 0n, nextOffset: 3n, lines: [line('a', huge), line('a', huge), line('b', 5n)] })).commit();
    await (await w.begin({ topic: 't', partition: 0, startOffset: 3n, nextOffset: 4n, lines: [line('a', 1n)] })).commit();
    const { rows } = await admin.query(`SELECT agent_id, day::text, events::text, amount_minor::text FROM ${table} ORDER BY agent_id`);
    expect(rows).toEqual([
      { agent_id: 'a', day: '2025-11-08', events: '3', amount_minor: (2n * huge + 1n).toString() },
      { agent_id: 'b', day: '2025-11-08', events: '1', amount_minor: '5' },
    ]);

    // The contract gains an optional field: the declared column is added (nullable), old rows keep null.
    const evolved = writer(`p_${run}`, { table, columns: [...columns, { name: 'currency', type: 'string', nullable: true }], key: ['agent_id', 'day'], accumulate: ['events', 'amount_minor'] });
    await evolved.connectRetrying();
    const cols = await admin.query(`SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'it_${run}' AND table_name = 'daily' AND column_name = 'currency'`);
    expect(cols.rows).toEqual([{ column_name: 'currency', is_nullable: 'YES' }]);

    // Without create_table, a missing column stops the start with the fix.
    const strict = writer(`p_${run}`, { table, columns: [...columns, { name: 'region', type: 'string', nullable: true }], key: ['agent_id', 'day'], create_table: false });
    const error = await strict.connectRetrying().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/lacks column\(s\) region.*ALTER TABLE it_\w+\.daily ADD COLUMN region text/s);
    expect((error as Error).message).not.toContain('sluice:sluice'); // the DSN's password never shows
    await admin.query(`DROP SCHEMA it_${run} CASCADE`);
  });
});

describe('sql writer: the server goes away while a transaction is open', () => {
  it('the open transaction fails on its commit (no unhandled error event ends the process), nothing of it is stored, and the next flush lands', async () => {
    const run = runId().slice(0, 8);
    const pipeline = `p_${run}`;
    // An offsets table of its own: the backend to terminate is the one whose last statement wrote it.
    const w = writer(pipeline, { table: `it_${run}.events`, columns: [...EVENTS], key: ['event_id'], max_connections: 1, offsets_table: `offsets_${run}` });
    await w.connectRetrying();
    const encode = copyLineEncoder(EVENTS);
    const line = (id: string) => encode({ event_id: id, agent_id: 'a', amount_minor: 1n, occurred_at: 1_790_000_000_000_000n, note: null });
    const unheard: unknown[] = [];
    const onUncaught = (error: unknown) => unheard.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const tx = await w.begin({ topic: 't', partition: 0, startOffset: 0n, nextOffset: 1n, lines: [line('lost')] });
      // The transaction is open and idle (a flush sending its dead letters): its backend is terminated, as by a server restart.
      const { rowCount } = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%offsets_${run}%' AND datname = current_database()`);
      expect(rowCount).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
      await expect(tx.commit()).rejects.toThrow();
      expect(unheard).toEqual([]);
      expect((await admin.query(`SELECT count(*)::int AS n FROM it_${run}.events`)).rows[0].n).toBe(0);
      // The pool dropped the broken connection: the next flush (the batch read again) lands.
      await (await w.begin({ topic: 't', partition: 0, startOffset: 0n, nextOffset: 1n, lines: [line('again')] })).commit();
      expect((await admin.query(`SELECT event_id FROM it_${run}.events`)).rows).toEqual([{ event_id: 'again' }]);
      await admin.query(`DROP TABLE offsets_${run}`);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
