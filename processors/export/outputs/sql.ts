import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { LakeValueError } from '../../core/parquet/columns.js';
import { defineComponent } from '../../core/pipeline/component.js';
import { bool, byteSize, duration, int, list, object, oneOf, string, type Infer } from '../../core/pipeline/fields.js';
import { suggestion } from '../../core/pipeline/suggest.js';
import { CopyLines } from '../sql/copy-lines.js';
import { copyLineEncoder, type CopyLineEncoder } from '../sql/copy-text.js';
import { KeptMessages } from '../sql/kept-messages.js';
import { SQL_TYPES } from '../sql/types.js';
import { StaleBatchError, SqlWriter } from '../sql/writer.js';
import type { Output, OutputBatch, OutputComponent, OutputContext, OutputRecord, PreparedWrite, Refusal, WriteContext } from './output.js';
import { columnSpec, type ColumnType } from './s3.js';

/**
 * The `sql` output, spec and constructor: rows into a PostgreSQL table (PostgreSQL 15+ or a
 * server that speaks its wire protocol and MERGE), with the consumed offsets in the same
 * transaction. A partition's batch is its rows as COPY lines; a flush is one transaction of
 * the warehouse holding the rows and the partition's next offset (`offsets: 'output'`),
 * committed after the DLQ has the refused rows. See sql/writer.ts for the transaction.
 */

export const SQL_MODES = ['merge', 'insert_ignore', 'append'] as const;
export type SqlMode = (typeof SQL_MODES)[number];

const NUMERIC: readonly ColumnType[] = ['int32', 'int64', 'float', 'double'];
const TABLE = /^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$/;
const TABLE_FIX = 'write table or schema.table in lower-case letters, digits and _';

const config = object(
  {
    dsn: string({
      doc: 'PostgreSQL connection URL of the warehouse (`postgres://user:password@host:5432/db?sslmode=require`). Required: there is no built-in default, so write it as `${ENV}` or set `SLUICE_WAREHOUSE_URL`. Never shown in logs or messages.',
      secret: true,
      minLength: 1,
      env: ['SLUICE_WAREHOUSE_URL'],
      examples: ['${SLUICE_WAREHOUSE_URL}'],
    }),
    table: string({ doc: 'Target table, `schema.table` (or `table` in the search path).', pattern: TABLE, patternFix: TABLE_FIX, examples: ['analytics.agent_events'] }),
    columns: list(columnSpec, {
      doc: `The table's columns written, in order, with their types (the same spec as the s3 output): ${Object.entries(SQL_TYPES)
        .map(([k, v]) => `${k} -> ${v}`)
        .join(', ')}. Record fields that are not columns are not written.`,
      minItems: 1,
      unique: true,
      examples: [[{ name: 'event_id', type: 'string' }, { name: 'amount_minor', type: 'int64', nullable: true }]],
    }),
    key: list(string({ doc: 'a column name' }), {
      doc: 'The columns that identify a row (the MERGE condition, the ON CONFLICT target): a primary key or unique index of the table. Required for `merge` and `insert_ignore`.',
      optional: true,
      minItems: 1,
      unique: true,
      examples: [['event_id']],
    }),
    mode: oneOf(SQL_MODES, {
      doc: '`merge`: insert new keys, update the others (MERGE); `insert_ignore`: insert new keys, keep the rows already there (INSERT ... ON CONFLICT DO NOTHING); `append`: insert every row (no key). Within a batch, the last record of a key wins (or the records of a key are summed, with `accumulate`).',
      default: 'merge',
    }),
    accumulate: list(string({ doc: 'a numeric column name' }), {
      doc: "Numeric columns that add up instead of being replaced (`merge` only): a batch's records are summed per key, then added to the stored row. With offsets in the same transaction this keeps running totals exact through crashes and replays.",
      optional: true,
      minItems: 1,
      unique: true,
      examples: [['events', 'amount_minor']],
    }),
    create_table: bool({
      doc: 'Create the schema and table when absent (primary key = `key`), and add a column declared here that the table lacks (as nullable: additive evolution when the contract gains an optional field). Off: the table must exist with every column, or the pipeline stops at start naming what is missing.',
      default: false,
    }),
    offsets_table: string({
      doc: 'Table holding the consumed offsets `(pipeline, topic, partition, next_offset)`, written in the same transaction as the rows; created when absent. On assignment the pipeline resumes from it (the database, not the consumer group, is the truth).',
      pattern: TABLE,
      patternFix: TABLE_FIX,
      default: 'sluice_offsets',
    }),
    max_connections: int({ doc: 'Connections to the warehouse (partitions flush concurrently, one transaction each).', default: 4, min: 1, max: 64 }),
    batching: object(
      {
        count: int({ doc: 'Flush (one transaction) when the batch holds this many records.', default: 20000, min: 1, max: 10_000_000 }),
        bytes: byteSize({ doc: 'Flush when the records reach about this size (encoded input bytes).', default: '32MiB', min: 1024, max: 1024 ** 3 }),
        period: duration({ doc: 'Flush at the latest this long after the first record arrived.', default: '1s', min: 1 }),
      },
      { doc: 'When a batch is complete: whichever limit is reached first. Each input partition batches on its own; one flush is one transaction.' },
    ),
  },
  { doc: 'SQL output settings.' },
);

