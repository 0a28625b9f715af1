import type { Kafka } from 'kafkajs';
import { setImmediate } from 'node:timers/promises';
import { isRebalancing, isUnavailable } from '../core/errors/errors.js';
import { BLOCKING_RETRY, sleep, withRetry } from '../core/errors/retry.js';
import type { TopicPlanInput } from '../core/kafka/topic-plan.js';
import type { StartupState } from '../core/runtime/startup.js';
import type { Logger } from '../core/log/logger.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import type { RegistryRestClient } from '../core/registry/ccompat.js';
import { BatchPolicy } from './batch-policy.js';
import { flushBatch, type FlushPorts, type FlushReport } from './flusher.js';
import { inputComponent } from './inputs/index.js';
import type { Input, InputBatch } from './inputs/input.js';
import type { ExportMetrics } from './metrics.js';
import { outputComponent } from './outputs/index.js';
import type { Output } from './outputs/output.js';
import { PartitionBatch } from './partition-batch.js';
import { PartitionLock } from './partition-lock.js';
import { settlesWithin, whileBeating } from '../core/runtime/timeouts.js';
import { RecordConsumer, RecordPath } from './record-path.js';

/**
 * Runs one pipeline: its input (inputs/input.ts: a kafkajs consumer group, stdin, a
 * generator...) feeding per-partition batches (the record path), flushed by the batch policy
 * through the pipeline's output (the flusher) and then committed to the input. This file is
 * the orchestration around them: assignment, rebalances, partition locks, seeking,
 * heartbeats while flushing, the end of a finite input.
 *
 * Guarantees, and how:
 * - Offsets are committed (by the consumer, so a member of an old generation is refused; or
 *   by the output in its own transaction, see outputs/output.ts) only after everything of
 *   the flush is written and every dead letter acknowledged.
 * - One flush at a time per partition, and a partition's batch always starts at its
 *   committed offset, so object keys (topic+partition+first offset) replay identically.
 *   With an output that stores offsets, a partition's first fetch after an assignment is
 *   checked against the stored offset, and the consumer seeks there when it is behind.
 * - Every rebalance throws away all open batches (kafkajs resumes every partition from its
 *   committed offset after a rebalance), and a write in progress is abandoned as soon as
 *   the group starts rebalancing, so a partition's new owner is never overwritten by the old.
 * - A partition's flushes run in the background while its next batch fills (kafkajs holds
 *   the fetch of every partition of a broker until eachBatch returns, so a flush inside it
 *   would stall them all): up to MAX_SEALED sealed batches a partition queue behind one
 *   another, so a slow flush stops neither the other partitions' record work nor the
 *   filling of this partition's next batches. They are written one after another, in offset
 *   order, and a batch only starts writing once the one before it is committed, so at most
 *   one uncommitted batch of a partition is in the target, and it starts at the committed
 *   offset. A flush that fails voids every batch queued or filling behind it (all are read
 *   again from the failed batch's first offset).
 * - Target and broker faults block with backoff while the consumer keeps heartbeating; a
 *   full batch waits while MAX_SEALED batches of its partition are in flight, which is the
 *   backpressure: memory holds at most MAX_SEALED + 1 batches (batching.count /
 *   batching.bytes) per assigned partition.
 */

export interface RunnerDeps {
  /** The kafka input's client (a fake in unit tests); the input builds its own when absent. */
  kafka?: Pick<Kafka, 'consumer' | 'producer' | 'admin'>;
  /** Where Avro schemas come from (decode: avro_registry). */
  registry: Pick<RegistryRestClient, 'request'>;
  logger: Logger;
  metrics: ExportMetrics;
  /** The pipeline's output; built from its component (outputs/index.ts) when absent. */
  output?: Output;
  /** The pipeline's input; built from its component (inputs/index.ts) when absent. */
  input?: Input;
  /** Replication factor and min.insync.replicas of the DLQ topic it creates (core kafka settings). */
  topics?: TopicPlanInput['kafka'];
}

