import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { deadLetterMessage } from '../core/dlq/dead-letter.js';
import { isRetriable } from '../core/errors/errors.js';
import { setImmediate } from 'node:timers/promises';
import { sleep } from '../core/errors/retry.js';
import { ensureTopics } from '../core/kafka/topics.js';
import { exportTopics, type TopicPlanInput } from '../core/kafka/topic-plan.js';
import { FAIL_FAST_RETRY, type StartupState } from '../core/runtime/startup.js';
import type { Logger } from '../core/log/logger.js';
import { LakeValueError } from '../core/parquet/columns.js';
import { ParquetEncodePool } from '../core/parquet/encode-pool.js';
import { LakeSchemaError, LakeValueShapeError } from '../core/parquet/lake-schema.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { TemplateValueError } from '../core/pipeline/path-template.js';
import type { RegistryRestClient } from '../core/registry/ccompat.js';
import { uploadDurably, UploadAbandonedError } from '../core/s3/upload.js';
import { AvroDecoder, DecodeError } from './decoder.js';
import { CONTENT_TYPES, OBJECT_METADATA } from './formats.js';
import type { ExportMetrics } from './metrics.js';
import { PartitionBatch, type OutputSettings, type SealedFile } from './partition-batch.js';
import { shapeSource, type ShapeSource } from './shape.js';
import { StepChain, type StepOutcome } from './steps.js';
import type { Output, OutputBatch } from './outputs/output.js';

/**
 * Runs one pipeline: a kafkajs consumer group feeding per-partition batches, flushed to S3
 * and then committed.
 *
 * Guarantees, and how:
 * - Offsets are committed (by the consumer, so a member of an old generation is refused)
 *   only after every file of the flush is written and every dead letter acknowledged.
 * - One flush at a time per partition, and a partition's batch always starts at its
 *   committed offset, so object keys (topic+partition+first offset) replay identically.
 * - Every rebalance throws away all open batches (kafkajs resumes every partition from its
 *   committed offset after a rebalance), and an upload in progress is abandoned as soon as
 *   the group starts rebalancing, so a partition's new owner is never overwritten by the old.
 * - A partition's flush runs in the background while its next batch fills (kafkajs holds
 *   the fetch of every partition of a broker until eachBatch returns, so a flush inside it
 *   would stall them all); flushes of a partition run one after another, in offset order,
 *   and a batch only starts uploading once the one before it is committed, so at most one
 *   uncommitted batch of a partition has objects in S3, and it starts at the committed
 *   offset. A flush that fails voids the batch filling behind it (both are read again).
 * - S3 and broker faults block with backoff while the consumer keeps heartbeating; a full
 *   batch waits for its partition's previous flush, which is the backpressure: memory holds
 *   at most two batches (batching.count / batching.bytes) per assigned partition.
 */

export interface RunnerDeps {
  kafka: Kafka;
  s3: S3Client;
  registry: RegistryRestClient;
  logger: Logger;
  metrics: ExportMetrics;
  /** Replication factor and min.insync.replicas of the DLQ topic it creates (core kafka settings). */
  topics?: TopicPlanInput['kafka'];
  /**
   * An output that stores the consumed offsets itself (`offsets: 'output'`, the sql output):
   * records go to its batches, a flush is its write + commit, and each partition resumes from
   * the offset it stored. Unset: the S3 files path below.
   */
  output?: Output | undefined;
}

interface PartitionState {
  /** `topic/partition`, the state's key in `states`. */
  key: string;
  batch: PartitionBatch;
  /** The generation (local rebalance counter) the state belongs to. */
  epoch: number;
  /** Serialises the partition's batch work (consuming, starting flushes). */
  lock: Promise<void>;
  busy: boolean;
  /**
   * The flush of the partition's previous batch while the open one fills (at most one: a
   * full batch waits for it, which is the backpressure). Flushes commit in offset order.
   */
  flushing: Promise<FlushResult> | undefined;
}

type FlushResult = 'committed' | 'lost' | 'failed';

const IDLE_CHECK_MS = 100;
/** After a rebalance, how long a new owner waits before its first upload: the old owner's cut requests end first. */
const NEW_OWNER_GUARD_MS = 2000;
/** The longest the batch loop runs before letting other callbacks (flushes) in. */
const SLICE_MS = 5;
/** Dead letters per produce request (each can be up to 1 MiB). */
const DLQ_CHUNK = 200;

