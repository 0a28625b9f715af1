import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '../log/logger.js';

/**
 * Where a store's changelog is read from on restore; the Kafka one below, a fake in the
 * unit tests.
 */
export interface ChangelogSource {
  /** The partition's first offset and its end (the offset the next record gets). */
  bounds(partition: number): Promise<{ low: bigint; high: bigint }>;
  /**
   * Reads `partition` from `from` until its position reaches `to` (control records
   * count), handing each batch of data records to `apply` in order; `progress` is called
   * between batches (the caller heartbeats its own group there).
   */
  read(partition: number, from: bigint, to: bigint, apply: (records: KafkaMessage[]) => void, progress: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** The restore consumer's longest wait for data (see connect). */
export const RESTORE_MAX_WAIT_MS = 100;

interface Job {
  position: bigint;
  to: bigint;
  apply: (records: KafkaMessage[]) => void;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Reads changelog partitions with one consumer of its own (read_committed, so aborted
 * state changes are never restored). kafkajs 2.2 has no manual assignment: the consumer
 * joins a group of its own (a unique id, no offsets ever committed), gets every changelog
 * partition, keeps them all paused, and reads one by seeking it to the start offset and
 * resuming it until the end offset is passed. It is created at the first restore and
 * kept for the next ones (one group join per process).
 */
export class KafkaChangelogSource implements ChangelogSource {
  private consumer: Consumer | undefined;
  private starting: Promise<Consumer> | undefined;
  private partitions: number[] = [];
  private readonly jobs = new Map<number, Job>();

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly topic: string,
    /** The restore consumer's group id prefix; a random suffix makes it unique. */
    private readonly groupPrefix: string,
    private readonly logger: Logger,
  ) {}

  async bounds(partition: number): Promise<{ low: bigint; high: bigint }> {
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    const p = offsets.find((o) => o.partition === partition);
    if (!p) throw new Error(`changelog topic ${this.topic} has no partition ${partition}: it needs as many partitions as the input topic`);
    return { low: BigInt(p.low), high: BigInt(p.high) };
  }

  async read(partition: number, from: bigint, to: bigint, apply: (records: KafkaMessage[]) => void, progress: () => Promise<void>): Promise<void> {
    if (from >= to) return;
    const consumer = await this.start();
    const done = new Promise<void>((resolve, reject) => this.jobs.set(partition, { position: from, to, apply, resolve, reject }));
    consumer.seek({ topic: this.topic, partition, offset: from.toString() });
    consumer.resume([{ topic: this.topic, partitions: [partition] }]);
    let finished = false;
    void done.then(
      () => void (finished = true),
      () => void (finished = true),
    );
    while (!finished) {
      await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
      if (!finished) await progress();
    }
    await done;
  }

  async close(): Promise<void> {
    for (const job of this.jobs.values()) job.reject(new Error('changelog reader closed'));
    this.jobs.clear();
    const c = this.consumer ?? (await this.starting?.catch(() => undefined));
    this.consumer = undefined;
    this.starting = undefined;
    await c?.disconnect();
  }

  private start(): Promise<Consumer> {
    this.starting ??= this.connect().then(
      (c) => (this.consumer = c),
      (error) => {
        this.starting = undefined;
        throw error;
      },
    );
    return this.starting;
  }

  private async connect(): Promise<Consumer> {
    const groupId = `${this.groupPrefix}-${randomUUID().slice(0, 8)}`;
    // maxWaitTimeInMs: with every partition paused (between restores) kafkajs sleeps this
    // long before it looks again, and a resumed partition waits for that sleep or for the
    // broker's long poll of the others: kafkajs' 5 s default made each partition's restore
    // cost ~5 s however few its records (~30 s for 6 partitions). 100 ms keeps the idle
    // loop cheap (10 empty turns a second, no request while everything is paused).
    const consumer = this.kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTimeInMs: RESTORE_MAX_WAIT_MS });
    const joined = new Promise<void>((resolve) => {
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        this.partitions = (e.payload.memberAssignment[this.topic] ?? []).slice();
        resolve();
      });
    });
    // A batch that held only control records (a transaction's commit marker) reaches no
    // eachBatch call, yet moves the position past the end.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      this.advance(partition, BigInt(lastOffset) + 1n);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        const job = this.jobs.get(batch.partition);
        if (!job) return; // not being restored (fetched before the pause took effect)
        const records = batch.messages.filter((m) => BigInt(m.offset) >= job.position);
        try {
          if (records.length > 0) job.apply(records);
        } catch (error) {
          this.jobs.delete(batch.partition);
          this.pause(batch.partition);
          job.reject(error);
          return;
        }
        resolveOffset(batch.lastOffset());
        this.advance(batch.partition, BigInt(batch.lastOffset()) + 1n);
      },
    });
    await joined;
    consumer.pause([{ topic: this.topic, partitions: this.partitions }]);
    this.logger.debug({ topic: this.topic, groupId, partitions: this.partitions.length }, 'changelog restore consumer ready');
    return consumer;
  }

  private advance(partition: number, position: bigint): void {
    const job = this.jobs.get(partition);
    if (!job || position <= job.position) return;
    job.position = position;
    if (position >= job.to) {
      this.jobs.delete(partition);
      this.pause(partition);
      job.resolve();
    }
  }

  private pause(partition: number): void {
    this.consumer?.pause([{ topic: this.topic, partitions: [partition] }]);
  }
}
