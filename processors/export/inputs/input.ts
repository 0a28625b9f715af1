import type { Kafka } from 'kafkajs';
import type { TopicPlanInput } from '../../core/kafka/topic-plan.js';
import type { Logger } from '../../core/log/logger.js';
import type { ComponentSpec } from '../../core/pipeline/component.js';
import type { PipelineConfig } from '../../core/pipeline/pipeline.js';
import type { StartupState } from '../../core/runtime/startup.js';
import type { DeadLetterSink } from '../dead-letters.js';
import type { ExportMetrics } from '../metrics.js';
import type { ConsumedMessage } from '../record-path.js';

/**
 * The interface every export input implements (a Kafka consumer group, stdin, a generator,
 * an HTTP server...), as narrow as the Output one (outputs/output.ts), in the spirit of
 * kafkajs's consumer: the input delivers runs of one partition's messages in offset order
 * (`run` -> `handler.batch`), and the runner tells it what became durable (`commit`) and
 * where to deliver from again (`seek`, after a failed flush or to an output's stored offset).
 *
 * Offsets are per (topic, partition) and increase by one a record. Where they become durable
 * (`offsets`):
 * - `'group'` (kafka): `commit` commits the consumer group's offset; a crash or a rebalance
 *   reads again from there (with the outputs' idempotent writes: exactly once in effect).
 * - `'none'` (stdin, generate): nothing outside the process remembers a position. `commit`
 *   only releases the records held for a retry: every record the input delivered stays in
 *   memory until its flush committed, and a flush that fails is delivered again from there
 *   (`seek`), so within the process delivery is at least once; a crash loses what was not
 *   flushed (stdin cannot be read twice). The runner's backpressure bounds what is held (two
 *   batches a partition).
 *
 * An input ends (`finite`) or runs until stopped. A finite input calls `handler.drained` when
 * it delivered everything (the runner then flushes every open batch at once), and `ended`
 * resolves when everything it delivered was committed: the run is over.
 */
export interface Input {
  /** The component's name (`kafka`, `stdin`, `generate`...), for logs and metrics. */
  readonly type: string;
  /** Where a committed position is kept (see above). */
  readonly offsets: 'group' | 'none';
  /** Whether the input ends by itself (stdin at EOF, generate with a count). */
  readonly finite: boolean;
  /** For the start log line: what it reads (topics, group, file...), never a secret. */
  readonly describe: Record<string, unknown>;
  /** How the record path decodes the values it delivers (the first step of the record path). */
  readonly decode: 'avro_registry' | 'json' | 'raw';
  /** Where the pipeline's dead letters go: the DLQ topic through this input's brokers, or stderr. */
  readonly deadLetters: DeadLetterSink;
  /** Waits for what it reads from (brokers, topics), saying so in `startup`, and connects. */
  connect(startup: StartupState): Promise<void>;
  /**
   * Starts delivering to `handler` (returns once delivery has started). At most one `batch`
   * call of a partition at a time; the next waits for it (the runner's backpressure).
   */
  run(handler: InputHandler): Promise<void>;
  /** Everything of the partition before `next` is durable at the output. */
  commit(topic: string, partition: number, next: bigint): Promise<void>;
  /** Delivers the partition again from `offset` (its open batch was thrown away). */
  seek(topic: string, partition: number, offset: string): void;
  /** Whether the input's source answers now (readiness); throws a message naming what is wrong. */
  check(): Promise<void>;
  /** Stops delivering and releases connections (the runner flushed before). */
  stop(): Promise<void>;
  /** Finite inputs: resolves once all it delivered is committed; rejects when it gave up (a flush that keeps failing). */
  readonly ended: Promise<void> | undefined;
}

/** What the input calls into the runner. */
export interface InputHandler {
  /** A run of one partition's messages, in offset order (kafkajs's eachBatch payload fits). */
  batch(batch: InputBatch): Promise<void>;
  /** The group started rebalancing: every open batch is void, writes in flight are cut. */
  rebalancing(): void;
  /** The group was joined (again): this member's partitions by topic (for the log, and outputs that hold per-partition resources). */
  joined(assignment: Readonly<Record<string, readonly number[]>>): void;
  /** The input failed for good. */
  crashed(error: Error): void;
  /** A finite input delivered everything it has: flush what is open now. */
  drained(): void;
}

export interface InputBatch {
  topic: string;
  partition: number;
  messages: ConsumedMessage[];
  /** The offset after the partition's last record as the source knows it (lag). */
  highWatermark: string;
  /** The batch's last offset (may be past the last message: a transaction marker). */
  lastOffset(): string;
  /** Keeps a consumer group member alive; throws when the group is rebalancing. */
  heartbeat(): Promise<void>;
  /** The input's position moves past `offset` (it is in the runner's batch now). */
  resolveOffset(offset: string): void;
  isRunning(): boolean;
  /** The batch was voided by a seek or a rebalance while being handled: stop. */
  isStale(): boolean;
}

/**
 * An input component, declared in one file (processors/export/inputs/<name>.ts): its spec
 * and its constructor side by side, and one line in processors/export/inputs/index.ts.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface InputComponent<Config = any> {
  readonly spec: ComponentSpec<unknown, Config>;
  /** Builds the input of one pipeline (no I/O: `connect` does that). */
  create(config: Config, ctx: InputContext): Input;
}

export interface InputContext {
  pipeline: PipelineConfig;
  logger: Logger;
  metrics: ExportMetrics;
  /** kafka: the client to consume and dead-letter with (a fake in unit tests); built from the input's config when absent. */
  kafka?: Pick<Kafka, 'consumer' | 'producer' | 'admin'>;
  /** kafka: replication factor and min.insync.replicas of the DLQ topic it creates (core kafka settings). */
  topics?: TopicPlanInput['kafka'];
  /** stdin: the stream read (process.stdin when absent). */
  stdin?: NodeJS.ReadableStream;
  /** Inputs without a broker: where dead letters are written as JSON lines (process.stderr when absent). */
  stderr?: NodeJS.WritableStream;
}