export class PipelineRunner {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly decoder: AvroDecoder;
  private readonly chain: StepChain;
  private readonly shapes: ShapeSource;
  private readonly out: OutputSettings;
  /** Parquet encoding threads (output encode_threads), shared by the partitions. */
  private readonly encodePool: ParquetEncodePool | undefined;
  private readonly states = new Map<string, PartitionState>();
  private readonly log: Logger;
  private epoch = 0;
  /** Aborted at every rebalance: uploads in flight stop before the partitions move. */
  private inFlight = new AbortController();
  /** When the last rebalance completed: a new owner's first flush waits NEW_OWNER_GUARD_MS after it. */
  private joinedAt = 0;
  private joined = false;
  private stopping = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private crashed: Error | undefined;
  private readonly totals = { in: 0, out: 0, dlq: 0, dropped: 0, files: 0, bytes: 0 };
  /** Per partition: the high watermark seen last, and the offset this runner committed last. */
  private readonly highWatermarks = new Map<string, bigint>();
  private readonly committed = new Map<string, bigint>();
  private readonly lagByPartition = new Map<string, number>();
  /**
   * Partitions whose flush the group's rebalance abandoned, until kafkajs rejoins: consuming
   * on (kafkajs's position is past the lost batch) could commit past records never written.
   */
  private readonly voided = new Set<string>();
  /** `deps.output`: each partition batch's rows in the output's own batch. */
  private readonly outBatches = new WeakMap<PartitionBatch, OutputBatch>();
  /** `deps.output`: the offset the output stored per partition, read once a generation (null: none stored). */
  private readonly storedOffsets = new Map<string, bigint | null>();

