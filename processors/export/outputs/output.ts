import type { Kafka } from 'kafkajs';
import type { ConsumedRecord } from '../../core/dlq/dead-letter.js';
import type { Logger } from '../../core/log/logger.js';
import type { ComponentSpec } from '../../core/pipeline/component.js';
import type { PipelineConfig } from '../../core/pipeline/pipeline.js';
import type { ExportMetrics } from '../metrics.js';

/**
 * The interface every export output implements (S3 files, a SQL warehouse, stdout, a file,
 * Kafka...), in the spirit of Redpanda Connect's `BatchOutput` (connect / write a batch /
 * close), with Sluice's commit protocol explicit.
 *
 * The runner owns the input: a consumer group, per-partition batches, the processors and the
 * DLQ. An output owns what a batch becomes at its target. Per input partition the runner
 * opens a batch (`openBatch`), adds every processed record to it (`add`: a record the output
 * cannot place is refused with a DLQ reason, the rest go on), and when the batch policy says
 * so the flusher makes it durable, in this order:
 *
 *   1. `write(batch, ctx)`: everything of the batch the target must hold is written, but
 *      nothing yet says "these offsets are done". It returns the rows the target refused
 *      (per-row rejects: a constraint, a value out of range) and a `commit`.
 *   2. the runner sends the batch's dead letters (processor ones, placement refusals and the
 *      rejects of step 1) to the DLQ and waits for their acks;
 *   3. `commit()` of step 1 makes the flush and its offsets durable together:
 *      - `offsets: 'consumer'` (S3): writes are idempotent (deterministic object keys: the
 *        partition and the offset of the file's first record; a batch always starts at the
 *        committed offset, so a replay overwrites what it wrote). `commit()` has nothing left
 *        to do; then the runner commits `ctx.nextOffset` with the consumer (kafkajs, so a
 *        member of an old generation is refused).
 *      - `offsets: 'output'` (SQL): `write` loads the rows and stores `ctx.nextOffset` for
 *        (pipeline, topic, partition) in one transaction it leaves open, fenced on
 *        `ctx.committedOffset` (the stored offset must still be the one this member last
 *        read or wrote, or another owner wrote since: refuse); `commit()` commits that transaction, `abort()` rolls
 *        it back. On assignment the runner asks `committedOffsets` and seeks there (the
 *        target is the truth for offsets); it may also commit to the group, for lag only.
 *   A failure or a rebalance anywhere before the end of step 3 calls `abort()` (when step 1
 *   returned) and nothing is committed: the partition is read again from its committed offset.
 *   Dead letters are at-least-once (a replay may send them again); rows and offsets are
 *   exactly once.
 */
export interface Output<B extends OutputBatch = OutputBatch> {
  /** The component's name (`s3`, `sql`...), for logs and metrics. */
  readonly type: string;
  /** Who makes consumed offsets durable: the consumer group after `commit()`, or the output inside it. */
  readonly offsets: 'consumer' | 'output';
  /** When a partition's batch is flushed (the output's `batching` block): whichever limit is reached first. */
  readonly batching: { count: number; bytes: number; period: number };
  /** For the start log line: where it writes (bucket, table...), never a secret. */
  readonly describe: Record<string, unknown>;
  /** Opens connections/pools, once: throws when the target is unavailable (the startup retries it, saying what it waits for). */
  connect(): Promise<void>;
  /** Whether the target answers now (readiness): throws a message naming what is wrong. */
  check(): Promise<void>;
  /** An empty batch for one input partition; records are added as they are consumed (no I/O). */
  openBatch(topic: string, partition: number): B;
  /** Step 1 of a flush (see above). Throws on a fault (transient ones waited out inside while `ctx.owned()`). */
  write(batch: B, ctx: WriteContext): Promise<PreparedWrite>;
  /**
   * `offsets: 'output'` only: the next offset to read of each partition as the target stored
   * it (absent: never written; the group's `start_from` applies). Asked on every assignment.
   */
  committedOffsets?(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>>;
  /**
   * After each join of the input's group: this member's partitions now. An output holding
   * something per input partition (kafka: a transactional producer) releases what belongs to
   * partitions it no longer owns, instead of keeping it until `close`.
   */
  assigned?(partitions: Readonly<Record<string, readonly number[]>>): void;
  /** Releases connections; flushes nothing (the runner flushed before). */
  close(): Promise<void>;
}

/**
 * An output component, declared in one file (processors/export/outputs/<name>.ts): its spec
 * (the config fields lint, load and docs read) and its constructor, side by side, and one
 * line in the list of processors/export/outputs/index.ts.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface OutputComponent<Config = any> {
  readonly spec: ComponentSpec<unknown, Config>;
  /** Its outputs' commit protocol (Output.offsets), known before one is built: what a `switch` checks its cases against. Unset: 'consumer'. */
  readonly offsets?: 'consumer' | 'output';
  /** Builds the output of one pipeline (no I/O: `connect` does that). Throws ConfigError naming the file for rules the spec cannot check. */
  create(config: Config, ctx: OutputContext): Output;
}

