import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { deleteGroup, waitForTopic } from './kafka.js';

/**
 * Reads a topic from the beginning (read_committed unless asked otherwise) until `done` holds and
 * then nothing new has arrived for `quietMs`: a duplicate or an unexpected record that
 * shows up just after the expected ones is still seen. On time it throws, or, with
 * `returnOnTimeout`, returns what it saw so the caller can count what is missing.
 */
export async function collectUntilQuiet(
  kafka: Kafka,
  topic: string,
  done: (messages: KafkaMessage[]) => boolean,
  options: { quietMs?: number; timeoutMs?: number; readUncommitted?: boolean; from?: { partition: number; offset: string }[]; returnOnTimeout?: boolean } = {},
): Promise<KafkaMessage[]> {
  const quietMs = options.quietMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 60_000;
  await waitForTopic(kafka, topic, timeoutMs);
  const groupId = `test-${randomUUID()}`;
  if (options.from) {
    // Start at given offsets (the partitions not named start at the beginning).
    const admin = kafka.admin();
    await admin.connect();
    await admin.setOffsets({ groupId, topic, partitions: options.from }).finally(() => admin.disconnect());
  }
  const consumer = kafka.consumer({ groupId, readUncommitted: options.readUncommitted ?? false, maxWaitTimeInMs: 250 });
  const seen: KafkaMessage[] = [];
  let last = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message);
        last = Date.now();
      },
    });
    const started = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      if (done(seen) && Date.now() - last >= quietMs) return seen;
      if (Date.now() - started > timeoutMs) {
        if (options.returnOnTimeout) return seen;
        throw new Error(`${topic}: condition not met within ${timeoutMs} ms (${seen.length} messages seen)`);
      }
    }
  } finally {
    await consumer.disconnect();
    await deleteGroup(kafka, groupId);
  }
}

/**
 * Commits the group's offsets at the topic's current end, so a processor joining it
 * starts with what comes next instead of the shared topic's whole history.
 */
export async function startGroupAtEnd(kafka: Kafka, groupId: string, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.setOffsets({ groupId, topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })) });
  } finally {
    await admin.disconnect();
  }
}
