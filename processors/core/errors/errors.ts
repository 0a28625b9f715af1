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