type RawSqlConfig = Infer<typeof config>;
export type SqlColumn = RawSqlConfig['columns'][number];

/** The sql output's config as loaded: `key` and `accumulate` are lists (empty when absent). */
export type SqlOutputConfig = Omit<RawSqlConfig, 'key' | 'accumulate'> & { key: string[]; accumulate: string[] };

export const sqlOutputSpec = defineComponent({
  name: 'sql',
  kind: 'output',
  summary: 'Loads batches of records into a PostgreSQL table (COPY into a temporary table, then one MERGE or INSERT), with the consumed offsets in the same transaction: exactly once.',
  description: [
    "Each flush of a partition is one transaction: its rows are copied (`COPY`) into a temporary table, then merged into the target with one `MERGE` (or `INSERT ... ON CONFLICT` / `INSERT`) — or, when no key comes twice in the batch and a primary key or unique index of the table is `key` (or with `append`), first `COPY`'d straight into the table, falling back to the temporary table and `MERGE` if the table holds one of the keys already (a replay) or refuses a row — and the partition's next offset is written to `offsets_table` in the same transaction, checked against the offset the batch started from (a member whose partition moved cannot commit behind the new owner). On assignment the pipeline seeks to the offsets stored there, so a crash, a SIGKILL or a rebalance replays only what the warehouse lacks.",
    "A row the database refuses (a constraint, a value out of range for the column) goes to the DLQ with reason `sql_rejected` and the database's message; the rest of the batch lands (the batch is split until the refused rows are isolated). A record that does not fit its declared column type goes to the DLQ with `schema_mismatch` before it reaches the database. A lost connection or a restarting server blocks and retries; nothing is dropped.",
    'Production: there is no default connection URL; set `dsn` (a `${ENV}` reference) or `SLUICE_WAREHOUSE_URL`. The local stack creates the `warehouse` database and exports `SLUICE_WAREHOUSE_URL`.',
  ].join('\n\n'),
  config,
  example: [
    'sql:',
    '  dsn: ${SLUICE_WAREHOUSE_URL}',
    '  table: analytics.agent_events',
    '  mode: merge',
    '  key: [event_id]',
    '  create_table: true',
    '  columns:',
    '    - { name: event_id, type: string }',
    '    - { name: agent_id, type: string }',
    '    - { name: amount_minor, type: int64, nullable: true }',
    '    - { name: occurred_at, type: timestamp_us }',
    '  batching:',
    '    count: 20000',
    '    period: 1s',
  ].join('\n'),
  finish(c, ctx): SqlOutputConfig {
    const byName = new Map(c.columns.map((col) => [col.name, col]));
    const names = [...byName.keys()];
    const key = c.key ?? [];
    const accumulate = c.accumulate ?? [];
    if (c.mode !== 'append' && key.length === 0) {
      ctx.report(['mode'], `mode ${c.mode} needs the columns that identify a row`, `add key: [<column>, ...] (e.g. key: [${names[0]}]), or set mode: append`);
    }
    if (c.mode === 'append' && key.length > 0) ctx.report(['key'], 'mode append inserts every row and uses no key', 'remove key, or set mode: merge or insert_ignore');
    key.forEach((name, i) => {
      const col = byName.get(name);
      if (!col) ctx.report(['key', `[${i}]`], `"${name}" is not a column`, suggestion(name, names, 'columns are'));
      else if (col.nullable) ctx.report(['key', `[${i}]`], `key column ${name} is nullable, and a key must always have a value`, `set nullable: false on column ${name}`);
    });
    if (accumulate.length > 0 && c.mode !== 'merge') ctx.report(['accumulate'], `accumulate adds to stored rows, which mode ${c.mode} never updates`, 'set mode: merge, or remove accumulate');
    accumulate.forEach((name, i) => {
      const col = byName.get(name);
      if (!col) ctx.report(['accumulate', `[${i}]`], `"${name}" is not a column`, suggestion(name, names, 'columns are'));
      else if (key.includes(name)) ctx.report(['accumulate', `[${i}]`], `${name} is a key column, which identifies the row and cannot be summed`, `remove ${name} from accumulate or from key`);
      else if (!NUMERIC.includes(col.type)) ctx.report(['accumulate', `[${i}]`], `column ${name} is ${col.type}, which cannot be summed`, `accumulate ${NUMERIC.join(', ')} columns only`);
    });
    return { ...c, key, accumulate };
  },
});