interface PartitionState {
  /** `topic/partition`, the state's key in `states`. */
  key: string;
  batch: PartitionBatch;
  /** The generation (local rebalance counter) the state belongs to. */
  epoch: number;
  /** Serialises the partition's batch work (consuming, starting flushes). */
  lock: PartitionLock;
  /**
   * The flushes of the partition's sealed batches while the open one fills, oldest first
   * (at most MAX_SEALED: a full batch waits for the oldest, which is the backpressure). Each
   * starts when the one before it committed: they commit in offset order.
   */
  flushes: Promise<FlushResult>[];
}

type FlushResult = FlushReport['result'];

const IDLE_CHECK_MS = 100;
/** After a rebalance, how long a new owner waits before its first write: the old owner's cut requests end first. */
const NEW_OWNER_GUARD_MS = 2000;
/** The longest the batch loop runs before letting other callbacks (flushes) in. */
const SLICE_MS = 5;
/** How long a stopping runner waits for flushes it cut (stop) to end before it leaves the group anyway. */
const STOP_CUT_MS = 3000;
/** How long a stopping runner lets its flushes run: with the group's leave (at most LEAVE_TIMEOUT_MS) well inside the 30 s a closer gets. */
export const STOP_FLUSH_MS = 15_000;
/** Sealed batches a partition may have in flight (one writing, the others queued behind it) while its next batch fills. */
export const MAX_SEALED = 2;

export class PipelineRunner {
  readonly input: Input;
  private readonly records: RecordConsumer;
  readonly output: Output;
  private readonly policy: BatchPolicy;
  private readonly ports: FlushPorts;
  private readonly states = new Map<string, PartitionState>();
  private readonly log: Logger;
  private epoch = 0;
  /** Aborted at every rebalance: writes in flight stop before the partitions move. */
  private inFlight = new AbortController();
  /** When the last rebalance completed: a new owner's first flush waits NEW_OWNER_GUARD_MS after it. */
  private joinedAt = 0;
  private joined = false;
  private stopping = false;
  /** How long stop() lets the flushes run before it cuts them (see stop). */
  stopFlushMs = STOP_FLUSH_MS;
  private idleTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private crashed: Error | undefined;
  private readonly totals = { in: 0, out: 0, dlq: 0, dropped: 0, files: 0, bytes: 0 };
  /** Per partition: the high watermark seen last, and the offset committed last (by this runner, or stored by the output). */
  private readonly highWatermarks = new Map<string, bigint>();
  private readonly committed = new Map<string, bigint | undefined>();
  private readonly lagByPartition = new Map<string, number>();
  /**
   * Partitions whose flush the group's rebalance abandoned, until kafkajs rejoins: consuming
   * on (kafkajs's position is past the lost batch) could commit past records never written.
   */
  private readonly voided = new Set<string>();

  constructor(
    readonly pipeline: PipelineConfig,
    private readonly deps: RunnerDeps,
  ) {
    this.log = deps.logger.child({ pipeline: pipeline.name });
    this.input =
      deps.input ??
      inputComponent(pipeline.input.type).create(pipeline.input.config, {
        pipeline,
        logger: this.log,
        metrics: deps.metrics,
        ...(deps.kafka ? { kafka: deps.kafka } : {}),
        ...(deps.topics ? { topics: deps.topics } : {}),
      });
    this.output = deps.output ?? outputComponent(pipeline.output.type).create(pipeline.output.config, { pipeline, logger: this.log, metrics: deps.metrics, ...(deps.kafka ? { kafka: deps.kafka } : {}) });
    this.records = new RecordConsumer(new RecordPath(pipeline, deps.registry, this.output, this.log, this.input.decode), this.log);
    const { count, bytes, period } = this.output.batching;
    this.policy = new BatchPolicy(count, bytes, period);
    this.ports = {
      output: this.output,
      logger: this.log,
      sendDeadLetters: (messages, owned, heartbeat) => this.input.deadLetters.send(messages, owned, heartbeat),
      commitOffset: (topic, partition, next) => this.input.commit(topic, partition, next),
      deadLetterFor: (record, reason, error) => this.records.deadLetterFor(record, reason, error, 'output'),
    };
  }

