import type pg from 'pg';
import { copyIn, sqlState, withSavepoint } from '../../core/db/copy.js';
import { DirectCopyGate } from '../../core/db/direct-copy-gate.js';
import { createPool } from '../../core/db/pool.js';
import { ConfigError, isPostgresTransient, PermanentError } from '../../core/errors/errors.js';
import { BLOCKING_RETRY, withRetry } from '../../core/errors/retry.js';
import type { Logger } from '../../core/log/logger.js';
import type { SqlOutputConfig } from '../outputs/sql.js';
import { CopyLines } from './copy-lines.js';
import { SQL_TYPES } from './types.js';
import { ident, offsetStatements, qualified, statements, type OffsetStatements, type Statements } from './statements.js';

/**
 * The `sql` output's database side. One flush of a partition is one transaction:
 *
 *   lock the partition's row in the offsets table, check it is not past the batch's start
 *   COPY the batch into the session's temporary load table
 *   one MERGE / INSERT from it into the target      (refused rows: split until isolated)
 *   hand the refused rows to the caller (the DLQ) while the transaction is open
 *   write the partition's next offset, COMMIT
 *
 * So rows and offsets become durable together or not at all (a crash anywhere replays
 * exactly what is not committed), and a member whose partition moved to another member
 * cannot commit behind it (its batch starts before the stored offset: StaleBatchError).
 * A lost connection or a restarting server retries the whole transaction with backoff.
 */

export interface SqlFlush {
  topic: string;
  partition: number;
  /** The offset of the batch's first record: the stored offset must not be past it. */
  startOffset: bigint;
  /** The offset stored with the rows: where this partition resumes. */
  nextOffset: bigint;
  /** The batch's rows as COPY text lines (copy-text.ts), in offset order: strings, or their bytes (copy-lines.ts). */
  lines: CopyRows;
  /** No key twice among the lines: the load reads the load table as it is (no DISTINCT ON, no sort). */
  uniqueKeys?: boolean;
}

export interface RejectedLine {
  /** Index in `lines`. */
  index: number;
  /** The database's message (and SQLSTATE) for that row. */
  message: string;
}

/** A flush loaded and its offset stored, in a transaction still open: commit or abort it. */
export interface OpenTransaction {
  rows: number;
  rejected: readonly RejectedLine[];
  /** Where the time went, ms: `fence` (lock and check the stored offset), `copy` (COPY into the load table), `load` (the MERGE/INSERT), `offset` (store the next offset). */
  phases: { fence: number; copy: number; load: number; offset: number };
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** How a blocked call gives up: the partition moved (`stillWanted`), the group rebalances (`signal`); `whileWaiting` heartbeats. */
export interface WaitOptions {
  signal?: AbortSignal | undefined;
  stillWanted?: () => boolean;
  whileWaiting?: () => Promise<void>;
}

/** The stored offset is past the batch's start: another member (or a replay) already wrote it. */
export class StaleBatchError extends PermanentError {}

/** A data error of some row (SQLSTATE class 22: a value; 23: a constraint), as opposed to a fault of the whole load. */
function isRowError(error: unknown): boolean {
  const code = sqlState(error);
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}

function describe(error: unknown): string {
  const e = error as { message?: string; code?: string; detail?: string; column?: string; constraint?: string };
  return [e.message ?? String(error), e.detail ? `(${e.detail})` : '', e.code ? `[SQLSTATE ${e.code}]` : ''].filter(Boolean).join(' ');
}

const CHUNK_CHARS = 256 * 1024;

export class SqlWriter {
  private readonly pool: pg.Pool;
  private readonly sql: Statements;
  private readonly offsets: OffsetStatements;
  private readonly loadTableReady = new WeakSet<pg.PoolClient>();
  private closed = false;
  /** Set by connect(): whether a batch with no key twice may try a COPY straight into the table first. */
  private directCopy = false;
  /** Per partition: after the table refused a direct COPY, how many flushes go the MERGE way at once. */
  private readonly directGate = new DirectCopyGate();

