import type { EachBatchPayload, KafkaMessage, TopicMessages } from 'kafkajs';

/** Scripted faults of the stand-in: each list is consumed one entry a call. */
export interface FakeKafkaScript {
  /** Thrown by the next sendBatch calls, in order. */
  failSend?: Error[];
  /** Thrown by the next commits, in order (`undefined`: that commit succeeds). */
  failCommit?: (Error | undefined)[];
  /** Each commit waits for the next gate first (to hold a transaction open). */
  commitGates?: Promise<void>[];
}

/**
 * A kafkajs stand-in for the transactional loop's tests, as kafkajs tests its own runner:
 * it records what the loop asks of Kafka in `log` (`p<N>.` names the N-th producer) and
 * fails where the script says. `onCommit` sees a committed transaction's messages (a test's
 * changelog takes them there, as a real changelog topic only shows committed records).
 */
export function fakeTransactionalKafka(script: FakeKafkaScript = {}, onCommit?: (sent: TopicMessages[]) => void) {
  const log: string[] = [];
  let eachBatch: ((p: EachBatchPayload) => Promise<void>) | undefined;
  let runOptions: { partitionsConsumedConcurrently?: number } | undefined;
  let producers = 0;
  const producer = () => {
    const id = ++producers;
    return {
      connect: async () => void log.push(`p${id}.connect`),
      disconnect: async () => void log.push(`p${id}.disconnect`),
      transaction: async () => {
        let active = true;
        let attempted = false;
        const sent: TopicMessages[] = [];
        return {
          isActive: () => active,
          sendBatch: async ({ topicMessages }: { topicMessages: TopicMessages[] }) => {
            attempted = true;
            const f = script.failSend?.shift();
            if (f) throw f;
            sent.push(...topicMessages);
            log.push(`p${id}.send ${topicMessages.map((t) => `${t.topic}:${t.messages.length}`).join(',')}`);
            return [];
          },
          sendOffsets: async ({ topics }: { topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }) =>
            void log.push(`p${id}.offsets ${topics.flatMap((t) => t.partitions.map((p) => `${t.topic}[${p.partition}]=${p.offset}`)).join(',')}`),
          commit: async () => {
            await script.commitGates?.shift();
            const f = script.failCommit?.shift();
            if (f) {
              active = false;
              log.push(`p${id}.commit failed`);
              throw f;
            }
            active = false;
            onCommit?.(sent);
            log.push(`p${id}.commit`);
          },
          abort: async () => {
            active = false;
            // The empty transaction of the start (it only initialises the transactional id) is not logged.
            if (attempted) log.push(`p${id}.abort`);
          },
        };
      },
    };
  };
  const handlers = new Map<string, ((e: unknown) => void)[]>();
  const consumer = {
    events: { FETCH_START: 'f', HEARTBEAT: 'h', START_BATCH_PROCESS: 's', GROUP_JOIN: 'j', CRASH: 'c' },
    on: (event: string, fn: (e: unknown) => void) => void handlers.set(event, [...(handlers.get(event) ?? []), fn]),
    connect: async () => undefined,
    subscribe: async () => undefined,
    disconnect: async () => undefined,
    seek: ({ partition, offset }: { partition: number; offset: string }) => void log.push(`seek ${partition}@${offset}`),
    run: async (o: { eachBatch: (p: EachBatchPayload) => Promise<void>; partitionsConsumedConcurrently?: number }) => {
      runOptions = o;
      eachBatch = o.eachBatch;
    },
  };
  return {
    log,
    kafka: { producer, consumer: () => consumer } as never,
    /** The options the loop ran its consumer with. */
    runOptions: () => runOptions,
    /** The group's join (kafkajs' GROUP_JOIN event) with this member's assignment, topic -> partitions. */
    join: (memberAssignment: Record<string, number[]>) => {
      for (const fn of handlers.get('j') ?? []) fn({ payload: { memberId: 'member-1', memberAssignment } });
    },
    /** Hands one batch to the loop as kafkajs' fetch would. */
    eachBatch: (payload: EachBatchPayload) => eachBatch!(payload),
  };
}

/**
 * One fetched batch of a partition at the given offsets (value `v<offset>`, key from `key`),
 * recording the offsets the loop resolves in `resolved`.
 */
export function batchPayload(o: { topic: string; partition: number; offsets: number[]; key?: (offset: number) => Buffer | null; resolved?: string[] }): EachBatchPayload {
  const last = o.offsets[o.offsets.length - 1]!;
  const messages = o.offsets.map(
    (offset) => ({ offset: String(offset), key: o.key?.(offset) ?? null, value: Buffer.from(`v${offset}`), timestamp: '0', attributes: 0, headers: {} }) as KafkaMessage,
  );
  return {
    batch: { topic: o.topic, partition: o.partition, messages, highWatermark: String(last + 1), lastOffset: () => String(last) },
    resolveOffset: (offset: string) => void o.resolved?.push(offset),
    heartbeat: async () => undefined,
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
}
