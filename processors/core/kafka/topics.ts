import kafkajs, { type Admin } from 'kafkajs';
import { isUnavailable, PermanentError } from '../errors/errors.js';
import { sleep } from '../errors/retry.js';
import type { Logger } from '../log/logger.js';
import { describeTopicSpec } from './topic-plan.js';

export interface TopicSpec {
  topic: string;
  /** -1: the broker's num.partitions. */
  numPartitions: number;
  /** -1: the broker's default.replication.factor (1 locally, 3 on MSK). */
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
  /**
   * Configs the owner cannot work without (cleanup.policy=compact of a topic a view is
   * rebuilt from): an existing topic that differs is an error, not a warning.
   */
  requiredConfigs?: string[];
}

/** What an existing topic looks like beside its spec. */
export interface TopicState {
  topic: string;
  exists: boolean;
  partitions?: number;
  replicationFactor?: number;
  /** The spec's configs as the topic has them (undefined: could not be read, e.g. no DescribeConfigs ACL). */
  configs?: Record<string, string>;
  /** Human-readable differences from the spec (`3 partitions, planned 6`). */
  differences: string[];
  /** Differences the owner cannot run with (a required config). */
  errors: string[];
}

const AUTHORIZATION = new Set(['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED']);

/** The Kafka error types in an error and what it wraps (kafkajs aggregates one per topic). */
export function kafkaErrorTypes(error: unknown, seen = new Set<unknown>()): string[] {
  if (!error || typeof error !== 'object' || seen.has(error)) return [];
  seen.add(error);
  const e = error as { type?: unknown; errors?: unknown; cause?: unknown; originalError?: unknown };
  return [
    ...(typeof e.type === 'string' ? [e.type] : []),
    ...(Array.isArray(e.errors) ? e.errors.flatMap((x) => kafkaErrorTypes(x, seen)) : []),
    ...kafkaErrorTypes(e.cause, seen),
    ...kafkaErrorTypes(e.originalError, seen),
  ];
}

/** Whether a Kafka call failed for want of an ACL (topic, cluster or group authorization). */
export function isAuthorizationError(error: unknown): boolean {
  return kafkaErrorTypes(error).some((t) => AUTHORIZATION.has(t));
}

/**
 * Creates the topics that do not exist yet (idempotent, and safe when several instances
 * start at once) and checks the ones that do. An existing topic is never changed behind
 * an operator's back: fewer partitions or other configs than planned are a warning (adding
 * partitions moves keys), a different required config (cleanup.policy of a compacted
 * topic) is an error. When this principal may not create topics (no CreateTopics ACL, as
 * is usual on MSK), a missing topic stops the caller with one line naming it and the fix.
 */
export async function ensureTopics(admin: Admin, specs: TopicSpec[], logger?: Logger): Promise<{ created: string[]; states: TopicState[] }> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions,
          replicationFactor: s.replicationFactor ?? -1,
          ...(s.configEntries?.length ? { configEntries: s.configEntries } : {}),
        })),
      });
    } catch (error) {
      throw createFailure(missing, error);
    }
    logger?.info({ topics: missing.map((s) => `${s.topic} (${describeTopicSpec(s)})`) }, 'created topics');
  }
  const states = await inspectTopics(admin, specs.filter((s) => existing.has(s.topic)), logger);
  for (const st of states) {
    if (st.differences.length > 0) logger?.warn({ topic: st.topic, differences: st.differences }, `topic ${st.topic} differs from the plan (left unchanged): ${st.differences.join('; ')}`);
  }
  const broken = states.filter((st) => st.errors.length > 0);
  if (broken.length > 0) {
    throw new PermanentError(
      broken.map((st) => `topic ${st.topic} ${st.errors.join(' and ')}; it must be changed (kafka-configs --alter) or recreated: see \`sluice topics plan\``).join('\n'),
    );
  }
  return { created: missing.map((s) => s.topic), states };
}