  constructor(
    private readonly pipeline: string,
    private readonly config: SqlOutputConfig,
    private readonly log: Logger,
  ) {
    this.pool = createPool(config.dsn, { max: config.max_connections, applicationName: `sluice-export-${pipeline}` });
    // An idle connection that dies (the server restarted) must not crash the process: the next flush reconnects.
    this.pool.on('error', (error) => this.log.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'warehouse connection lost (idle); the next flush reconnects'));
    this.sql = statements(config);
    this.offsets = offsetStatements(config.offsets_table);
  }

  /**
   * Checks the server and the table, creating what `create_table` allows (schema, table,
   * missing columns as nullable) and the offsets table. A table that does not fit is a
   * ConfigError naming what to change; an unreachable server throws a transient error.
   */
  async connect(): Promise<void> {
    const { client, release } = await this.checkout();
    try {
      const version = Number((await client.query<{ server_version_num: string }>('SHOW server_version_num')).rows[0]!.server_version_num);
      if (this.config.mode === 'merge' && version < 150000) {
        throw this.configError('mode', `the server is PostgreSQL ${Math.floor(version / 10000)}, and MERGE needs 15 or later`, 'upgrade the warehouse to PostgreSQL 15+, or use mode: insert_ignore (INSERT ... ON CONFLICT)');
      }
      await this.ddl(client, this.offsets.create);
      const target = qualified(this.config.table);
      if (this.config.create_table) {
        if (this.sql.createSchema) await this.ddl(client, this.sql.createSchema);
        await this.ddl(client, this.sql.createTable!);
      }
      const existing = await this.tableColumns(client, target.schema, target.name);
      if (existing.size === 0) {
        throw this.configError('table', `table ${this.config.table} does not exist in the warehouse`, 'create it, or set create_table: true to let the pipeline create it');
      }
      const missing = this.config.columns.filter((c) => !existing.has(c.name));
      if (missing.length > 0 && !this.config.create_table) {
        throw this.configError(
          'columns',
          `table ${this.config.table} lacks column(s) ${missing.map((c) => c.name).join(', ')}`,
          `add them (${missing.map((c) => `ALTER TABLE ${this.config.table} ADD COLUMN ${c.name} ${SQL_TYPES[c.type]}`).join('; ')}), or set create_table: true to add them as nullable columns`,
        );
      }
      for (const c of missing) {
        await this.ddl(client, this.sql.addColumn(c));
        this.log.info({ table: this.config.table, column: c.name, type: SQL_TYPES[c.type] }, 'warehouse table evolved: column added (nullable)');
      }
      const unique = this.config.mode !== 'append' && (await this.hasUniqueKey(client, target.schema, target.name));
      if (this.config.mode === 'insert_ignore' && !unique) {
        throw this.configError('key', `mode insert_ignore needs a primary key or unique index on (${this.config.key.join(', ')}) of ${this.config.table}, and there is none`, `CREATE UNIQUE INDEX ON ${this.config.table} (${this.config.key.map(ident).join(', ')}), or use mode: merge`);
      }
      // A batch with no key twice can be COPY'd straight into the table when the table itself refuses a key it holds already (see transaction()).
      this.directCopy = this.config.accumulate.length === 0 && (this.config.mode === 'append' || unique);
    } finally {
      release();
    }
  }

