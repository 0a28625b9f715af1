import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { LakeValueError } from '../../core/parquet/columns.js';
import { sqlOutput, type SqlOutputConfig } from '../../core/pipeline/components/sql-output.js';
import { copyLineEncoder } from '../sql/copy-text.js';
import { StaleBatchError, SqlWriter } from '../sql/writer.js';
import type { Output, OutputBatch, OutputComponent, OutputContext, OutputRecord, PreparedWrite, Refusal, WriteContext } from './output.js';

/**
 * The `sql` output (spec: core/pipeline/components/sql-output.ts): a partition's batch is
 * its rows as COPY lines; a flush is one transaction of the warehouse holding the rows and
 * the partition's next offset (`offsets: 'output'`), committed after the DLQ has the refused
 * rows. See sql/writer.ts for the transaction.
 */


class SqlBatch implements OutputBatch {
  readonly lines: string[] = [];
  /** Per row: the record without its value (a refused row is dead-lettered from its message). */
  readonly records: OutputRecord[] = [];

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly encode: (value: unknown) => string,
  ) {}

  add(record: OutputRecord): Refusal | undefined {
    let line: string;
    try {
      line = this.encode(record.value);
    } catch (error) {
      if (error instanceof LakeValueError) return { reason: DLQ_REASONS.schemaMismatch, error: error.message };
      throw error;
    }
    this.lines.push(line);
    this.records.push({ topic: record.topic, partition: record.partition, offset: record.offset, message: record.message, value: undefined });
    return undefined;
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
  private readonly encode: (value: unknown) => string;

  constructor(
    private readonly config: SqlOutputConfig,
    private readonly ctx: OutputContext,
  ) {
    this.writer = new SqlWriter(ctx.pipeline.name, config, ctx.logger.child({ output: 'sql', table: config.table }));
    this.encode = copyLineEncoder(config.columns);
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
    return new SqlBatch(topic, partition, this.encode);
  }

  async write(batch: SqlBatch, ctx: WriteContext): Promise<PreparedWrite> {
    const tx = await this.writer.begin(
      { topic: batch.topic, partition: batch.partition, startOffset: BigInt(ctx.startOffset), nextOffset: ctx.nextOffset, lines: batch.lines },
      { signal: ctx.signal, stillWanted: ctx.owned, ...(ctx.heartbeat ? { whileWaiting: ctx.heartbeat } : {}) },
    );
    return {
      rejected: tx.rejected.map((r) => ({ reason: DLQ_REASONS.sqlRejected, error: r.message, record: batch.records[r.index]! })),
      stats: { bytes: 0, objects: tx.rows },
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
  spec: sqlOutput,
  offsets: 'output',
  create: (config, ctx) => new SqlOutput(config, ctx),
};