class SqlBatch implements OutputBatch {
  readonly lines = new CopyLines();
  /** Per row: its consumed message, compactly (a refused row is dead-lettered from it). */
  private readonly messages = new KeptMessages();

  /** The keys seen, while no key came twice (then undefined: the load de-duplicates in SQL). */
  private keys: Set<string> | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly encode: CopyLineEncoder,
    keyed: boolean,
  ) {
    this.keys = keyed ? new Set() : undefined;
  }

  /** True when every row has a key of its own: the load needs no DISTINCT ON (no sort of the batch). */
  get uniqueKeys(): boolean {
    return this.keys !== undefined;
  }

  add(record: OutputRecord): Refusal | undefined {
    let line: string;
    try {
      line = this.encode(record.value);
    } catch (error) {
      if (error instanceof LakeValueError) return { reason: DLQ_REASONS.schemaMismatch, error: error.message };
      throw error;
    }
    if (this.keys) {
      const key = this.encode.lastKey;
      if (this.keys.has(key)) this.keys = undefined;
      else this.keys.add(key);
    }
    this.lines.push(line);
    this.messages.add(record.message);
    return undefined;
  }

  /** Row `i` as it was consumed, without its value (what its dead letter needs). */
  record(i: number): OutputRecord {
    const message = this.messages.get(i);
    return { topic: this.topic, partition: this.partition, offset: message.offset, message, value: undefined };
  }

  get rows(): number {
    return this.lines.length;
  }
}

export class SqlOutput implements Output<SqlBatch> {
  readonly type = 'sql';
  readonly offsets = 'output' as const;
  readonly batching: Output['batching'];
  readonly describe: Record<string, unknown>;
  private readonly writer: SqlWriter;
  private readonly encode: CopyLineEncoder;
  /** Whether batches track their keys: a key of exact types (a float key may round to equal in a real column), and a mode with a key. */
  private readonly keyed: boolean;

  constructor(
    private readonly config: SqlOutputConfig,
    private readonly ctx: OutputContext,
  ) {
    this.writer = new SqlWriter(ctx.pipeline.name, config, ctx.logger.child({ output: 'sql', table: config.table }));
    this.keyed = config.mode !== 'append' && config.accumulate.length === 0 && config.columns.every((c) => !config.key.includes(c.name) || c.type !== 'float');
    this.encode = copyLineEncoder(config.columns, this.keyed ? config.key : []);
    this.batching = config.batching;
    this.describe = { table: config.table, mode: config.mode };
  }

  async connect(signal?: AbortSignal): Promise<void> {
    await this.writer.connectRetrying(signal);
  }

  async check(): Promise<void> {
    await this.writer.ping();
  }

  openBatch(topic: string, partition: number): SqlBatch {
    return new SqlBatch(topic, partition, this.encode, this.keyed);
  }

  async write(batch: SqlBatch, ctx: WriteContext): Promise<PreparedWrite> {
    const tx = await this.writer.begin(
      { topic: batch.topic, partition: batch.partition, startOffset: BigInt(ctx.startOffset), nextOffset: ctx.nextOffset, lines: batch.lines, uniqueKeys: batch.uniqueKeys },
      { signal: ctx.signal, stillWanted: ctx.owned, ...(ctx.heartbeat ? { whileWaiting: ctx.heartbeat } : {}) },
    );
    return {
      rejected: tx.rejected.map((r) => ({ reason: DLQ_REASONS.sqlRejected, error: r.message, record: batch.record(r.index) })),
      stats: { bytes: 0, objects: tx.rows, phases: tx.phases },
      commit: () => tx.commit(),
      abort: () => tx.abort(),
    };
  }

  committedOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>> {
    return this.writer.storedOffsets(topic, partitions);
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

export { StaleBatchError };

export const sqlComponent: OutputComponent<SqlOutputConfig> = {
  spec: sqlOutputSpec,
  offsets: 'output',
  create: (config, ctx) => new SqlOutput(config, ctx),
};
