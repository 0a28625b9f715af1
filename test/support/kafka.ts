import { randomUUID } from 'node:crypto';
import kafkajs, { type Kafka, type KafkaMessage } from 'kafkajs';
import { ensureTopics, type TopicSpec } from '../../processors/core/kafka/topics.js';

const { AssignerProtocol } = kafkajs;

/**
 * Collects messages of a topic, from the beginning, with a throwaway consumer group, until
 * `done` says the collection is complete or the timeout passes (then it throws).
 */
export async function collect(
  kafka: Kafka,
  topic: string,
  done: (messages: KafkaMessage[]) => boolean,
  timeoutMs = 30_000,
  from?: PartitionOffset[],
): Promise<KafkaMessage[]> {
  await waitForTopic(kafka, topic, timeoutMs);
  const seen: KafkaMessage[] = [];
  // `done` is asked once a batch, not once a message: a predicate that scans what was seen
  // would otherwise make reading a long shared topic quadratic.
  await readFromStart(kafka, topic, timeoutMs, () => `condition not met within ${timeoutMs} ms (${seen.length} messages seen)`, (_, messages) => {
    seen.push(...messages);
    return done(seen);
  }, from);
  return seen;
}

export interface PartitionOffset {
  partition: number;
  offset: string;
}

/**
 * A shared topic's end offsets now (undefined when it does not exist yet): a test takes them
 * before it writes and reads from there, so it passes on a stack that already holds data.
 */
export async function endOffsetsOf(kafka: Kafka, topic: string): Promise<PartitionOffset[] | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return undefined;
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high }));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads a topic from the beginning, or from `from` (per partition, e.g. endOffsetsOf before
 * the test wrote), read_committed with a throwaway consumer group, a batch at a time, until
 * `onBatch` answers true; after `timeoutMs` it throws with `progress()`.
 */
export async function readFromStart(
  kafka: Kafka,
  topic: string,
  timeoutMs: number,
  progress: () => string,
  onBatch: (partition: number, messages: KafkaMessage[]) => boolean,
  from?: PartitionOffset[],
): Promise<void> {
  const groupId = `test-read-${randomUUID()}`;
  if (from) {
    const admin = kafka.admin();
    await admin.connect();
    await admin.setOffsets({ groupId, topic, partitions: from }).finally(() => admin.disconnect());
  }
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 250 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${topic}: ${progress()}`)), timeoutMs);
      void consumer
        .run({
          eachBatch: async ({ batch }) => {
            if (onBatch(batch.partition, batch.messages)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    await deleteGroup(kafka, groupId);
  }
}

/** Deletes a throwaway consumer group, so `sluice lag` on a developer's stack lists no leftovers (best effort). */
export async function deleteGroup(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin
    .deleteGroups([groupId])
    .catch(() => undefined)
    .finally(() => admin.disconnect());
}

/** Waits until the topic exists (a producer such as Debezium creates it on first write). */
export async function waitForTopic(kafka: Kafka, topic: string, timeoutMs: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    while (!(await admin.listTopics()).includes(topic)) {
      if (Date.now() > deadline) throw new Error(`topic ${topic} did not appear within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates topics a test produces to (the local broker, like MSK, does not auto-create
 * them): core's ensureTopics, so an existing one is left as it is.
 */
export async function createTopics(kafka: Kafka, specs: TopicSpec[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, specs);
  } finally {
    await admin.disconnect();
  }
}

/** The partitions of `topic` each live member of a consumer group holds, with its client id (none while it rebalances). */
export async function groupAssignment(kafka: Kafka, groupId: string, topic: string): Promise<{ state: string; members: { clientId: string; partitions: number[] }[] }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    const g = groups[0];
    if (!g) return { state: 'Dead', members: [] };
    const members = g.members.map((m) => {
      const decoded = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
      return { clientId: m.clientId, partitions: [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b) };
    });
    return { state: g.state, members };
  } finally {
    await admin.disconnect();
  }
}
