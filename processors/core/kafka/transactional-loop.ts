import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Message, type Producer, type RecordMetadata, type TopicMessages, type Transaction } from 'kafkajs';
import type { ConsumedRecord } from '../dlq/dead-letter.js';
import { isFenced, isRebalancing, isUnavailable, PermanentError, SluiceError } from '../errors/errors.js';
import { withRetry, type RetryPolicy } from '../errors/retry.js';
import type { Logger } from '../log/logger.js';
import type { StateStores, StateTransaction } from '../state/state-stores.js';

/**
 * Consume-transform-produce in Kafka transactions (generic: the normalizer and `sluice live`
 * run on it, each with its own route and, optionally, its state stores), the way Kafka Streams does exactly
 * once: each chunk of consumed records is routed, its output produced and the consumed
 * offsets sent in one transaction, then committed. For read_committed consumers a crash
 * at any point either shows the whole chunk's output with its offsets committed, or
 * none of it with the offsets where they were: nothing lost, nothing doubled.
 *
 * Fencing: the transactional id is stable per instance, so a restarted instance's
 * InitProducerId (sent at start, before the consumer joins: see connectProducer) bumps
 * the epoch, fences its zombie and completes or aborts the zombie's open transaction;
 * the committed offsets it then fetches are stable.
 *
 * Limits of kafkajs 2.2 (no KIP-447): TxnOffsetCommit carries no group generation, so
 * the group does not fence a member that lost its partitions (the transactional id
 * does, per instance); OffsetFetch has no requireStable, so after a rebalance a
 * partition's new owner may read an offset whose commit markers are still in flight
 * (milliseconds). `committedNext` covers that for partitions that stay with this
 * process; for a partition moving between instances the window remains.
 */
export interface TransactionalLoopOptions<R> {
  kafka: Kafka;
  admin: Admin;
  groupId: string;
  transactionalId: string;
  inputTopic: string;
  /** Most records of one partition per transaction (a bigger batch is split in chunks). */
  maxBatchRecords: number;
  /**
   * Partitions handled at once (kafkajs' partitionsConsumedConcurrently). Above 1, the
   * batches of one fetch (one per partition) are routed as they arrive and written in ONE
   * transaction, with every partition's offsets: the round trips of a transaction
   * (AddPartitionsToTxn, Produce, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) are paid once a
   * fetch instead of once a partition. Default 1: a transaction per partition's chunk.
   */
  partitionsPerTransaction?: number;
  /**
   * Pipelined: a batch's work is handed back to kafkajs once its transaction is under way,
   * not committed, so the next fetch is read, decoded and applied to the state while the
   * transaction commits (the next transaction reads the state changes of the one before
   * it). If that transaction fails for good, the state of it and of everything routed after
   * it is dropped (StateStores.aborted) and its partitions are read again from its first
   * offsets; a fence or a permanent error stops the loop as before. Default false.
   */
  pipeline?: boolean;
  maxBytesPerPartition: number;
  sessionTimeoutMs: number;
  transactionTimeoutMs: number;
  logger: Logger;
  /** Aborted on shutdown: retry waits end, no new transaction starts. */
  signal: AbortSignal;
  /**
   * State partitioned like the input (core/state): each partition's store is made current
   * from its changelog before the partition's first chunk after an assignment, and each
   * chunk's state changes go to the changelog in the chunk's own transaction.
   */
  state?: StateStores;
  /**
   * Routes a chunk to the messages its transaction writes; `result` goes to onCommitted.
   * With `state`, `txn` is the partition's state as this transaction sees it: what the
   * route puts or deletes there commits (or aborts) with the chunk.
   */
  route(records: ConsumedRecord[], txn?: StateTransaction): Promise<{ topicMessages: TopicMessages[]; result: R }>;
  onCommitted(result: R, seconds: number): void;
  onTransactionFailed?(outcome: 'aborted' | 'reset'): void;
  /** After each committed chunk: records still behind the high watermark, and the timestamp (ms) of the chunk's last record. */
  onLag?(topic: string, partition: number, lag: number, lastTimestampMs: number): void;
  /** Called whenever the loop makes progress or retries: the liveness signal. */
  onActivity?(): void;
  retry?: Partial<RetryPolicy>;
  /**
   * Names the settings behind a fence, for the error that stops the processor: the
   * instance id env var (two instances share it) and the transaction timeout env var.
   */
  fenceHint?: { instanceIdSetting: string; transactionTimeoutSetting: string };
}

