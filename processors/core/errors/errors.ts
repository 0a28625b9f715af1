/**
 * Typed errors that say whether a failure is worth retrying. Transient faults (a broker
 * or S3 away, throttling) block and retry; permanent ones (bad data, bad config) go to
 * a DLQ or stop the process with a message that names the fix.
 */
export abstract class SluiceError extends Error {
  abstract readonly retriable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A fault that may pass: the caller should back off and try again. */
export class TransientError extends SluiceError {
  readonly retriable = true;
}

/** A fault that will not pass by retrying: bad input, a missing resource, a contract break. */
export class PermanentError extends SluiceError {
  readonly retriable = false;
}

/** A configuration problem: names the source (env var or file path), the setting and the fix. */
export class ConfigError extends PermanentError {
  constructor(
    readonly problems: readonly ConfigProblem[],
  ) {
    super(
      'invalid configuration:\n' +
        problems.map((p) => `  - ${p.source}: ${p.setting}: ${p.message}. Fix: ${p.fix}`).join('\n'),
    );
  }
}

export interface ConfigProblem {
  /** Where the bad value came from: `env SLUICE_KAFKA_BROKERS` or `file /etc/sluice.yaml`. */
  source: string;
  /** The setting's path, e.g. `kafka.brokers`. */
  setting: string;
  message: string;
  fix: string;
}

/** Whether an unknown error is worth retrying: ours say so; network-level ones are. */
export function isRetriable(error: unknown): boolean {
  if (error instanceof SluiceError) return error.retriable;
  const e = error as { retriable?: unknown; code?: unknown; name?: unknown; $retryable?: unknown } | null;
  if (e && typeof e.retriable === 'boolean') return e.retriable; // kafkajs errors carry this
  if (e && e.$retryable) return true; // AWS SDK v3 marks throttling and transient errors
  const code = typeof e?.code === 'string' ? e.code : '';
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET'].includes(code);
}

/** kafkajs errors no retry changes: a misuse, a refused login, a broker too old. */
const KAFKAJS_PERMANENT = new Set(['KafkaJSInvalidArgument', 'KafkaJSNotImplemented', 'KafkaJSSASLAuthenticationError', 'KafkaJSServerDoesNotSupportApiKey']);
/** Broker answers that a setting, a permission or the data must change, not time. */
const KAFKA_PERMANENT_TYPES = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'UNSUPPORTED_VERSION',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'INVALID_CONFIG',
  'POLICY_VIOLATION',
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TRANSACTION_TIMEOUT',
]);
/** This member's generation is over: its partitions may be another member's now. */
const KAFKA_REBALANCE_TYPES = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR_FOR_GROUP', 'FENCED_INSTANCE_ID']);
/** Another producer with the same transactional id took over. */
const KAFKA_FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', 'TRANSACTION_COORDINATOR_FENCED']);
const PRODUCER_FENCED_CODE = 90; // not in kafkajs's table

interface KafkaErrorLike {
  name?: unknown;
  type?: unknown;
  code?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

/** The error and what it wraps (kafkajs wraps the cause of exhausted retries in `originalError`), at most 5 deep. */
export function errorChain(error: unknown): KafkaErrorLike[] {
  const out: KafkaErrorLike[] = [];
  for (let e = error as KafkaErrorLike | undefined, i = 0; e && typeof e === 'object' && i < 5; e = (e.cause ?? e.originalError) as KafkaErrorLike | undefined, i++) out.push(e);
  return out;
}

/**
 * A consumer-group error saying this member's generation is over (a commit or a heartbeat
 * refused because the group rebalances): stop, let kafkajs rejoin, read again from the
 * committed offsets. Never worth retrying in place.
 */
export function isRebalancing(error: unknown): boolean {
  return errorChain(error).some((e) => typeof e.type === 'string' && KAFKA_REBALANCE_TYPES.has(e.type));
}

/** A transactional producer fenced by a newer one with the same id: this instance must stop. */
export function isFenced(error: unknown): boolean {
  return errorChain(error).some((e) => (typeof e.type === 'string' && KAFKA_FENCED_TYPES.has(e.type)) || e.code === PRODUCER_FENCED_CODE);
}

/**
 * Whether a failure to reach a dependency (Kafka, the registry, S3, PostgreSQL) means
 * "not there yet, wait": a processor started before its servers blocks on these. kafkajs
 * gives up on a broker that is away with KafkaJSNumberOfRetriesExceeded, which it marks
 * non-retriable; for a processor that must wait, any kafkajs error is worth waiting out
 * except a misuse, a refused login, a missing permission or data the broker refuses.
 * Sluice's own errors say it. Fencing and rebalancing are not "unavailable": callers
 * check them first (isFenced, isRebalancing).
 */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof SluiceError) return error.retriable;
  for (const e of errorChain(error)) {
    if (typeof e.name === 'string' && KAFKAJS_PERMANENT.has(e.name)) return false;
    if (typeof e.type === 'string' && KAFKA_PERMANENT_TYPES.has(e.type)) return false;
  }
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown };
  if (typeof name === 'string' && name.startsWith('KafkaJS')) return true;
  // PostgreSQL starting, shutting down, out of connections, or the connection broke.
  if (isPostgresFault(error)) return true;
  return isRetriable(error);
}

/**
 * PostgreSQL SQLSTATEs that pass with time: 08 connection exceptions, 57P01-57P03 (admin
 * shutdown, crash shutdown, cannot connect now: a restart), 53 insufficient resources (too
 * many connections, out of memory or disk), 40001 and 40P01 (serialization failure,
 * deadlock: the transaction is run again), 58030 (I/O error).
 */
const PG_TRANSIENT_SQLSTATE = /^(08\d{3}|57P0[1-3]|53\d{3}|40001|40P01|58030)$/;
/** What pg and pg-pool throw, without a SQLSTATE, when the connection breaks or cannot be made. */
const PG_CONNECTION_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|ECONNRESET|ECONNREFUSED/i;

function isPostgresFault(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e && typeof e.code === 'string' && PG_TRANSIENT_SQLSTATE.test(e.code)) return true;
  return !!e && typeof e.message === 'string' && PG_CONNECTION_MESSAGE.test(e.message);
}

/**
 * Whether a PostgreSQL failure is worth waiting out and running again (the server
 * restarting, a broken connection, overload, a serialization conflict), as opposed to a
 * fault of the statement or the data (a constraint, a bad value, a missing table,
 * permissions). Every Postgres retry decides with this: the warehouse output's writer, the
 * ingest API's 503-or-500.
 */
export function isPostgresTransient(error: unknown): boolean {
  if (error instanceof SluiceError) return error.retriable;
  return isPostgresFault(error) || isRetriable(error);
}