  constructor(
    readonly pipeline: PipelineConfig,
    private readonly deps: RunnerDeps,
  ) {
    const input = pipeline.input.config;
    const output = pipeline.output.config;
    this.log = deps.logger.child({ pipeline: pipeline.name });
    this.decoder = new AvroDecoder(deps.registry);
    this.chain = new StepChain(pipeline.pipeline.processors);
    this.shapes = shapeSource(output, input.decode, pipeline.file);
    this.out = {
      path: output.path,
      format: output.format,
      compression: output.compression,
      timeField: output.time_field?.split('.'),
      timeFormat: output.time_format,
      metadata: { 'sluice.pipeline': pipeline.name },
    };
    if (output.format === 'parquet' && output.encode_threads > 0) {
      if (ParquetEncodePool.available()) {
        this.encodePool = new ParquetEncodePool(output.encode_threads);
        this.out.encoder = this.encodePool;
      } else this.log.warn('the Parquet encoding thread is not built (running from sources): encoding on the event loop');
    }
    this.consumer = deps.kafka.consumer({
      groupId: input.consumer_group,
      sessionTimeout: input.session_timeout,
      rebalanceTimeout: Math.max(60_000, input.session_timeout),
      heartbeatInterval: Math.min(3000, Math.floor(input.session_timeout / 5)),
      maxBytes: input.fetch_max_bytes,
      maxBytesPerPartition: Math.min(input.fetch_max_bytes, 4 * 1024 * 1024),
      maxWaitTimeInMs: 200,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    // Unlimited retries: kafkajs's idempotence needs them, and a sink's DLQ waits out a broker outage anyway.
    this.producer = deps.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 } });
  }

  get ready(): boolean {
    return this.joined && !this.crashed;
  }

  get failure(): Error | undefined {
    return this.crashed;
  }

  /**
   * Waits for Kafka and for its input topics (another component creates them: the
   * normalizer, for sluice.agent-events), saying what it waits for in `startup`, then
   * joins the group and consumes.
   */
  async start(startup: StartupState): Promise<void> {
    const input = this.pipeline.input.config;
    const kafkaAt = `Kafka at ${input.brokers.join(',')}`;
    // Fails fast: the startup waits log what they wait for and back off themselves.
    const admin = this.deps.kafka.admin({ retry: FAIL_FAST_RETRY });
    await startup.dependency(kafkaAt, () => admin.connect());
    try {
      // Its DLQ as the topic plan defines it (`sluice topics plan`).
      const kafka = this.deps.topics ?? { topicReplicationFactor: -1 };
      await startup.dependency(kafkaAt, () => ensureTopics(admin, exportTopics({ kafka, pipelines: [{ name: this.pipeline.name, dlqTopic: this.pipeline.dlq.topic }] }), this.log));
      // An input topic is another processor's output (sluice.agent-events: the normalizer's); subscribing before it exists fails.
      for (const topic of input.topics ?? []) {
        await startup.topic(admin, topic, {
          createdBy: 'the processor that writes it (sluice.agent-events: the normalizer, at its start)',
          hint: `check that its writer runs (\`sluice normalizer\`, its /readyz), or the pipeline's input.topics in ${this.pipeline.file}`,
        });
      }
    } finally {
      await admin.disconnect();
    }
    if (this.deps.output) {
      const output = this.deps.output;
      await startup.dependency(`the ${output.type} output of ${this.pipeline.name}`, () => output.connect());
    }
    await startup.dependency(kafkaAt, () => this.producer.connect());
    await startup.dependency(kafkaAt, () => this.consumer.connect());
    const { REBALANCING, GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(REBALANCING, () => this.onRebalance('rebalancing'));
    this.consumer.on(GROUP_JOIN, (e) => {
      this.onRebalance('joined');
      this.joined = true;
      this.log.info({ assignment: e.payload.memberAssignment, generation: this.epoch }, 'joined the consumer group');
    });
    this.consumer.on(CRASH, (e) => {
      if (!e.payload.restart) {
        this.crashed = e.payload.error;
        this.log.fatal({ err: e.payload.error }, 'consumer crashed for good');
      }
    });
    const topics = input.topics ?? [new RegExp(input.topic_pattern!)];
    await startup.dependency(kafkaAt, () => this.consumer.subscribe({ topics, fromBeginning: input.start_from === 'earliest' }));
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.idleTimer = setInterval(() => this.flushIdle(), IDLE_CHECK_MS);
    this.progressTimer = setInterval(() => this.logProgress(), this.pipeline.logger.progress_interval);
    this.log.info(
      { topics: input.topics ?? input.topic_pattern, group: input.consumer_group, output: this.pipeline.output.type, ...(this.deps.output ? {} : { bucket: this.pipeline.output.config.bucket, format: this.out.format }), batching: this.pipeline.output.config.batching },
      'pipeline started',
    );
  }

  /** SIGTERM: flush every open batch, commit, leave the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.idleTimer);
    clearInterval(this.progressTimer);
    const epoch = this.epoch;
    for (const [key, st] of [...this.states]) {
      await this.exclusive(st, async () => {
        if (st.flushing && (await st.flushing) !== 'committed') return;
        if (st.epoch === epoch && this.isCurrent(st) && st.batch.pending && !this.crashed) {
          try {
            await this.flush(st, st.batch, undefined, true);
          } catch (error) {
            this.log.warn({ partition: key, err: error }, 'final flush failed; its records will be read again from the committed offset');
          }
        }
      });
    }
    await this.consumer.disconnect();
    await this.producer.disconnect();
    await this.encodePool?.close();
    await this.deps.output?.close();
    this.logProgress();
    this.log.info('pipeline stopped');
  }

  /** Whether the schema registry answers (readiness: a record of a new schema id cannot be decoded without it). */
  async checkRegistry(): Promise<void> {
    const { status } = await this.deps.registry.request('GET', '/subjects');
    if (status !== 200) throw new Error(`the schema registry answered ${status} to GET /subjects`);
  }

  /** Whether S3 answers for the bucket, or the output its own check (readiness). */
  async checkBucket(): Promise<void> {
    if (this.deps.output) return this.deps.output.check();
    await this.deps.s3.send(new HeadBucketCommand({ Bucket: this.pipeline.output.config.bucket }));
  }

  private onRebalance(what: 'rebalancing' | 'joined'): void {
    this.epoch++;
    // The old owner's uploads must not land after the new owner's: cut them now (a body not
    // fully sent never becomes an object), before this member rejoins and the partitions move.
    this.inFlight.abort();
    this.inFlight = new AbortController();
    if (what === 'joined') this.joinedAt = Date.now();
    if (what === 'rebalancing') this.deps.metrics.rebalances.inc({ pipeline: this.pipeline.name });
    let dropped = 0;
    for (const st of this.states.values()) if (st.batch.pending) dropped += st.batch.consumed;
    // The old states' work checks `epoch` and gives up; kafkajs resumes every partition from its committed offset.
    this.states.clear();
    this.voided.clear();
    this.storedOffsets.clear();
    for (const key of this.lagByPartition.keys()) {
      const [topic, partition] = splitKey(key);
      this.deps.metrics.lag.remove({ pipeline: this.pipeline.name, topic, partition: String(partition) });
      this.deps.metrics.lagSeconds.remove({ pipeline: this.pipeline.name, topic, partition: String(partition) });
    }
    this.lagByPartition.clear();
    this.highWatermarks.clear();
    this.committed.clear();
    if (dropped > 0) this.log.info({ records: dropped, event: what }, 'rebalance: open batches dropped, they are read again from the committed offsets');
  }

  /** Lag = high watermark - committed offset (what a restart would read again plus what is not read yet). */
  private updateLag(topic: string, partition: number): void {
    const key = `${topic}/${partition}`;
    const hw = this.highWatermarks.get(key);
    if (hw === undefined) return;
    const st = this.states.get(key);
    const committed = this.committed.get(key) ?? st?.batch.startOffset;
    if (committed === undefined) return;
    const lag = Math.max(0, Number(hw - BigInt(committed)));
    this.lagByPartition.set(key, lag);
    const labels = { pipeline: this.pipeline.name, topic, partition: String(partition) };
    this.deps.metrics.lag.set(labels, lag);
    // In seconds: the age of the oldest record not committed yet (the open batch's first), 0 when caught up.
    const oldest = st?.batch.oldestTimestamp;
    this.deps.metrics.lagSeconds.set(labels, lag === 0 || oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
  }

  /** Whether `st` is still the partition's live state (a failed flush or a rebalance retires it for good). */
  private isCurrent(st: PartitionState): boolean {
    return this.states.get(st.key) === st;
  }

  private stateFor(topic: string, partition: number): PartitionState {
    const key = `${topic}/${partition}`;
    let st = this.states.get(key);
    if (!st) {
      st = { key, batch: new PartitionBatch(topic, partition, this.chain.forPartition(), this.out), epoch: this.epoch, lock: Promise.resolve(), busy: false, flushing: undefined };
      this.states.set(key, st);
    }
    return st;
  }

  /** Runs `fn` when no other work of the partition runs, calling `whileWaiting` (a heartbeat) every second meanwhile. */
  private async exclusive(st: PartitionState, fn: () => Promise<void>, whileWaiting?: () => Promise<void>): Promise<void> {
    const previous = st.lock;
    let release!: () => void;
    st.lock = new Promise((r) => (release = r));
    let holding = false;
    try {
      if (whileWaiting) await whileBeating(previous, whileWaiting);
      else await previous;
      holding = true;
      st.busy = true;
      await fn();
    } finally {
      if (holding) {
        st.busy = false;
        release();
      } else {
        // Left while waiting (a heartbeat said the group is rebalancing): the holder before us
        // still runs, so whoever queued behind us waits for it too.
        void previous.then(release);
      }
    }
  }

  private async eachBatch({ batch, heartbeat, resolveOffset, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (this.stopping) return;
    if (this.voided.has(`${batch.topic}/${batch.partition}`)) {
      // A lost batch: nothing here until the rejoin. The heartbeat lets kafkajs see the rebalance now.
      await heartbeat();
      await sleep(200);
      return;
    }
    if (this.deps.output?.committedOffsets && batch.messages.length > 0 && !(await this.resumeFromStored(batch.topic, batch.partition, batch.messages[0]!.offset, heartbeat))) return;
    const st = this.stateFor(batch.topic, batch.partition);
    const metrics = this.deps.metrics;
    const { count, bytes, period } = this.pipeline.output.config.batching;
    await this.exclusive(
      st,
      async () => {
        if (st.epoch !== this.epoch || !this.isCurrent(st) || this.stopping) return; // rebalanced, failed or stopping while waiting
        let all = true;
        // Offsets are resolved (kafkajs's fetch position) in one call per run of records, not per record.
        let done: string | undefined;
        let resolved: string | undefined;
        let counted = 0;
        const resolveDone = () => {
          if (done !== undefined && done !== resolved) resolveOffset((resolved = done));
          metrics.recordsIn.inc({ pipeline: this.pipeline.name }, counted);
          this.totals.in += counted;
          counted = 0;
        };
        let sliceStarted = Date.now();
        let sinceCheck = 0;
        try {
          for (const message of batch.messages) {
            // A fetched batch can hold tens of thousands of records: give the background
            // flushes' callbacks (encoded files, finished uploads, commits) a turn now and then.
            if (++sinceCheck === 256) {
              sinceCheck = 0;
              if (Date.now() - sliceStarted >= SLICE_MS) {
                await setImmediate();
                sliceStarted = Date.now();
              }
            }
            if (!isRunning() || isStale() || this.stopping || st.epoch !== this.epoch || !this.isCurrent(st)) {
              all = false;
              break;
            }
            try {
              const pending = this.consume(st.batch, batch.topic, batch.partition, message);
              if (pending) await pending;
            } catch (error) {
              // A bug or a dependency that stays down: never leave a half batch behind a resolved offset.
              resolveDone();
              this.states.delete(st.key);
              this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: st.batch.startOffset ?? message.offset });
              throw error;
            }
            done = message.offset;
            counted++;
            if ((st.batch.records >= count || st.batch.bytes >= bytes) && !this.stopping) {
              resolveDone();
              if (!(await this.rollBatch(st, heartbeat))) return;
            }
          }
        } finally {
          resolveDone();
        }
        if (all && batch.messages.length > 0) {
          st.batch.consumedUpTo(batch.lastOffset());
          resolveOffset(batch.lastOffset());
        }
        this.highWatermarks.set(`${batch.topic}/${batch.partition}`, BigInt(batch.highWatermark));
        this.updateLag(batch.topic, batch.partition);
        if (st.batch.openedAt !== undefined && Date.now() - st.batch.openedAt >= period && !this.stopping) await this.rollBatch(st, heartbeat);
      },
      heartbeat,
    );
  }

  /**
   * One message into the partition's batch: decoded, through the processors, into its file
   * or the DLQ. Synchronous unless the registry must be asked or a processor is async; then
   * it returns the promise to wait for.
   */
  private consume(batch: PartitionBatch, topic: string, partition: number, message: KafkaMessage, prepared = false): Promise<void> | undefined {
    if (!prepared && this.pipeline.input.config.decode === 'avro_registry' && !this.decoder.ready(topic, message.value)) {
      return this.blockOnTransient('schema registry', () => this.decoder.prepare(topic, message.value)).then(() => this.consume(batch, topic, partition, message, true));
    }
    batch.consumedMessage(message.offset, message.value?.length ?? 0, Date.now(), Number(message.timestamp));
    const input = this.pipeline.input.config;
    let value: unknown;
    let readerId: number | undefined;
    let readerSchema: unknown;
    try {
      if (input.decode === 'avro_registry') {
        const decoded = this.decoder.decode(topic, message.value);
        value = decoded.value;
        readerId = decoded.readerId;
        readerSchema = decoded.readerSchema;
      } else if (input.decode === 'json') {
        value = parseJson(message.value);
      } else value = message.value;
    } catch (error) {
      if (error instanceof DecodeError) return this.deadLetter(batch, topic, partition, message, error.reason, error.message, 'input');
      throw error;
    }
    const outcome = batch.steps.run(value);
    if (outcome instanceof Promise) return outcome.then((o) => this.place(batch, topic, partition, message, o, readerId, readerSchema));
    return this.place(batch, topic, partition, message, outcome, readerId, readerSchema);
  }

  /** A processed record into its file (or the DLQ, or nowhere when a processor dropped it). */
  private place(batch: PartitionBatch, topic: string, partition: number, message: KafkaMessage, outcome: StepOutcome, readerId: number | undefined, readerSchema: unknown): undefined {
    if (outcome.kind === 'drop') return void batch.drop(outcome.by);
    if (outcome.kind === 'dead') return this.deadLetter(batch, topic, partition, message, outcome.reason, outcome.error, outcome.by);
    if (this.deps.output) {
      let rows = this.outBatches.get(batch);
      if (!rows) this.outBatches.set(batch, (rows = this.deps.output.openBatch(topic, partition)));
      const refusal = rows.add({ value: outcome.value, topic, partition, offset: message.offset, message, ...(readerId !== undefined ? { reader: { id: readerId, schema: readerSchema } } : {}) });
      if (refusal) return this.deadLetter(batch, topic, partition, message, refusal.reason, refusal.error, 'output');
      batch.records++;
      return undefined;
    }
    try {
      batch.add(outcome.value, this.shapes.shapeFor(readerId, readerSchema), message.offset);
    } catch (error) {
      if (error instanceof LakeValueError || error instanceof LakeValueShapeError || error instanceof LakeSchemaError) {
        return this.deadLetter(batch, topic, partition, message, 'schema_mismatch', (error as Error).message, 'output');
      }
      if (error instanceof TemplateValueError) return this.deadLetter(batch, topic, partition, message, 'path_error', error.message, 'output');
      throw error;
    }
    return undefined;
  }

  private deadLetter(batch: PartitionBatch, topic: string, partition: number, message: KafkaMessage, reason: string, error: string, by: string): undefined {
    const dlq = this.pipeline.dlq;
    const letter = deadLetterMessage({ topic, partition, message }, { reason, error }, `${this.pipeline.name}/${by}`);
    if (!dlq.include_original) {
      letter.value = null;
      for (const name of Object.keys(message.headers ?? {})) delete (letter.headers as Record<string, unknown>)[name];
    }
    Object.assign(letter.headers!, dlq.headers);
    batch.deadLetter(letter, reason);
  }

  /**
   * Closes the partition's open batch and starts its flush in the background, so the fetch
   * loop (which kafkajs holds for every partition of the broker until eachBatch returns)
   * goes on while files are encoded and uploaded. Waits for the previous flush first: at
   * most one batch flushing and one filling per partition. False when the partition's
   * batches are void (that flush failed, or the group rebalanced): stop consuming into it.
   */
  private async rollBatch(st: PartitionState, heartbeat: (() => Promise<void>) | undefined): Promise<boolean> {
    if (st.flushing && (await this.previousFlush(st.flushing, heartbeat)) !== 'committed') return false;
    if (st.epoch !== this.epoch || !this.isCurrent(st)) return false;
    const batch = st.batch;
    if (!batch.pending) return true;
    st.batch = new PartitionBatch(batch.topic, batch.partition, batch.steps, this.out);
    const flushing: Promise<FlushResult> = this.flush(st, batch, heartbeat)
      .catch((error: unknown) => {
        this.log.warn({ err: error, topic: batch.topic, partition: batch.partition }, 'flush failed; the batch is read again');
        return 'failed' as const;
      })
      .finally(() => {
        if (st.flushing === flushing) st.flushing = undefined;
      });
    st.flushing = flushing;
    return true;
  }

  /**
   * Waits for a partition's previous flush, heartbeating every second meanwhile: a heartbeat
   * that says the group is rebalancing ends the wait ('lost'), so that eachBatch returns and
   * kafkajs can rejoin (the flush's commit could otherwise be retried against a group that
   * waits for this very member).
   */
  private async previousFlush(flushing: Promise<FlushResult>, heartbeat: (() => Promise<void>) | undefined): Promise<FlushResult> {
    if (!heartbeat) return flushing;
    try {
      return await whileBeating(flushing, heartbeat);
    } catch (error) {
      if (isRebalancing(error)) return 'lost';
      throw error;
    }
  }

  /**
   * Makes the partition's batch durable: encode and upload every file, send the dead
   * letters, commit. The batch's epoch is checked before each step; a rebalance in between
   * abandons the flush (nothing is committed, the records are read again).
   */
  private async flush(st: PartitionState, batch: PartitionBatch, heartbeat: (() => Promise<void>) | undefined, final = false): Promise<FlushResult> {
    if (!this.isCurrent(st) || batch.sealed) return 'lost'; // failed, dropped or already being flushed: its records are read again
    if (!batch.pending || batch.nextOffset === undefined) return 'committed';
    const started = Date.now();
    // A flush that has started completes through a SIGTERM (stop() waits for it); only a rebalance abandons it.
    const owned = () => st.epoch === this.epoch && this.isCurrent(st);
    const name = this.pipeline.name;
    const metrics = this.deps.metrics;
    // A partition that just moved here: give the previous owner's aborted requests time to end.
    const guard = this.joinedAt + NEW_OWNER_GUARD_MS - Date.now();
    if (guard > 0) await sleep(guard);
    if (!owned()) {
      if (this.isCurrent(st)) this.states.delete(st.key);
      return 'lost';
    }
    const signal = this.inFlight.signal;
    // A long flush (many files, a slow S3) keeps this member alive: without heartbeats the group
    // would hand the partition to another member while these uploads still land. A heartbeat that
    // says the group is rebalancing cuts them at once.
    const beating = heartbeat
      ? setInterval(() => {
          heartbeat().catch((error: unknown) => {
            if (isRebalancing(error) && !signal.aborted) {
              this.inFlight.abort();
              this.inFlight = new AbortController();
            }
          });
        }, 1000)
      : undefined;
    const files = this.deps.output ? [] : batch.seal();
    if (this.deps.output) batch.sealed = true;
    let uploaded = 0;
    /** Where the flush's time went (ms), for the debug log. */
    const phases = { guard: Math.max(0, guard), write: 0, encoding: 0, uploading: 0, deadLetters: 0, commit: 0 };
    try {
      const writing = Date.now();
      if (this.deps.output) {
        await this.flushToOutput(this.deps.output, st, batch, owned, signal, heartbeat);
        phases.write = Date.now() - writing;
      } else {
        uploaded = await this.writeFiles(files, owned, signal, heartbeat, phases);
        phases.write = Date.now() - writing;
        for (let i = 0; i < batch.deadLetters.length; i += DLQ_CHUNK) {
          const messages = batch.deadLetters.slice(i, i + DLQ_CHUNK).map((d) => d.message);
          await this.blockOnTransient('Kafka (DLQ)', () => this.producer.send({ topic: this.pipeline.dlq.topic, acks: -1, messages }), owned, heartbeat);
        }
        if (!owned()) throw new UploadAbandonedError('partition lost before the commit');
        const committing = Date.now();
        phases.deadLetters = committing - writing - phases.write;
        await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: batch.nextOffset.toString() }]);
      }
    } catch (error) {
      clearInterval(beating);
      // Nothing was committed: drop the batch and read it again from where it started.
      const key = st.key;
      this.storedOffsets.delete(key); // the output's stored offset is read again (it may have moved)
      const current = this.isCurrent(st);
      if (current) this.states.delete(key);
      if (error instanceof UploadAbandonedError || isRebalancing(error) || st.epoch !== this.epoch) {
        // The group is rebalancing but kafkajs may not have noticed yet: stop consuming the partition until it rejoins.
        if (current && st.epoch === this.epoch) this.voided.add(key);
        this.log.info({ topic: batch.topic, partition: batch.partition }, 'flush abandoned: the group is rebalancing; the batch is read again by the partition\'s owner');
        return 'lost';
      }
      this.log.warn({ topic: batch.topic, partition: batch.partition, from: batch.startOffset, err: error }, 'flush failed before its commit; the batch is read again');
      if (!final && batch.startOffset !== undefined) this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.startOffset });
      return 'failed';
    }
    clearInterval(beating);
    phases.commit = Date.now() - started - phases.guard - phases.write - phases.deadLetters;
    // Committed: the next batch of the partition starts here.
    this.committed.set(st.key, batch.nextOffset);
    this.updateLag(batch.topic, batch.partition);
    const seconds = (Date.now() - started) / 1000;
    metrics.flushSeconds.observe({ pipeline: name }, seconds);
    metrics.batchRecords.observe({ pipeline: name }, batch.records);
    metrics.recordsOut.inc({ pipeline: name }, batch.records);
    metrics.uploadBytes.inc({ pipeline: name }, uploaded);
    metrics.lastCommit.set({ pipeline: name }, Date.now() / 1000);
    for (const d of batch.deadLetters) metrics.recordsDlq.inc({ pipeline: name, reason: d.reason });
    for (const [by, n] of batch.dropped) metrics.recordsDropped.inc({ pipeline: name, processor: by }, n);
    this.totals.out += batch.records;
    this.totals.dlq += batch.deadLetters.length;
    this.totals.dropped += [...batch.dropped.values()].reduce((a, b) => a + b, 0);
    this.totals.files += files.length;
    this.totals.bytes += uploaded;
    this.log.debug({ topic: batch.topic, partition: batch.partition, files: files.length, records: batch.records, deadLetters: batch.deadLetters.length, committed: batch.nextOffset.toString(), ms: Math.round(seconds * 1000), phases }, 'flushed');
    return 'committed';
  }

  /**
   * Encodes and uploads a flush's files, `max_in_flight` at a time (Parquet encoding on the
   * pool's threads overlaps the uploads). The first failure cuts the others and is thrown
   * once none is in flight any more; nothing is committed then. Returns the bytes uploaded.
   */
  private async writeFiles(files: SealedFile[], owned: () => boolean, signal: AbortSignal, heartbeat: (() => Promise<void>) | undefined, phases: { encoding: number; uploading: number }): Promise<number> {
    const { bucket, multipart, max_in_flight } = this.pipeline.output.config;
    const name = this.pipeline.name;
    const metrics = this.deps.metrics;
    const cut = new AbortController();
    const aborted = AbortSignal.any([signal, cut.signal]);
    let next = 0;
    let uploaded = 0;
    let failure: { error: unknown } | undefined;
    const lane = async () => {
      while (next < files.length && !failure) {
        const file = files[next++]!;
        try {
          const encoding = Date.now();
          const body = await file.encode();
          const uploading = Date.now();
          phases.encoding += uploading - encoding;
          if (failure) return;
          await uploadDurably(this.deps.s3, {
            bucket,
            key: file.key,
            body,
            contentType: CONTENT_TYPES[this.out.format],
            // The file's offset range: replay reads it back to find the files a reset cuts through.
            metadata: { [OBJECT_METADATA.firstOffset]: file.firstOffset, [OBJECT_METADATA.lastOffset]: file.lastOffset, [OBJECT_METADATA.records]: String(file.rows) },
            partSize: multipart.part_size,
            partConcurrency: multipart.concurrency,
            logger: this.log,
            stillWanted: () => owned() && !failure,
            signal: aborted,
            ...(heartbeat ? { whileWaiting: heartbeat } : {}),
            onFailure: () => metrics.uploadFailures.inc({ pipeline: name }),
          });
          phases.uploading += Date.now() - uploading;
          uploaded += body.byteLength;
          metrics.files.inc({ pipeline: name });
        } catch (error) {
          failure ??= { error };
          cut.abort();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(max_in_flight, files.length) }, lane));
    if (failure) throw failure.error;
    return uploaded;
  }

  /**
   * `offsets: 'output'`: the target is the truth for offsets. On a partition's first batch of
   * a generation, reads the offset the output stored; a batch that starts before it (the
   * group's committed offset lags the target's, e.g. after a crash between the two) is
   * skipped and the partition sought there. False: skip this batch.
   */
  private async resumeFromStored(topic: string, partition: number, firstOffset: string, heartbeat: () => Promise<void>): Promise<boolean> {
    const key = `${topic}/${partition}`;
    const epoch = this.epoch;
    let stored = this.storedOffsets.get(key);
    if (stored === undefined) {
      const read = this.deps.output!.committedOffsets!(topic, [partition]);
      const offsets = await whileBeating(read, heartbeat);
      if (epoch !== this.epoch) return false;
      stored = offsets.get(partition) ?? null;
      this.storedOffsets.set(key, stored);
    }
    if (stored === null || BigInt(firstOffset) >= stored) return true;
    if (this.states.get(key)?.batch.pending) return true; // consuming on behind a batch that started at or past it
    this.log.info({ topic, partition, from: firstOffset, stored: stored.toString() }, 'resuming from the offset the output stored');
    this.consumer.seek({ topic, partition, offset: stored.toString() });
    return false;
  }

  /**
   * A flush through an output that stores offsets itself: write (its transaction holds the
   * rows and the next offset), dead letters (the batch's and the rows the target refused)
   * acknowledged, then commit. The group's offset is committed after, for lag only.
   */
  private async flushToOutput(output: Output, st: PartitionState, batch: PartitionBatch, owned: () => boolean, signal: AbortSignal, heartbeat: (() => Promise<void>) | undefined): Promise<void> {
    const rows = this.outBatches.get(batch) ?? output.openBatch(batch.topic, batch.partition);
    const prepared = await output.write(rows, { startOffset: batch.startOffset!, nextOffset: batch.nextOffset!, owned, signal, ...(heartbeat ? { heartbeat } : {}), logger: this.log });
    try {
      for (const r of prepared.rejected) {
        this.deadLetter(batch, r.record.topic, r.record.partition, r.record.message as KafkaMessage, r.reason, r.error, 'output');
        batch.records--;
      }
      for (let i = 0; i < batch.deadLetters.length; i += DLQ_CHUNK) {
        const messages = batch.deadLetters.slice(i, i + DLQ_CHUNK).map((d) => d.message);
        await this.blockOnTransient('Kafka (DLQ)', () => this.producer.send({ topic: this.pipeline.dlq.topic, acks: -1, messages }), owned, heartbeat);
      }
      if (!owned()) throw new UploadAbandonedError('partition lost before the commit');
      await prepared.commit();
    } catch (error) {
      await prepared.abort().catch(() => undefined);
      throw error;
    }
    this.storedOffsets.set(st.key, batch.nextOffset!);
    // For lag (`sluice lag`, the group's offsets): the target already holds the truth.
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: batch.nextOffset!.toString() }]).catch((error: unknown) => this.log.debug({ err: error }, 'group offset commit (lag only) failed'));
  }

  /** Partitions whose batch is older than the period while no records arrive: flushed from a timer. */
  private flushIdle(): void {
    if (this.stopping || !this.joined) return;
    const period = this.pipeline.output.config.batching.period;
    const now = Date.now();
    for (const st of this.states.values()) {
      const b = st.batch;
      if (st.busy || st.flushing || st.epoch !== this.epoch || b.openedAt === undefined || now - b.openedAt < period) continue;
      st.busy = true; // claimed; exclusive() sets it again
      void this.exclusive(st, async () => {
        if (st.epoch !== this.epoch || st.batch !== b || b.openedAt === undefined) return;
        await this.rollBatch(st, undefined);
      }).catch((error) => this.log.warn({ err: error, topic: b.topic, partition: b.partition }, 'idle flush failed; the batch is read again after the rejoin'));
    }
  }

  /** Runs a call to a dependency until it succeeds, waiting out transient faults (logged) while `owned` holds. */
  private async blockOnTransient<T>(what: string, fn: () => Promise<T>, owned: () => boolean = () => true, heartbeat?: () => Promise<void>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!isRetriable(error) && !(error as { name?: string }).name?.startsWith('KafkaJS')) throw error;
        const delay = Math.min(5000, 200 * 2 ** Math.min(attempt, 5));
        this.log.warn({ dependency: what, attempt, retryInMs: delay, err: error }, `${what} unavailable, waiting (nothing is dropped)`);
        await sleep(delay);
        if (heartbeat) await heartbeat();
        if (!owned()) throw new UploadAbandonedError(`${what}: partition lost while waiting`);
      }
    }
  }

  private logProgress(): void {
    let lag = 0;
    for (const v of this.lagByPartition.values()) lag += v;
    this.log.info({ ...this.totals, lag, partitions: this.states.size }, 'progress');
  }
}