/** A failed CreateTopics as the one line an operator needs (permanent: retrying will not help). */
function createFailure(missing: TopicSpec[], error: unknown): Error {
  const types = kafkaErrorTypes(error);
  const names = missing.map((s) => `${s.topic} (${describeTopicSpec(s)})`).join(', ');
  const plural = missing.length > 1;
  if (types.some((t) => AUTHORIZATION.has(t))) {
    return new PermanentError(
      `topic${plural ? 's' : ''} ${missing.map((s) => s.topic).join(', ')} ${plural ? 'do' : 'does'} not exist and this principal may not create ${plural ? 'them' : 'it'}: create ${plural ? 'them' : 'it'} with \`sluice topics apply\` or ask for ${plural ? 'them' : 'it'} (${missing.map((s) => (plural ? `${s.topic}: ` : '') + describeTopicSpec(s)).join('; ')})`,
      { cause: error },
    );
  }
  const permanent = ['INVALID_REPLICATION_FACTOR', 'INVALID_PARTITIONS', 'INVALID_CONFIG', 'POLICY_VIOLATION', 'INVALID_TOPIC_EXCEPTION', 'INVALID_REQUEST'];
  const bad = types.find((t) => permanent.includes(t));
  if (bad) return new PermanentError(`the cluster refused to create ${names}: ${bad} (${(error as Error).message}); fix the topic settings (\`sluice topics plan\`)`, { cause: error });
  return error as Error;
}

/**
 * Compares existing topics with their specs: partitions (fewer than planned), replication
 * factor (when one is planned) and each planned config. Configs that cannot be read (no
 * DescribeConfigs ACL) are left unchecked, with a warning.
 */
export async function inspectTopics(admin: Admin, specs: TopicSpec[], logger?: Logger): Promise<TopicState[]> {
  if (specs.length === 0) return [];
  const existing = new Set(await admin.listTopics());
  const present = specs.filter((s) => existing.has(s.topic));
  const states = new Map<string, TopicState>(specs.map((s) => [s.topic, { topic: s.topic, exists: existing.has(s.topic), differences: [], errors: [] }]));
  if (present.length === 0) return [...states.values()];
  const { topics } = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
  for (const t of topics) {
    const st = states.get(t.name)!;
    st.partitions = t.partitions.length;
    st.replicationFactor = Math.min(...t.partitions.map((p) => p.replicas.length));
  }
  let configs: Map<string, Record<string, string>> | undefined;
  try {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: present.map((s) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name: s.topic })) });
    configs = new Map(described.resources.map((r) => [r.resourceName, Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue]))]));
  } catch (error) {
    if (!isAuthorizationError(error)) throw error;
    logger?.warn({ topics: present.map((s) => s.topic) }, 'this principal may not describe topic configs (no DescribeConfigs ACL): their configs are not checked');
  }
  for (const s of present) {
    const st = states.get(s.topic)!;
    if (s.numPartitions > 0 && (st.partitions ?? 0) < s.numPartitions) st.differences.push(`${st.partitions} partitions, planned ${s.numPartitions} (partitions are only added by hand: it moves keys)`);
    if ((s.replicationFactor ?? -1) > 0 && (st.replicationFactor ?? 0) !== s.replicationFactor) st.differences.push(`replication factor ${st.replicationFactor}, planned ${s.replicationFactor}`);
    const actual = configs?.get(s.topic);
    if (!actual) continue;
    st.configs = {};
    for (const e of s.configEntries ?? []) {
      const value = actual[e.name];
      st.configs[e.name] = value ?? '';
      if (value === e.value) continue;
      const text = `has ${e.name}=${value ?? '(unset)'}, planned ${e.value}`;
      if (s.requiredConfigs?.includes(e.name)) st.errors.push(text);
      else st.differences.push(text);
    }
  }
  return [...states.values()];
}

export interface TopicWaitOptions {
  signal?: AbortSignal;
  logger?: Logger;
  /** Between two looks at the topic list (default 2 s). */
  intervalMs?: number;
  /** The component that creates the topic, named in every line: "the Debezium connector (Kafka Connect)". */
  createdBy?: string;
  /** What to check when it does not come, as an imperative: "check the connector with `sluice connectors status`". */
  hint?: string;
  /** After this long a warning names the component to check, and again as often (default 60 s). */
  warnAfterMs?: number;
  /** Give up after this long with a TopicMissingError naming the component (default: wait for ever, as a processor does). */
  timeoutMs?: number;
  /** Called with what it waits for, when it starts waiting and at each warning (readiness shows it). */
  onWaiting?: (message: string) => void;
}

/** The options' earlier name. */
export type WaitForTopicOptions = TopicWaitOptions;

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
  const check = options.hint ? `; ${options.hint}` : '';
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

/** Kafka topic names: 1-249 of letters, digits, `.`, `_` and `-`. */
export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
export const TOPIC_FIX = 'topic names are 1-249 letters, digits, ".", "_" and "-"';