  get ready(): boolean {
    return this.joined && !this.crashed;
  }

  get failure(): Error | undefined {
    return this.crashed;
  }

  /**
   * Waits for the input's source (Kafka and its topics: the input says what it waits for in
   * `startup`) and the output, then consumes.
   */
  async start(startup: StartupState): Promise<void> {
    await this.input.connect(startup);
    await startup.dependency(`the ${this.output.type} output`, () => this.output.connect());
    await this.run();
  }

  /** Follows the input (rebalances, crashes, its end) and consumes: the input connected. */
  async run(): Promise<void> {
    // An input without a group has no rejoin to wait for: it is a member from the start.
    if (this.input.offsets === 'none') this.joined = true;
    await this.input.run({
      batch: (batch) => this.eachBatch(batch),
      rebalancing: () => this.onRebalance('rebalancing'),
      joined: (assignment) => {
        this.onRebalance('joined');
        this.joined = true;
        this.output.assigned?.(assignment);
        this.log.info({ assignment, generation: this.epoch }, 'joined the consumer group');
      },
      crashed: (error) => {
        this.crashed = error;
        this.log.fatal({ err: error }, `${this.input.type} input failed for good`);
      },
      drained: () => this.flushAll(),
    });
    this.idleTimer = setInterval(() => this.flushIdle(), IDLE_CHECK_MS);
    this.progressTimer = setInterval(() => this.logProgress(), this.pipeline.logger.progress_interval);
    this.log.info({ input: this.input.type, ...this.input.describe, output: this.output.type, ...this.output.describe, batching: this.output.batching, deadLetters: this.input.deadLetters.target }, 'pipeline started');
  }

  /**
   * A finite input (stdin, generate with a count): resolves when everything it delivered is
   * committed, rejects when it gave up on a flush that kept failing. Undefined for inputs that
   * run until stopped.
   */
  get finished(): Promise<void> | undefined {
    return this.input.ended;
  }

  /**
   * SIGTERM: flush every open batch and commit, the partitions at once, then leave the group.
   * The flushes get `stopFlushMs`: past it (a slow or unreachable target) the writes still in
   * flight are cut as at a rebalance, their records read again from the committed offsets by
   * the next owner, so that the process leaves its group and exits within its orchestrator's
   * grace period instead of being killed in the middle.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.idleTimer);
    clearInterval(this.progressTimer);
    const flushed = Promise.all(
      [...this.states].map(([key, st]) =>
        st.lock.run(async () => {
          const last = st.flushes.at(-1);
          if (last && (await last) !== 'committed') return;
          // A rebalance, or the cut below (epoch moved): no final flush.
          if (st.epoch === this.epoch && this.isCurrent(st) && st.batch.pending && !this.crashed) {
            try {
              await this.flush(st, st.batch, undefined, true);
            } catch (error) {
              this.log.warn({ partition: key, err: error }, 'final flush failed; its records will be read again from the committed offset');
            }
          }
        }),
      ),
    );
    if (!(await settlesWithin(flushed, this.stopFlushMs))) {
      this.log.warn({ waitedMs: this.stopFlushMs }, 'stopping: flushes still in flight are cut; their records are read again from the committed offsets');
      this.epoch++;
      this.inFlight.abort();
      this.inFlight = new AbortController();
      if (!(await settlesWithin(flushed, STOP_CUT_MS))) this.log.warn({ waitedMs: STOP_CUT_MS }, 'stopping: a cut flush did not end; leaving the group anyway (nothing of it is committed)');
    }
    await this.input.stop();
    await this.output.close();
    this.logProgress();
    this.log.info('pipeline stopped');
  }

  /** Whether the schema registry answers (readiness: a record of a new schema id cannot be decoded without it). */
  async checkRegistry(): Promise<void> {
    const { status } = await this.deps.registry.request('GET', '/subjects');
    if (status !== 200) throw new Error(`the schema registry answered ${status} to GET /subjects`);
  }