  /**
   * A pooled connection with an 'error' listener while it is checked out: pg emits 'error' on
   * a client whose server goes away between two queries (a restart while a flush waits for
   * its dead letters, or holds its transaction open until the commit), and the pool listens
   * only on idle clients; unheard, that event would end the process. The next query on it
   * fails instead, and the flush is retried or read again.
   */
  private async checkout(): Promise<{ client: pg.PoolClient; release: (error?: Error) => void }> {
    const client = await this.pool.connect();
    const onError = (error: Error) => this.log.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'warehouse connection lost during a flush; it is retried or read again');
    client.on('error', onError);
    let released = false;
    return {
      client,
      release: (error?: Error) => {
        if (released) return;
        released = true;
        client.removeListener('error', onError);
        client.release(error);
      },
    };
  }

  /** `connect`, waiting out a warehouse that is not there yet (logged) until `signal` aborts. */
  connectRetrying(signal?: AbortSignal): Promise<void> {
    return this.retrying('connect', { signal }, () => this.connect());
  }

  /** Readiness: the warehouse answers a query. */
  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /** The stored next offset of each of these partitions that has one. */
  async storedOffsets(topic: string, partitions: readonly number[], signal?: AbortSignal): Promise<Map<number, bigint>> {
    return this.retrying('read stored offsets', { signal }, async () => {
      const { rows } = await this.pool.query<{ partition: number; next_offset: bigint }>(this.offsets.read, [this.pipeline, topic, partitions]);
      return new Map(rows.map((r) => [r.partition, BigInt(r.next_offset)]));
    });
  }

  /**
   * One flush up to the commit: offsets fenced, rows loaded (refused ones isolated), offset
   * stored; the transaction stays open for the caller to send the refused rows to the DLQ,
   * then commit. Retried whole on a lost connection until `signal` aborts.
   */
  async begin(flush: SqlFlush, wait?: WaitOptions): Promise<OpenTransaction> {
    return this.retrying('write a batch', wait, () => this.transaction(flush));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async transaction(flush: SqlFlush): Promise<OpenTransaction> {
    const { client, release } = await this.checkout();
    const rollback = async () => {
      try {
        await client.query('ROLLBACK');
        release();
      } catch (error) {
        release(error as Error); // a broken connection: the server rolls back, the pool drops it
      }
    };
    try {
      if (!this.loadTableReady.has(client)) {
        await client.query(this.sql.createLoadTable);
        this.loadTableReady.add(client);
      }
      await client.query('BEGIN');
    } catch (error) {
      release(error as Error);
      throw error;
    }
    const phases = { fence: 0, copy: 0, load: 0, offset: 0 };
    try {
      let t = performance.now();
      const { rows } = await client.query<{ next_offset: bigint }>(this.offsets.lock, [this.pipeline, flush.topic, flush.partition]);
      const stored = rows[0] ? BigInt(rows[0].next_offset) : undefined;
      if (stored !== undefined && stored > flush.startOffset) {
        throw new StaleBatchError(`${flush.topic}/${flush.partition}: the warehouse already holds offsets up to ${stored}, and this batch starts at ${flush.startOffset}`);
      }
      phases.fence = performance.now() - t;
      const partition = `${flush.topic}/${flush.partition}`;
      const direct = flush.uniqueKeys === true && this.directCopy && this.directGate.shouldTry(partition) ? await this.copyDirect(client, flush.lines, phases) : undefined;
      if (direct) this.directGate.loaded(partition);
      else if (direct === false) this.directGate.refused(partition);
      const rejected = direct ? [] : await this.loadRange(client, flush.uniqueKeys ? this.sql.loadUnique : this.sql.load, flush.lines, 0, flush.lines.length, true, phases);
      t = performance.now();
      await client.query(this.offsets.save, [this.pipeline, flush.topic, flush.partition, flush.nextOffset.toString()]);
      phases.offset = performance.now() - t;
      for (const k of Object.keys(phases) as (keyof typeof phases)[]) phases[k] = Math.round(phases[k]);
      return {
        rows: flush.lines.length - rejected.length,
        rejected,
        phases,
        commit: async () => {
          try {
            await client.query('COMMIT');
            release();
          } catch (error) {
            release(error as Error);
            throw error;
          }
        },
        abort: rollback,
      };
    } catch (error) {
      await rollback();
      throw error;
    }
  }

  /**
   * The fast path of a batch with no key twice, into a table with a unique key (or append):
   * COPY straight into the table, as a bulk load does. New keys (the normal case) are then
   * exactly what MERGE / INSERT ... ON CONFLICT would have written. A key the table holds
   * already (a replay after a crash) or any refused row fails the COPY: it is rolled back to
   * its savepoint and the batch goes the general way (load table, MERGE, refused rows
   * isolated); the caller remembers the refusal (DirectCopyGate). True when loaded, false
   * when the general way must run.
   */
  private async copyDirect(client: pg.PoolClient, lines: CopyRows, phases: { copy: number }): Promise<boolean> {
    const t = performance.now();
    const refused = await withSavepoint(client, 'sluice_direct', () => copyIn(client, this.sql.copyTarget, copyChunks(lines, 0, lines.length, false)), isRowError);
    phases.copy += performance.now() - t;
    if (refused === undefined) return true;
    this.log.debug({ err: { message: (refused as Error).message, code: (refused as { code?: string }).code } }, 'direct COPY refused (a key already stored, or a refused row): loading through MERGE');
    return false;
  }

  /**
   * Loads lines [lo, hi) under a savepoint. A row error rolls the range back and splits it
   * until each refused row is alone: k refused rows among n cost about k x log2(n) loads.
   */
  private async loadRange(client: pg.PoolClient, load: string, lines: CopyRows, lo: number, hi: number, first: boolean, phases?: { copy: number; load: number }): Promise<RejectedLine[]> {
    if (hi <= lo) return [];
    const refused = await withSavepoint(client, 'sluice_load', async () => {
      if (!first) await client.query(this.sql.truncateLoad);
      const t0 = performance.now();
      await copyIn(client, this.sql.copy, copyChunks(lines, lo, hi, true));
      const t1 = performance.now();
      await client.query(load);
      if (phases) {
        phases.copy += t1 - t0;
        phases.load += performance.now() - t1;
      }
    }, isRowError);
    if (refused === undefined) return [];
    if (hi - lo === 1) return [{ index: lo, message: describe(refused) }];
    const mid = lo + Math.ceil((hi - lo) / 2);
    const left = await this.loadRange(client, load, lines, lo, mid, false);
    return [...left, ...(await this.loadRange(client, load, lines, mid, hi, false))];
  }

  private retrying<T>(what: string, wait: WaitOptions | undefined, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      policy: BLOCKING_RETRY,
      retriable: (error) => !this.closed && isPostgresTransient(error),
      onRetry: (error, attempt, delayMs) =>
        this.log.warn({ dependency: 'warehouse', attempt, retryInMs: delayMs, err: { message: (error as Error).message, code: (error as { code?: string }).code } }, `warehouse unavailable (${what}), waiting (nothing is dropped)`),
      ...wait,
    });
  }

  /** DDL of two runners at once can collide on the catalog (CREATE ... IF NOT EXISTS is not atomic): once more then. */
  private async ddl(client: pg.PoolClient, text: string): Promise<void> {
    try {
      await client.query(text);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P07' && code !== '42701') throw error;
      await client.query(text);
    }
  }

  private async tableColumns(client: pg.PoolClient, schema: string | undefined, name: string): Promise<Set<string>> {
    const { rows } = await client.query<{ column_name: string }>(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2',
      [schema ?? null, name],
    );
    return new Set(rows.map((r) => r.column_name));
  }

  /** Whether a primary key or unique index of the table is exactly the `key` columns. */
  private async hasUniqueKey(client: pg.PoolClient, schema: string | undefined, name: string): Promise<boolean> {
    if (this.config.key.length === 0) return false;
    const { rows } = await client.query<{ cols: string[] }>(
      `SELECT array_agg(a.attname ORDER BY a.attname)::text[] AS cols FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
        WHERE i.indisunique AND i.indpred IS NULL AND c.relname = $2 AND n.nspname = COALESCE($1, current_schema())
        GROUP BY i.indexrelid`,
      [schema ?? null, name],
    );
    const want = [...this.config.key].sort().join(',');
    return rows.some((r) => r.cols.join(',') === want);
  }

  private configError(setting: string, message: string, fix: string): ConfigError {
    return new ConfigError([{ source: `pipeline ${this.pipeline}`, setting: `output.sql.${setting}`, message, fix }]);
  }
}

/** A flush's rows: COPY text lines, or the same as bytes. */
export type CopyRows = readonly string[] | CopyLines;

/** The lines [lo, hi) (with their row number: `seq`), in chunks of ~256 KiB. */
function* copyChunks(lines: CopyRows, lo: number, hi: number, seq: boolean): Generator<string | Buffer> {
  if (lines instanceof CopyLines) {
    yield* lines.copyChunks(lo, hi, seq);
    return;
  }
  let chunk = '';
  for (let i = lo; i < hi; i++) {
    chunk += seq ? `${lines[i]}\t${i}\n` : `${lines[i]}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}
