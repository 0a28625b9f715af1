import type { Kafka, KafkaMessage } from 'kafkajs';

/**
 * Reads a topic from given offsets up to given end offsets (taken before the read), a batch
 * at a time in order per partition, and resolves when every partition has reached its end.
 * "Reached" counts transaction markers too (kafkajs never hands a marker-only batch to
 * eachBatch, but reports it as processed), so a transactional topic ends like any other.
 * An error in the handler or a crash of the consumer rejects at once; so does no progress
 * at all for `stallMs` while nothing is being handled.
 */
export async function readRange(
  kafka: Kafka,
  o: {
    topic: string;
    groupId: string;
    /** Start offset per partition (partitions absent start at the beginning). */
    from: ReadonlyMap<number, bigint>;
    /** Exclusive end per partition; partitions absent are not read. */
    ends: ReadonlyMap<number, bigint>;
    stallMs?: number;
  },
  handle: (partition: number, messages: KafkaMessage[]) => Promise<void>,
): Promise<void> {
  const remaining = new Map([...o.ends].filter(([p, end]) => (o.from.get(p) ?? 0n) < end));
  if (remaining.size === 0) return;
  const consumer = kafka.consumer({ groupId: o.groupId, maxWaitTimeInMs: 200, readUncommitted: false });
  await consumer.connect();
  let fail!: (error: Error) => void;
  let finish!: () => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let busy = false;
  let lastProgress = Date.now();
  const reached = (partition: number, lastOffset: string) => {
    lastProgress = Date.now();
    const end = remaining.get(partition);
    if (end !== undefined && BigInt(lastOffset) + 1n >= end) remaining.delete(partition);
    if (remaining.size === 0) finish();
  };
  const stallMs = o.stallMs ?? 60_000;
  const watchdog = setInterval(() => {
    if (!busy && Date.now() - lastProgress > stallMs) fail(new Error(`${o.topic}: no progress for ${stallMs / 1000} s with ${remaining.size} partition(s) short of their end`));
  }, 1000);
  try {
    consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
    // Marker-only (and fully filtered) batches never reach eachBatch, but they move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => reached(e.payload.partition, e.payload.lastOffset));
    let seeked = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      lastProgress = Date.now();
      if (seeked) return;
      seeked = true;
      for (const [partition, offset] of o.from) if (remaining.has(partition)) consumer.seek({ topic: o.topic, partition, offset: offset.toString() });
    });
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = remaining.get(batch.partition);
        if (end === undefined) return;
        const start = o.from.get(batch.partition) ?? 0n;
        const messages = batch.messages.filter((m) => BigInt(m.offset) >= start && BigInt(m.offset) < end);
        busy = true;
        try {
          if (messages.length > 0) await handle(batch.partition, messages);
        } catch (error) {
          fail(error as Error);
          throw error;
        } finally {
          busy = false;
          lastProgress = Date.now();
        }
      },
    });
    await done;
  } finally {
    clearInterval(watchdog);
    await consumer.disconnect();
  }
}
