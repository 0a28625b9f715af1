import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { PermanentError } from '../../core/errors/errors.js';
import type { Logger } from '../../core/log/logger.js';

export interface PartitionOffset {
  partition: number;
  offset: string;
}

/** The end offsets of a topic now, or undefined when it does not exist yet (read it from its start). */
export async function endOffsets(admin: Admin, topic: string): Promise<PartitionOffset[] | undefined> {
  if (!(await admin.listTopics()).includes(topic)) return undefined;
  return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high }));
}

export interface ReadOptions {
  /** Where to start, per partition (the end offsets taken before writing); the start of the topic when absent. */
  from?: PartitionOffset[] | undefined;
  timeoutMs: number;
  /** The error when `timeoutMs` passes: what did not arrive, and what to check. */
  timeoutMessage: () => string;
  logger: Logger;
}

/**
 * Reads a topic (read_committed) a batch at a time until `onBatch` answers true, with a
 * throwaway consumer group that is deleted afterwards: `sluice lag` never lists it.
 */
export async function readUntil(kafka: Kafka, admin: Admin, topic: string, o: ReadOptions, onBatch: (messages: KafkaMessage[]) => boolean | Promise<boolean>): Promise<void> {
  const groupId = `sluice-demo-${randomUUID()}`;
  if (o.from) await admin.setOffsets({ groupId, topic, partitions: o.from });
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 250 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PermanentError(o.timeoutMessage())), o.timeoutMs);
      void consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            if (await onBatch(batch.messages)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        });
    });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch((error: Error) => o.logger.warn({ groupId, err: error }, 'could not delete the demo consumer group'));
  }
}
