import type { Admin } from 'kafkajs';
import { isUnavailable, PermanentError } from '../errors/errors.js';
import { sleep } from '../errors/retry.js';
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

export interface TopicWaitOptions {
  signal?: AbortSignal;
  logger?: Logger;
  /** Between two looks at the topic list (default 2 s). */
  intervalMs?: number;
  /** The component that creates the topic, named in every line: "the Debezium connector (Kafka Connect)". */
  createdBy?: string;
  /** What to check or run when it does not come: "sluice connectors status". */
  hint?: string;
  /** After this long a warning names the component to check, and again as often (default 60 s). */
  warnAfterMs?: number;
  /** Give up after this long with a TopicMissingError naming the component (default: wait for ever, as a processor does). */
  timeoutMs?: number;
  /** Called with what it waits for, when it starts waiting and at each warning (readiness shows it). */
  onWaiting?: (message: string) => void;
}

/** A topic another component should have created did not appear in time. */
export class TopicMissingError extends PermanentError {
  constructor(
    readonly topic: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Waits until a topic exists (one another component creates: Debezium at its first change,
 * the normalizer at its start), saying what it waits for: one line when the wait starts,
 * naming the topic and its creator, then a warning every `warnAfterMs` naming the component
 * to check; a broker that is away meanwhile is waited out too. With `timeoutMs`, it gives
 * up with a TopicMissingError that names the creator and the check.
 */
export async function waitForTopic(admin: Admin, topic: string, options: TopicWaitOptions = {}): Promise<void> {
  const started = Date.now();
  const warnAfterMs = options.warnAfterMs ?? 60_000;
  const creator = options.createdBy ? ` (created by ${options.createdBy})` : '';
  const check = options.hint ? `; check ${options.hint}` : '';
  let nextWarn = started + warnAfterMs;
  let announced = false;
  for (;;) {
    let reason = 'it does not exist yet';
    try {
      if ((await admin.listTopics()).includes(topic)) {
        if (announced) options.logger?.info({ topic, waitedS: Math.round((Date.now() - started) / 1000) }, `topic ${topic} exists`);
        return;
      }
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      reason = `Kafka does not answer: ${(error as Error).message}`;
    }
    if (options.signal?.aborted) throw new Error(`stopped while waiting for topic ${topic}`);
    const now = Date.now();
    const waitedS = Math.round((now - started) / 1000);
    if (options.timeoutMs !== undefined && now - started >= options.timeoutMs) {
      throw new TopicMissingError(topic, `topic ${topic} did not appear within ${waitedS} s${creator}${check}`);
    }
    if (!announced) {
      announced = true;
      const message = `waiting for topic ${topic}${creator}`;
      options.logger?.info({ topic, reason, ...(options.createdBy ? { createdBy: options.createdBy } : {}) }, message);
      options.onWaiting?.(message);
    } else if (now >= nextWarn) {
      nextWarn = now + warnAfterMs;
      const message = `topic ${topic} still missing after ${waitedS} s${creator}${check}`;
      options.logger?.warn({ topic, waitedS, reason, ...(options.hint ? { check: options.hint } : {}) }, message);
      options.onWaiting?.(message);
    }
    await sleep(options.intervalMs ?? 2000, options.signal);
  }
}
