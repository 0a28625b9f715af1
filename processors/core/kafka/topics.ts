import kafkajs, { type Admin } from 'kafkajs';
import { PermanentError } from '../errors/errors.js';
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