export interface OutputContext {
  /** The whole pipeline (its name keys stored offsets; its file names config errors; its input's decode). */
  pipeline: PipelineConfig;
  logger: Logger;
  metrics: ExportMetrics;
  /** The input's Kafka client (its cluster, TLS and SASL), for outputs that write to that cluster (kafka: exactly once needs the same one). */
  kafka?: Pick<Kafka, 'producer' | 'admin'>;
}

/** A processed record as the runner hands it to an output. */
export interface OutputRecord {
  value: unknown;
  topic: string;
  partition: number;
  offset: string;
  /**
   * The consumed message (key, value bytes, headers, timestamp): what a dead letter of this
   * record carries. An output that may reject rows after `add` keeps it; others drop it.
   */
  message: ConsumedRecord['message'];
  /** The Avro reader schema the value was decoded with (avro_registry input), for outputs whose shape follows it. */
  reader?: { id: number; schema: unknown };
}

/** Why a record or a row goes to the DLQ instead of the target (a code of core/dlq/reasons.ts). */
export interface Refusal {
  reason: string;
  /** Human-readable, e.g. the database's message; never a secret. */
  error: string;
}

/** The open batch of one input partition, in the output's own form (files by key, rows...). */
export interface OutputBatch {
  /** Places a record; a refusal (a value the target's types cannot hold, a bad path) leaves the batch unchanged. */
  add(record: OutputRecord): Refusal | undefined;
  /** Records placed so far. */
  readonly rows: number;
}

export interface WriteContext {
  topic: string;
  partition: number;
  /** The offset of the batch's first consumed message: where a replay starts. */
  startOffset: string;
  /**
   * The partition's committed offset as this member knows it: what `committedOffsets`
   * returned on assignment, then each flush's `nextOffset` (undefined: never stored). The
   * fence of an output that stores offsets.
   */
  committedOffset: bigint | undefined;
  /** The offset to commit once the batch is durable (past its last message, or a transaction marker). */
  nextOffset: bigint;
  /** False once the partition is no longer this member's (a rebalance): stop before anything becomes visible. */
  owned(): boolean;
  /** Aborted when the group starts rebalancing: cut requests in flight. */
  signal: AbortSignal;
  /** Keeps the consumer in its group during a long write; throws when the group is rebalancing. */
  heartbeat?: () => Promise<void>;
  logger: Logger;
}

export interface PreparedWrite {
  /** Rows the target refused (per-row: the rest of the batch is written); the runner sends them to the DLQ before `commit()`. */
  rejected: readonly RejectedRow[];
  /** What was written, for metrics and logs (`phases`: where the time went, ms). */
  stats: { bytes: number; objects: number; phases?: Record<string, number> };
  /** Step 3: makes the write (and with `offsets: 'output'`, the offsets) durable. */
  commit(): Promise<void>;
  /** Undoes what can be undone (rolls a transaction back); idempotent writes have nothing to undo. */
  abort(): Promise<void>;
}

export interface RejectedRow extends Refusal {
  /** The record whose row was refused (as `add` got it): the runner dead-letters its message. */
  record: OutputRecord;
}