/** Thrown when another producer with the same transactional id took over: this instance must stop. */
export class ProducerFencedError extends PermanentError {}

/**
 * Worth another attempt: Kafka being away or busy (any kafkajs error but a fence, a misuse
 * or data the broker refuses) and Sluice's own transient errors; core/errors classifies.
 */
export const isTransient = (error: unknown): boolean => !isFenced(error) && isUnavailable(error);

export { isFenced, isRebalancing };

/**
 * kafkajs writes all of one request's messages for a partition as one record batch, and
 * the broker refuses a batch above max.message.bytes (1 MiB by default): a transaction's
 * output is sent in requests of at most this many bytes.
 */
export const MAX_PRODUCE_BYTES = 512 * 1024;

const ms = (x: number) => Math.round(x * 10) / 10;
const sizeOf = (v: Buffer | string | null | undefined): number => (v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);

/** Approximate bytes of a message on the wire: key, value, headers and record overhead. */
export function messageBytes(m: Message): number {
  let bytes = 32 + sizeOf(m.key) + sizeOf(m.value as Buffer | string | null);
  for (const [name, value] of Object.entries(m.headers ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) bytes += 8 + Buffer.byteLength(name) + sizeOf(v as Buffer | string | undefined);
  }
  return bytes;
}

/** Splits topic messages into requests of at most `maxBytes` each (a bigger single message goes alone), keeping order. */
export function splitBySize(topicMessages: TopicMessages[], maxBytes: number): TopicMessages[][] {
  const parts: TopicMessages[][] = [];
  let part: TopicMessages[] = [];
  let bytes = 0;
  for (const { topic, messages } of topicMessages) {
    let current: TopicMessages | undefined;
    for (const m of messages) {
      const size = messageBytes(m);
      if (bytes > 0 && bytes + size > maxBytes) {
        parts.push(part);
        part = [];
        bytes = 0;
        current = undefined;
      }
      if (!current) {
        current = { topic, messages: [] };
        part.push(current);
      }
      current.messages.push(m);
      bytes += size;
    }
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/**
 * The offset after the last record a produce request wrote to `topic`[`partition`], from
 * the broker's answer (the base offset of the records it appended) and the count sent.
 */
export function nextOffset(part: TopicMessages[], written: RecordMetadata[], topic: string, partition: number): bigint | undefined {
  const meta = written.find((w) => w.topicName === topic && w.partition === partition);
  const count = part.filter((t) => t.topic === topic).reduce((n, t) => n + t.messages.filter((m) => m.partition === partition).length, 0);
  if (!meta || meta.baseOffset === undefined || count === 0) return undefined;
  return BigInt(meta.baseOffset) + BigInt(count);
}

/** One partition's chunk, routed, waiting for (or in) its transaction. */
interface Part<R> {
  topic: string;
  partition: number;
  records: KafkaMessage[];
  /** The offset committed with it: after its last record (and the control records after it). */
  next: bigint;
  state: StateTransaction | undefined;
  routed: { topicMessages: TopicMessages[]; result: R };
  routeMs: number;
  heartbeat: () => Promise<void>;
}

export class TransactionalLoop<R> {
  /** eachBatch calls under way that have not handed a part over (see transact). */
  private active = 0;
  /** Parts handed over for the next transaction. */
  private forming: { part: Part<R>; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** A transaction is being written. */
  private committing = false;
  /** The transaction being written (settles, never rejects). */
  private inFlight: Promise<void> = Promise.resolve();
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  /** Set when a transaction's outcome is unknown: the producer is re-initialised first. */
  private producerNeedsReset = false;
  /**
   * The next offset this process committed, per partition: after a rebalance kafkajs
   * refetches committed offsets without requireStable, so a batch may restart below a
   * commit of ours whose markers were still in flight. Records below are skipped.
   */
  private readonly committedNext = new Map<string, bigint>();
  private fatal: ((error: unknown) => void) | undefined;
  /** The state stores' handling of the last assignment (revoked stores closing). */
  private assignment: Promise<void> = Promise.resolve();
  /** The permanent error eachBatch threw, for the crash report. */
  private stoppedBy: SluiceError | undefined;
  /** Rejects when the loop stops for good on an error (fenced, a bug, a crashed consumer). */
  readonly failed: Promise<never>;

  constructor(private readonly options: TransactionalLoopOptions<R>) {
    this.failed = new Promise<never>((_, reject) => {
      this.fatal = reject;
    });
    this.failed.catch(() => undefined); // observed by whoever awaits it
  }

  /** Connects the producer first (fencing a zombie), then joins the group and starts consuming. */
  async start(): Promise<void> {
    const o = this.options;
    this.producer = await this.connectProducer();
    o.logger.info({ transactionalId: o.transactionalId }, 'transactional producer ready (earlier epochs fenced)');

    const consumer = o.kafka.consumer({
      groupId: o.groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(o.sessionTimeoutMs / 5)),
      maxBytesPerPartition: o.maxBytesPerPartition,
      maxBytes: Math.max(10 * 1024 * 1024, o.maxBytesPerPartition),
    });
    this.consumer = consumer;
    for (const event of [consumer.events.FETCH_START, consumer.events.HEARTBEAT, consumer.events.START_BATCH_PROCESS, consumer.events.GROUP_JOIN]) {
      consumer.on(event, () => o.onActivity?.());
    }
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      o.logger.info({ memberId: e.payload.memberId, assignment: e.payload.memberAssignment }, 'joined the consumer group');
      const assigned = e.payload.memberAssignment[o.inputTopic]?.length ?? 0;
      const perTransaction = o.partitionsPerTransaction ?? 1;
      if (perTransaction > 1 && assigned > perTransaction) {
        // The count is read when the processor starts (the topic's partitions then); kafkajs cannot
        // widen partitionsConsumedConcurrently while running, and a pool sized for any count costs
        // every fetch a wake-up per idle worker (BENCHMARKS.md, freshness: a regression reverted).
        o.logger.warn(
          { topic: o.inputTopic, assigned, partitionsPerTransaction: perTransaction },
          `assigned ${assigned} partitions of ${o.inputTopic}, more than the ${perTransaction} it had at start-up: a fetch of all of them takes ${Math.ceil(assigned / perTransaction)} transactions (still exactly once); restart the processor to take them in one`,
        );
      }
      const state = o.state;
      if (state) {
        const partitions = e.payload.memberAssignment[o.inputTopic] ?? [];
        // After the transaction under way (pipelined) has committed or been given up: its state changes reach the stores first.
        this.assignment = this.assignment.then(() => this.inFlight).then(() => state.assigned(partitions)).catch((error: unknown) => o.logger.warn({ err: error }, 'closing revoked state stores failed'));
      }
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const { error, restart } = e.payload as { error: Error; restart: boolean };
      if (restart) {
        o.logger.warn({ err: error }, 'consumer crashed on a retriable error; kafkajs restarts it');
      } else {
        o.logger.error({ err: error }, 'consumer stopped for good');
        // kafkajs hands over a copy of the message only: report the loop's own error.
        this.fatal?.(this.stoppedBy ?? error);
      }
    });
    await consumer.connect();
    // A new group starts at the beginning of the CDC topic: nothing may be skipped.
    await consumer.subscribe({ topics: [o.inputTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // One transactional producer, one transaction at a time: with several partitions at
      // once, their batches meet in the collector and share the transaction (see Part).
      partitionsConsumedConcurrently: Math.max(1, o.partitionsPerTransaction ?? 1),
      eachBatch: async (payload) => {
        try {
          await this.eachBatch(payload);
        } catch (error) {
          if (error instanceof SluiceError && !error.retriable) this.stoppedBy = error;
          throw error;
        }
      },
    });
  }

  /** Stops after the transaction in flight (committed or aborted), leaves the group, disconnects. */
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.inFlight; // a pipelined transaction still committing
    await this.producer?.disconnect();
  }

  /**
   * A connected producer whose transactional id is initialised (Java's initTransactions):
   * kafkajs would only send InitProducerId at the first transaction, after the consumer
   * has joined and fetched offsets that a zombie's committing transaction may still move.
   * Beginning and aborting an empty transaction sends it now and nothing else.
   */
  private async connectProducer(): Promise<Producer> {
    const producer = this.newProducer();
    await producer.connect();
    try {
      const txn = await producer.transaction(); // InitProducerId: bumps the epoch, completes or aborts an open transaction
      await txn.abort(); // nothing was added to it: no request
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    return producer;
  }

  private newProducer(): Producer {
    const o = this.options;
    return o.kafka.producer({
      // Java-compatible murmur2: an agent's events land where a Java producer would put them.
      createPartitioner: Partitioners.DefaultPartitioner,
      transactionalId: o.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: o.transactionTimeoutMs,
      allowAutoTopicCreation: false,
      // A new transaction right after a commit meets CONCURRENT_TRANSACTIONS until the
      // markers are written (milliseconds): retry it soon, not after the default 300 ms.
      retry: { initialRetryTime: 10, maxRetryTime: 5_000, retries: Number.MAX_SAFE_INTEGER },
    });
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const o = this.options;
    o.onActivity?.();
    this.active++;
    try {
      if (o.state) {
        await this.assignment;
        if (!isRunning() || isStale()) return;
        await o.state.ready(batch.partition, async () => {
          o.onActivity?.();
          await heartbeat();
        });
      }
      const key = `${batch.topic}:${batch.partition}`;
      const floor = this.committedNext.get(key);
      const messages = floor === undefined ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= floor);
      if (messages.length === 0) {
        resolveOffset(batch.lastOffset());
        return;
      }
      for (let i = 0; i < messages.length; i += o.maxBatchRecords) {
        if (!isRunning() || isStale() || o.signal.aborted) return;
        const chunk = messages.slice(i, i + o.maxBatchRecords);
        const last = chunk[chunk.length - 1]!;
        // After the batch's last record, also step over control records that follow it.
        const next = i + o.maxBatchRecords >= messages.length ? BigInt(batch.lastOffset()) + 1n : BigInt(last.offset) + 1n;
        if (o.state) await o.state.writable(batch.partition);
        const state = o.state?.begin(batch.partition);
        const routeStarted = performance.now();
        let routed: Part<R>['routed'];
        try {
          routed = await this.route(batch.topic, batch.partition, chunk, state);
        } catch (error) {
          if (state) o.state!.aborted(state);
          throw error;
        }
        const part: Part<R> = { topic: batch.topic, partition: batch.partition, records: chunk, next, state, routed, routeMs: performance.now() - routeStarted, heartbeat };
        if (!isRunning() || isStale() || o.signal.aborted) {
          if (state) o.state!.aborted(state);
          return;
        }
        await this.transact(part);
        resolveOffset(last.offset);
        o.onLag?.(batch.topic, batch.partition, Math.max(0, Number(batch.highWatermark) - 1 - Number(last.offset)), Number(last.timestamp));
        await heartbeat();
      }
    } finally {
      this.active--;
      this.flushWhenAllWait();
    }
  }

  /**
   * Waits for the part's transaction to commit (pipelined: to be under way). Parts of different partitions handed over
   * while others are still being routed wait in the forming group; the group is written
   * once every batch kafkajs is handling has either handed its part over or returned, and
   * the transaction before it is done.
   */
  private transact(part: Part<R>): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.forming.push({ part, resolve, reject }));
    this.active--;
    this.flushWhenAllWait();
    return done.finally(() => void this.active++);
  }

  private flushWhenAllWait(): void {
    if (this.committing || this.active > 0 || this.forming.length === 0) return;
    const group = this.forming;
    this.forming = [];
    this.committing = true;
    const pipelined = this.options.pipeline === true;
    if (pipelined) group.forEach((g) => g.resolve());
    this.inFlight = this.commitParts(group.map((g) => g.part))
      .then(
        () => {
          if (!pipelined) group.forEach((g) => g.resolve());
        },
        (error: unknown) => this.given_up(group, error),
      )
      .finally(() => {
        this.committing = false;
        this.flushWhenAllWait();
      });
  }

  /**
   * A transaction failed for good (a rebalance, a fence, a permanent error): its state
   * changes, and those of every part routed after it, are dropped. Waiting batches fail
   * with the error (kafkajs rejoins on a rebalance; a permanent error stops the loop).
   * Pipelined, the batches of the failed transaction had already returned: their
   * partitions are read again from the transaction's first offsets, and the error goes to
   * whoever waits for the loop when no batch is left to carry it.
   */
  private given_up(group: { part: Part<R>; reject: (error: unknown) => void }[], error: unknown): void {
    const o = this.options;
    const waiting = this.forming;
    this.forming = [];
    for (const g of [...group, ...waiting]) if (g.part.state) o.state!.aborted(g.part.state);
    if (o.pipeline !== true) {
      group.forEach((g) => g.reject(error));
      waiting.forEach((g) => g.reject(error));
      return;
    }
    waiting.forEach((g) => g.reject(error));
    if (isRebalancing(error) || o.signal.aborted) {
      for (const { part } of group) this.consumer?.seek({ topic: part.topic, partition: part.partition, offset: part.records[0]!.offset });
      o.logger.warn({ err: error, partitions: group.map((g) => g.part.partition) }, 'transaction given up; its partitions are read again from its first offsets');
      return;
    }
    if (error instanceof SluiceError && !error.retriable) this.stoppedBy = error;
    this.fatal?.(error);
  }

  /** The parts (at most one per partition) in one transaction, retried on transient faults until it commits. */
  private async commitParts(initial: Part<R>[]): Promise<void> {
    const o = this.options;
    let parts = initial;
    let last: unknown;
    const where = () => parts.map((p) => `${p.topic}[${p.partition}]`).join(',');
    await withRetry(
      async () => {
        o.onActivity?.();
        const started = performance.now();
        let txn: Transaction | undefined;
        let committing = false;
        try {
          if (this.producerNeedsReset) {
            await this.resetProducer();
            // The failed attempt may have committed after all: the group's offsets tell.
            const committed = await this.committedOffsets(parts);
            const stillDue: Part<R>[] = [];
            for (const p of parts) {
              const c = committed.get(`${p.topic}:${p.partition}`);
              if (c !== undefined && c >= p.next) {
                o.logger.info({ topic: p.topic, partition: p.partition, next: p.next.toString() }, 'the chunk had committed before the failure: not written again');
                this.committedNext.set(`${p.topic}:${p.partition}`, p.next);
                // Its state changes are in the changelog: the local store takes them too
                // (without a changelog position: the next catch-up reads past them).
                if (p.state) o.state!.committed(p.state);
                o.onCommitted(p.routed.result, (performance.now() - started) / 1000);
                continue;
              }
              if (c !== undefined && c > BigInt(p.records[0]!.offset)) {
                // Another member committed part of it: the partition moved (a rebalance).
                // Pipelined, later transactions were computed from this one: give it up.
                if (o.pipeline) throw Object.assign(new Error(`${p.topic}[${p.partition}] was committed to ${c} by another member`), { type: 'REBALANCE_IN_PROGRESS' });
                p.records = p.records.filter((m) => BigInt(m.offset) >= c);
                if (p.state) o.state!.aborted(p.state);
                p.state = o.state?.begin(p.partition);
                p.routed = await this.route(p.topic, p.partition, p.records, p.state);
              }
              stillDue.push(p);
            }
            parts = stillDue;
            if (parts.length === 0) return;
          }
          const producer = this.producer!;
          txn = await producer.transaction();
          // By topic, the parts' messages one after the other (each keeps its order).
          const byTopicOut = new Map<string, Message[]>();
          const add = (topic: string, messages: Message[]) => {
            const list = byTopicOut.get(topic);
            if (list) for (const m of messages) list.push(m);
            else byTopicOut.set(topic, messages.slice());
          };
          for (const p of parts) {
            for (const t of p.routed.topicMessages) add(t.topic, t.messages);
            if (p.state) add(o.state!.changelogTopic, p.state.messages());
          }
          const topicMessages: TopicMessages[] = [...byTopicOut].map(([topic, messages]) => ({ topic, messages }));
          const changelogNext = new Map<number, bigint>();
          for (const request of splitBySize(topicMessages.filter((t) => t.messages.length > 0), MAX_PRODUCE_BYTES)) {
            const written = await txn.sendBatch({ topicMessages: request, acks: -1 });
            for (const p of parts) {
              const n = p.state ? nextOffset(request, written, o.state!.changelogTopic, p.partition) : undefined;
              if (n !== undefined) changelogNext.set(p.partition, n);
            }
          }
          const sent = performance.now();
          const byTopic = new Map<string, { partition: number; offset: string }[]>();
          for (const p of parts) {
            let list = byTopic.get(p.topic);
            if (!list) byTopic.set(p.topic, (list = []));
            list.push({ partition: p.partition, offset: p.next.toString() });
          }
          await txn.sendOffsets({ consumerGroupId: o.groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) });
          const offsetsSent = performance.now();
          committing = true;
          await txn.commit();
          const done = performance.now();
          for (const p of parts) {
            this.committedNext.set(`${p.topic}:${p.partition}`, p.next);
            if (p.state) o.state!.committed(p.state, changelogNext.get(p.partition));
            o.onCommitted(p.routed.result, (p.routeMs + done - started) / 1000);
          }
          o.logger.debug(
            { partitions: where(), records: parts.reduce((n, p) => n + p.records.length, 0), routeMs: ms(Math.max(...parts.map((p) => p.routeMs))), sendMs: ms(sent - started), offsetsMs: ms(offsetsSent - sent), commitMs: ms(done - offsetsSent) },
            'transaction committed',
          );
          return;
        } catch (error) {
          if (isFenced(error)) {
            const hint = o.fenceHint ?? { instanceIdSetting: 'the instance id setting', transactionTimeoutSetting: 'the transaction timeout' };
            throw new ProducerFencedError(
              `transactional id ${o.transactionalId} was fenced: another instance with the same id (${hint.instanceIdSetting}) took over, or the transaction outlived ${hint.transactionTimeoutSetting}; stopping`,
              { cause: error },
            );
          }
          // Leave the producer clean: abort an open transaction; when that is impossible (or
          // the commit's outcome is unknown) the next attempt re-initialises the producer.
          // The state changes of an aborted attempt never reached the local store (only a
          // commit hands them over): a retry sends the same changes again.
          if (txn && !committing && txn.isActive()) {
            try {
              await txn.abort();
              o.onTransactionFailed?.('aborted');
            } catch {
              this.producerNeedsReset = true;
            }
          } else {
            this.producerNeedsReset = true;
          }
          if (this.producerNeedsReset) o.onTransactionFailed?.('reset');
          last = error;
          if (o.signal.aborted) throw error; // shutting down: the next instance takes over from the committed offsets
          if (isRebalancing(error)) throw error; // kafkajs rejoins, then refetches the offsets
          if (!isTransient(error)) throw new PermanentError(`transaction for ${where()} failed: ${(error as Error).message}`, { cause: error });
          throw error;
        }
      },
      {
        policy: { initialMs: 200, maxMs: 10_000, multiplier: 2, maxAttempts: Infinity, ...o.retry },
        retriable: (error) => !o.signal.aborted && !isRebalancing(error) && isTransient(error),
        onRetry: (error, attempt, delayMs) => o.logger.warn({ err: error, partitions: where(), attempt, delayMs }, 'transaction failed; retrying it'),
        whileWaiting: async () => {
          if (o.signal.aborted) throw last; // shutting down while waiting
          try {
            await parts[0]?.heartbeat();
          } catch (beat) {
            if (isRebalancing(beat)) throw beat;
          }
        },
      },
    );
  }

  /** Routing is pure and per record: if it throws, that is a bug, and retrying would not help. */
  private async route(topic: string, partition: number, records: KafkaMessage[], state: StateTransaction | undefined): Promise<{ topicMessages: TopicMessages[]; result: R }> {
    try {
      return await this.options.route(
        records.map((message) => ({ topic, partition, message })),
        state,
      );
    } catch (error) {
      throw new PermanentError(`routing records of ${topic}[${partition}] from offset ${records[0]?.offset} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  private async resetProducer(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    await old?.disconnect().catch(() => undefined);
    this.producer = await this.connectProducer(); // completes or aborts the transaction left open
    this.producerNeedsReset = false;
    this.options.logger.info({ transactionalId: this.options.transactionalId }, 'transactional producer re-initialised');
  }

  /** The group's committed offsets of the parts' partitions, by `<topic>:<partition>`. */
  private async committedOffsets(parts: Part<R>[]): Promise<Map<string, bigint>> {
    const topics = [...new Set(parts.map((p) => p.topic))];
    const offsets = await this.options.admin.fetchOffsets({ groupId: this.options.groupId, topics });
    const out = new Map<string, bigint>();
    for (const t of offsets) for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(`${t.topic}:${p.partition}`, BigInt(p.offset));
    return out;
  }
}