  /** Whether the output's target answers (readiness). */
  async checkOutput(): Promise<void> {
    await this.output.check();
  }

  private onRebalance(what: 'rebalancing' | 'joined'): void {
    this.epoch++;
    // The old owner's writes must not land after the new owner's: cut them now (a body not
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

  private newBatch(topic: string, partition: number): PartitionBatch {
    return this.records.path.openBatch(topic, partition);
  }

  private stateFor(topic: string, partition: number): PartitionState {
    const key = `${topic}/${partition}`;
    let st = this.states.get(key);
    if (!st) {
      st = { key, batch: this.newBatch(topic, partition), epoch: this.epoch, lock: new PartitionLock(), flushes: [] };
      this.states.set(key, st);
    }
    return st;
  }

  /**
   * With an output that stores offsets: the partition's stored offset, read once per
   * assignment. A fetch that starts before it (the group's offset lags the target's, or
   * start_from applied to a partition the target already holds) is not consumed: the
   * consumer seeks to the stored offset (true: skip this fetch).
   */
  private async behindStoredOffset(st: PartitionState, firstOffset: string, heartbeat: () => Promise<void>): Promise<boolean> {
    // An input with no durable position (stdin, generate) starts again at 0 each run: an offset stored by an earlier run is not its own.
    if (this.output.offsets !== 'output' || !this.output.committedOffsets || this.input.offsets !== 'group') return false;
    const { topic, partition } = st.batch;
    if (!this.committed.has(st.key)) {
      const epoch = this.epoch;
      const stored = await withRetry(() => this.output.committedOffsets!(topic, [partition]), {
        policy: BLOCKING_RETRY,
        retriable: isUnavailable,
        whileWaiting: heartbeat,
        stillWanted: () => epoch === this.epoch && this.isCurrent(st),
        onRetry: (error, attempt, retryInMs) => this.log.warn({ dependency: `output ${this.output.type}`, attempt, retryInMs, err: error }, 'stored offsets unavailable, waiting'),
      });
      if (epoch !== this.epoch || !this.isCurrent(st)) return true;
      this.committed.set(st.key, stored.get(partition));
    }
    const stored = this.committed.get(st.key);
    if (stored === undefined || BigInt(firstOffset) >= stored || st.batch.pending) return false;
    this.log.info({ topic, partition, fetched: firstOffset, stored: stored.toString() }, `seeking to the offset the ${this.output.type} output stored`);
    this.input.seek(topic, partition, stored.toString());
    return true;
  }

  private async eachBatch(batch: InputBatch): Promise<void> {
    const { heartbeat, resolveOffset, isRunning, isStale } = batch;
    if (this.stopping) return;
    if (this.voided.has(`${batch.topic}/${batch.partition}`)) {
      // A lost batch: nothing here until the rejoin. The heartbeat lets kafkajs see the rebalance now.
      await heartbeat();
      await sleep(200);
      return;
    }
    const st = this.stateFor(batch.topic, batch.partition);
    const metrics = this.deps.metrics;
    await st.lock.run(async () => {
      if (st.epoch !== this.epoch || !this.isCurrent(st) || this.stopping) return; // rebalanced, failed or stopping while waiting
      if (batch.messages.length > 0 && (await this.behindStoredOffset(st, batch.messages[0]!.offset, heartbeat))) return;
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
            const pending = this.records.consume(st.batch, message);
            if (pending) await pending;
          } catch (error) {
            // A bug or a dependency that stays down: never leave a half batch behind a resolved offset.
            resolveDone();
            this.states.delete(st.key);
            this.input.seek(batch.topic, batch.partition, st.batch.startOffset ?? message.offset);
            throw error;
          }
          done = message.offset;
          counted++;
          if (this.policy.full(st.batch) && !this.stopping) {
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
      if (this.policy.due(st.batch, Date.now()) && !this.stopping) await this.rollBatch(st, heartbeat);
    }, heartbeat);
  }

  /**
   * Closes the partition's open batch and queues its flush in the background, so the fetch
   * loop (which kafkajs holds for every partition of the broker until eachBatch returns)
   * goes on while the batch is written. The flush starts once the partition's previous one
   * committed; while MAX_SEALED are in flight, waits for the oldest first. False when the
   * partition's batches are void (a flush failed, or the group rebalanced): stop consuming
   * into it.
   */
  private async rollBatch(st: PartitionState, heartbeat: (() => Promise<void>) | undefined): Promise<boolean> {
    while (st.flushes.length >= MAX_SEALED) {
      if ((await this.previousFlush(st.flushes[0]!, heartbeat)) !== 'committed') return false;
    }
    if (st.epoch !== this.epoch || !this.isCurrent(st)) return false;
    const batch = st.batch;
    if (!batch.pending) return true;
    st.batch = this.newBatch(batch.topic, batch.partition);
    const previous = st.flushes.at(-1);
    // After a previous flush that did not commit, this batch is void: the failed one's seek (or the rejoin) reads it again.
    const flushing: Promise<FlushResult> = (previous ? previous.then((r) => (r === 'committed' ? this.flush(st, batch, heartbeat) : r)) : this.flush(st, batch, heartbeat))
      .catch((error: unknown) => {
        this.log.warn({ err: error, topic: batch.topic, partition: batch.partition }, 'flush failed; the batch is read again');
        return 'failed' as const;
      })
      .finally(() => {
        const i = st.flushes.indexOf(flushing);
        if (i >= 0) st.flushes.splice(i, 1);
      });
    st.flushes.push(flushing);
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
   * Flushes a partition's batch (flusher.ts) while this member keeps its partitions: the
   * new-owner guard before, heartbeats during, and what a failure means after (a rebalance:
   * stop consuming the partition until the rejoin; another fault: seek back to the batch's
   * first offset). The batch's epoch is checked before each step.
   */
  private async flush(st: PartitionState, batch: PartitionBatch, heartbeat: (() => Promise<void>) | undefined, final = false): Promise<FlushResult> {
    if (!this.isCurrent(st) || batch.sealed) return 'lost'; // failed, dropped or already being flushed: its records are read again
    if (!batch.pending || batch.nextOffset === undefined) return 'committed';
    const started = Date.now();
    // A flush that has started completes through a SIGTERM (stop() waits for it); only a rebalance abandons it.
    const owned = () => st.epoch === this.epoch && this.isCurrent(st);
    // A partition that just moved here: give the previous owner's aborted requests time to end.
    const guard = this.joinedAt + NEW_OWNER_GUARD_MS - Date.now();
    if (guard > 0) await sleep(guard);
    if (!owned()) {
      if (this.isCurrent(st)) this.states.delete(st.key);
      return 'lost';
    }
    const signal = this.inFlight.signal;
    // A long flush (many files, a slow target) keeps this member alive: without heartbeats the group
    // would hand the partition to another member while these writes still land. A heartbeat that
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
    let report: FlushReport;
    try {
      report = await flushBatch(batch, this.ports, { owned, signal, heartbeat, committedOffset: this.committed.get(st.key) });
    } finally {
      clearInterval(beating);
    }
    if (report.result !== 'committed') {
      // Nothing was committed: drop the batch and read it again from where it started.
      const current = this.isCurrent(st);
      if (current) this.states.delete(st.key);
      if (report.result === 'lost') {
        // The group is rebalancing but kafkajs may not have noticed yet: stop consuming the partition until it rejoins.
        if (current && st.epoch === this.epoch) this.voided.add(st.key);
        this.log.info({ topic: batch.topic, partition: batch.partition }, "flush abandoned: the group is rebalancing; the batch is read again by the partition's owner");
        return 'lost';
      }
      this.log.warn({ topic: batch.topic, partition: batch.partition, from: batch.startOffset, err: report.error }, 'flush failed before its commit; the batch is read again');
      // An output that stores offsets may have refused a stale batch (another member wrote past it): read its offset again.
      if (this.output.offsets === 'output') this.committed.delete(st.key);
      if (!final && batch.startOffset !== undefined) this.input.seek(batch.topic, batch.partition, batch.startOffset);
      return 'failed';
    }
    // Committed: the next batch of the partition starts here.
    this.committed.set(st.key, report.next);
    this.updateLag(batch.topic, batch.partition);
    this.recordFlush(batch, report, started, Math.max(0, guard));
    return 'committed';
  }

  private recordFlush(batch: PartitionBatch, report: Extract<FlushReport, { result: 'committed' }>, started: number, guard: number): void {
    const name = this.pipeline.name;
    const metrics = this.deps.metrics;
    const seconds = (Date.now() - started) / 1000;
    metrics.flushSeconds.observe({ pipeline: name }, seconds);
    metrics.batchRecords.observe({ pipeline: name }, report.records);
    metrics.recordsOut.inc({ pipeline: name }, report.records);
    metrics.uploadBytes.inc({ pipeline: name }, report.bytes);
    metrics.lastCommit.set({ pipeline: name }, Date.now() / 1000);
    for (const d of report.deadLetters) metrics.recordsDlq.inc({ pipeline: name, reason: d.reason });
    let dropped = 0;
    for (const [by, n] of batch.dropped) {
      metrics.recordsDropped.inc({ pipeline: name, processor: by }, n);
      dropped += n;
    }
    this.totals.out += report.records;
    this.totals.dlq += report.deadLetters.length;
    this.totals.dropped += dropped;
    this.totals.files += report.objects;
    this.totals.bytes += report.bytes;
    this.log.debug(
      { topic: batch.topic, partition: batch.partition, files: report.objects, records: report.records, deadLetters: report.deadLetters.length, committed: report.next.toString(), ms: Math.round(seconds * 1000), phases: { guard, ...report.phases } },
      'flushed',
    );
  }

  /** A finite input delivered everything: every open batch is flushed now (not after its period). */
  private flushAll(): void {
    for (const st of this.states.values()) {
      const b = st.batch;
      if (st.epoch !== this.epoch || !b.pending) continue;
      void st.lock
        .run(async () => {
          if (st.epoch !== this.epoch || st.batch !== b) return;
          await this.rollBatch(st, undefined);
        })
        .catch((error) => this.log.warn({ err: error, topic: b.topic, partition: b.partition }, 'final flush failed; the batch is delivered again'));
    }
  }

  /** Partitions whose batch is older than the period while no records arrive: flushed from a timer. */
  private flushIdle(): void {
    if (this.stopping || !this.joined) return;
    const now = Date.now();
    for (const st of this.states.values()) {
      const b = st.batch;
      if (st.lock.busy || st.flushes.length >= MAX_SEALED || st.epoch !== this.epoch || !this.policy.due(b, now)) continue;
      st.lock.busy = true; // claimed; run() sets it again
      void st.lock
        .run(async () => {
          if (st.epoch !== this.epoch || st.batch !== b || b.openedAt === undefined) return;
          await this.rollBatch(st, undefined);
        })
        .catch((error) => this.log.warn({ err: error, topic: b.topic, partition: b.partition }, 'idle flush failed; the batch is read again after the rejoin'));
    }
  }

  private logProgress(): void {
    let lag = 0;
    for (const v of this.lagByPartition.values()) lag += v;
    this.log.info({ ...this.totals, lag, partitions: this.states.size }, 'progress');
  }
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf('/');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
