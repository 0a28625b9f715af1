import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { deadLetterMessage } from '../core/dlq/dead-letter.js';
import { isRetriable } from '../core/errors/errors.js';
import { sleep } from '../core/errors/retry.js';
import { ensureTopics } from '../core/kafka/topics.js';
import type { Logger } from '../core/log/logger.js';
import { LakeValueError } from '../core/parquet/columns.js';
import { LakeSchemaError, LakeValueShapeError } from '../core/parquet/lake-schema.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { TemplateValueError } from '../core/pipeline/path-template.js';
import type { RegistryRestClient } from '../core/registry/ccompat.js';
import { uploadDurably, UploadAbandonedError } from '../core/s3/upload.js';
import { AvroDecoder, DecodeError } from './decoder.js';
import { CONTENT_TYPES, OBJECT_METADATA } from './formats.js';
import type { ExportMetrics } from './metrics.js';
import { PartitionBatch, type OutputSettings } from './partition-batch.js';
import { shapeSource, type ShapeSource } from './shape.js';
import { StepChain } from './steps.js';

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
 * - S3 and broker faults block with backoff while the consumer keeps heartbeating; the
 *   fetch loop waits for the flush, which is the backpressure: memory holds at most one
 *   batch (batching.count / batching.bytes) per assigned partition.
 */

export interface RunnerDeps {
  kafka: Kafka;
  s3: S3Client;
  registry: RegistryRestClient;
  logger: Logger;
  metrics: ExportMetrics;
}

interface PartitionState {
  batch: PartitionBatch;
  /** The generation (local rebalance counter) the state belongs to. */
  epoch: number;
  /** Serialises batch work and flushes of the partition. */
  lock: Promise<void>;
  busy: boolean;
}

const IDLE_CHECK_MS = 100;
/** After a rebalance, how long a new owner waits before its first upload: the old owner's cut requests end first. */
const NEW_OWNER_GUARD_MS = 2000;
/** Dead letters per produce request (each can be up to 1 MiB). */
const DLQ_CHUNK = 200;

export class PipelineRunner {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly decoder: AvroDecoder;
  private readonly chain: StepChain;
  private readonly shapes: ShapeSource;
  private readonly out: OutputSettings;
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