const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR_FOR_GROUP', 'FENCED_INSTANCE_ID']);

/** A kafkajs error saying this member's generation is over (its partitions may be elsewhere now). */
function isRebalancing(error: unknown): boolean {
  const e = error as { type?: string; name?: string; cause?: unknown; originalError?: unknown } | null;
  if (!e) return false;
  if (e.type && REBALANCE_ERRORS.has(e.type)) return true;
  return e.name === 'KafkaJSNumberOfRetriesExceeded' && isRebalancing(e.originalError ?? e.cause);
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf('/');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

function parseJson(value: Buffer | null): unknown {
  if (!value) throw new DecodeError('decode_error', 'value is null (a tombstone)');
  try {
    return JSON.parse(value.toString('utf8'));
  } catch (error) {
    throw new DecodeError('decode_error', `value is not JSON: ${(error as Error).message}`);
  }
}

/** Waits for `p`, calling `beat` (a consumer heartbeat) every second meanwhile; an error of `beat` ends the wait. */
async function whileBeating<T>(p: Promise<T>, beat: () => Promise<void>): Promise<T> {
  const pending = Symbol('pending');
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([p, new Promise<typeof pending>((resolve) => (timer = setTimeout(() => resolve(pending), 1000)))]);
    clearTimeout(timer);
    if (result !== pending) return result as T;
    await beat();
  }
}
