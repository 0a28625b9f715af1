import type { Admin } from 'kafkajs';
import { PermanentError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  /** -1: the broker's default.replication.factor (1 locally, 3 on MSK). */
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}

/**
 * Creates the topics that do not exist yet (idempotent; existing ones are left as they
 * are, with a warning when they have fewer partitions than asked for: partitions are
 * never added behind an operator's back, since that moves keys between partitions).
 */
export async function ensureTopics(admin: Admin, specs: TopicSpec[], logger?: Logger): Promise<{ created: string[] }> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.numPartitions,
        replicationFactor: s.replicationFactor ?? -1,
        ...(s.configEntries ? { configEntries: s.configEntries } : {}),
      })),
    });
    logger?.info({ topics: missing.map((s) => `${s.topic} (${s.numPartitions} partitions)`) }, 'created topics');
  }
  const present = specs.filter((s) => existing.has(s.topic));
  if (present.length > 0) {
    const { topics } = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
    for (const t of topics) {
      const wanted = present.find((s) => s.topic === t.name)?.numPartitions ?? 0;
      if (t.partitions.length < wanted) {
        logger?.warn({ topic: t.name, partitions: t.partitions.length, wanted }, 'topic has fewer partitions than configured; left unchanged');
      }
    }
  }
  return { created: missing.map((s) => s.topic) };
}

export interface WaitForTopicOptions {
  signal?: AbortSignal;
  logger?: Logger;
  intervalMs?: number;
  /** Which component creates the topic and what to check, e.g. "is the Debezium connector applied? sluice connectors apply". */
  hint?: string;
  /** Give up after this long with an error that names the hint (default: wait until stopped). */
  timeoutMs?: number;
  /** Called once when the topic is missing at the first look (before waiting). */
  onWaiting?: () => void;
}

/**
 * Waits until a topic exists (one a producer such as Debezium creates), logging once while
 * it waits; with `timeoutMs`, fails naming the topic, the time and the hint.
 */
export async function waitForTopic(admin: Admin, topic: string, options: WaitForTopicOptions = {}): Promise<void> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let logged = false;
  while (!(await admin.listTopics()).includes(topic)) {
    if (options.signal?.aborted) throw new Error(`stopped while waiting for topic ${topic}`);
    if (Date.now() >= deadline) {
      throw new PermanentError(`topic ${topic} did not appear within ${Math.round(options.timeoutMs! / 1000)} s${options.hint ? `: ${options.hint}` : ''}`);
    }
    if (!logged) {
      options.logger?.warn({ topic }, `waiting for topic ${topic} to exist${options.hint ? ` (${options.hint})` : ''}`);
      options.onWaiting?.();
      logged = true;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 2000));
  }
}