  async start(): Promise<void> {
    const input = this.pipeline.input.config;
    const admin = this.deps.kafka.admin();
    await admin.connect();
    try {
      // A dead letter is the original record (up to the broker's 1 MiB) plus its reason headers.
      await ensureTopics(admin, [{ topic: this.pipeline.dlq.topic, numPartitions: 3, configEntries: [{ name: 'max.message.bytes', value: String(2 * 1024 * 1024) }] }], this.log);
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
    await this.consumer.connect();
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
    await this.consumer.subscribe({ topics, fromBeginning: input.start_from === 'earliest' });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.idleTimer = setInterval(() => this.flushIdle(), IDLE_CHECK_MS);
    this.progressTimer = setInterval(() => this.logProgress(), this.pipeline.logger.progress_interval);
    this.log.info(
      { topics: input.topics ?? input.topic_pattern, group: input.consumer_group, bucket: this.pipeline.output.config.bucket, format: this.out.format, batching: this.pipeline.output.config.batching },
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
        if (st.epoch === epoch && this.isCurrent(st) && st.batch.pending && !this.crashed) {
          try {
            await this.flush(st, undefined, true);
          } catch (error) {
            this.log.warn({ partition: key, err: error }, 'final flush failed; its records will be read again from the committed offset');
          }
        }
      });
    }
    await this.consumer.disconnect();
    await this.producer.disconnect();
    this.logProgress();
    this.log.info('pipeline stopped');
  }

  /** Whether S3 answers for the bucket (readiness). */
  async checkBucket(): Promise<void> {
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
    return this.states.get(`${st.batch.topic}/${st.batch.partition}`) === st;
  }

  private stateFor(topic: string, partition: number): PartitionState {
    const key = `${topic}/${partition}`;
    let st = this.states.get(key);
    if (!st) {
      st = { batch: new PartitionBatch(topic, partition, this.chain.forPartition(), this.out), epoch: this.epoch, lock: Promise.resolve(), busy: false };
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
      if (whileWaiting) {
        let done = false;
        void previous.then(() => (done = true));
        while (!done) {
          await Promise.race([previous, sleep(1000)]);
          if (!done) await whileWaiting();
        }
      } else await previous;
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
    const st = this.stateFor(batch.topic, batch.partition);
    const metrics = this.deps.metrics;
    const { count, bytes, period } = this.pipeline.output.config.batching;
    await this.exclusive(
      st,
      async () => {
        if (st.epoch !== this.epoch || !this.isCurrent(st) || this.stopping) return; // rebalanced, failed or stopping while waiting
        let all = true;
        for (const message of batch.messages) {
          if (!isRunning() || isStale() || this.stopping || st.epoch !== this.epoch) {
            all = false;
            break;
          }
          try {
            await this.consume(st.batch, batch.topic, batch.partition, message);
          } catch (error) {
            // A bug or a dependency that stays down: never leave a half batch behind a resolved offset.
            this.states.delete(`${batch.topic}/${batch.partition}`);
            this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: st.batch.startOffset ?? message.offset });
            throw error;
          }
          resolveOffset(message.offset);
          metrics.recordsIn.inc({ pipeline: this.pipeline.name });
          this.totals.in++;
          if ((st.batch.records >= count || st.batch.bytes >= bytes) && !this.stopping && (await this.flush(st, heartbeat)) !== 'committed') return;
        }
        if (all && batch.messages.length > 0) {
          st.batch.consumedUpTo(batch.lastOffset());
          resolveOffset(batch.lastOffset());
        }
        this.highWatermarks.set(`${batch.topic}/${batch.partition}`, BigInt(batch.highWatermark));
        this.updateLag(batch.topic, batch.partition);
        if (st.batch.openedAt !== undefined && Date.now() - st.batch.openedAt >= period && !this.stopping) await this.flush(st, heartbeat);
      },
      heartbeat,
    );
  }

  /** One message into the partition's batch: decoded, through the processors, into its file or the DLQ. */
  private async consume(batch: PartitionBatch, topic: string, partition: number, message: KafkaMessage): Promise<void> {
    batch.consumedMessage(message.offset, message.value?.length ?? 0, Date.now(), Number(message.timestamp));
    const input = this.pipeline.input.config;
    let value: unknown;
    let readerId: number | undefined;
    let readerSchema: unknown;
    try {
      if (input.decode === 'avro_registry') {
        if (!this.decoder.ready(topic, message.value)) await this.blockOnTransient('schema registry', () => this.decoder.prepare(topic, message.value));
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
    let outcome = batch.steps.run(value);
    if (outcome instanceof Promise) outcome = await outcome;
    if (outcome.kind === 'drop') return batch.drop(outcome.by);
    if (outcome.kind === 'dead') return this.deadLetter(batch, topic, partition, message, outcome.reason, outcome.error, outcome.by);
    try {
      batch.add(outcome.value, this.shapes.shapeFor(readerId, readerSchema), message.offset);
    } catch (error) {
      if (error instanceof LakeValueError || error instanceof LakeValueShapeError || error instanceof LakeSchemaError) {
        return this.deadLetter(batch, topic, partition, message, 'schema_mismatch', (error as Error).message, 'output');
      }
      if (error instanceof TemplateValueError) return this.deadLetter(batch, topic, partition, message, 'path_error', error.message, 'output');
      throw error;
    }
  }

  private deadLetter(batch: PartitionBatch, topic: string, partition: number, message: KafkaMessage, reason: string, error: string, by: string): void {
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
   * Makes the partition's batch durable: encode and upload every file, send the dead
   * letters, commit. The batch's epoch is checked before each step; a rebalance in between
   * abandons the flush (nothing is committed, the records are read again).
   */
  private async flush(st: PartitionState, heartbeat: (() => Promise<void>) | undefined, final = false): Promise<'committed' | 'lost' | 'failed'> {
    const batch = st.batch;
    if (!this.isCurrent(st) || batch.sealed) return 'lost'; // failed, dropped or already being flushed: its records are read again
    if (!batch.pending || batch.nextOffset === undefined) return 'committed';
    const started = Date.now();
    // A flush that has started completes through a SIGTERM (stop() waits for it); only a rebalance abandons it.
    const owned = () => st.epoch === this.epoch && this.isCurrent(st);
    const { bucket, multipart } = this.pipeline.output.config;
    const name = this.pipeline.name;
    const metrics = this.deps.metrics;
    // A partition that just moved here: give the previous owner's aborted requests time to end.
    const guard = this.joinedAt + NEW_OWNER_GUARD_MS - Date.now();
    if (guard > 0) await sleep(guard);
    if (!owned()) {
      if (this.states.get(`${batch.topic}/${batch.partition}`) === st) this.states.delete(`${batch.topic}/${batch.partition}`);
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
    const files = batch.seal();
    let uploaded = 0;
    try {
      for (const file of files) {
        const body = await file.encode();
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
          stillWanted: owned,
          signal,
          ...(heartbeat ? { whileWaiting: heartbeat } : {}),
          onFailure: () => metrics.uploadFailures.inc({ pipeline: name }),
        });
        uploaded += body.byteLength;
        metrics.files.inc({ pipeline: name });
      }
      for (let i = 0; i < batch.deadLetters.length; i += DLQ_CHUNK) {
        const messages = batch.deadLetters.slice(i, i + DLQ_CHUNK).map((d) => d.message);
        await this.blockOnTransient('Kafka (DLQ)', () => this.producer.send({ topic: this.pipeline.dlq.topic, acks: -1, messages }), owned, heartbeat);
      }
      if (!owned()) throw new UploadAbandonedError('partition lost before the commit');
      await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: batch.nextOffset.toString() }]);
    } catch (error) {
      clearInterval(beating);
      // Nothing was committed: drop the batch and read it again from where it started.
      const key = `${batch.topic}/${batch.partition}`;
      if (this.states.get(key) === st) this.states.delete(key);
      if (error instanceof UploadAbandonedError || isRebalancing(error) || st.epoch !== this.epoch) {
        this.log.info({ topic: batch.topic, partition: batch.partition }, 'flush abandoned: the group is rebalancing; the batch is read again by the partition\'s owner');
        return 'lost';
      }
      this.log.warn({ topic: batch.topic, partition: batch.partition, from: batch.startOffset, err: error }, 'flush failed before its commit; the batch is read again');
      if (!final && batch.startOffset !== undefined) this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.startOffset });
      return 'failed';
    }
    clearInterval(beating);
    // Committed: the next batch of the partition starts here.
    this.committed.set(`${batch.topic}/${batch.partition}`, batch.nextOffset);
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
    this.log.debug({ topic: batch.topic, partition: batch.partition, files: files.length, records: batch.records, deadLetters: batch.deadLetters.length, committed: batch.nextOffset.toString(), ms: Math.round(seconds * 1000) }, 'flushed');
    st.batch = new PartitionBatch(batch.topic, batch.partition, batch.steps, this.out);
    return 'committed';
  }

  /** Partitions whose batch is older than the period while no records arrive: flushed from a timer. */
  private flushIdle(): void {
    if (this.stopping || !this.joined) return;
    const period = this.pipeline.output.config.batching.period;
    const now = Date.now();
    for (const st of this.states.values()) {
      const b = st.batch;
      if (st.busy || st.epoch !== this.epoch || b.openedAt === undefined || now - b.openedAt < period) continue;
      st.busy = true; // claimed; exclusive() sets it again
      void this.exclusive(st, async () => {
        if (st.epoch !== this.epoch || st.batch !== b || b.openedAt === undefined) return;
        await this.flush(st, undefined);
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

