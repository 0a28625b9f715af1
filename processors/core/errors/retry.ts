import { isRetriable } from './errors.js';

export interface RetryPolicy {
  /** First delay in ms. */
  initialMs: number;
  /** Upper bound for one delay in ms. */
  maxMs: number;
  /** Growth factor between attempts. */
  multiplier: number;
  /** Give up after this many attempts; Infinity blocks until success (sinks do that). */
  maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 200, maxMs: 30_000, multiplier: 2, maxAttempts: 8 };

/**
 * A sink's wait for a dependency it cannot do without (Kafka for the DLQ and commits, S3,
 * the warehouse, the registry): forever, at most 5 s apart. Giving up would drop data; the
 * caller stops it (`stillWanted`, `signal`, an error of `whileWaiting`).
 */
export const BLOCKING_RETRY: RetryPolicy = { initialMs: 250, maxMs: 5_000, multiplier: 2, maxAttempts: Infinity };

/** Thrown by withRetry when `stillWanted` turns false or `signal` aborts (unless `abandoned` gives the error). */
export class RetryAbandonedError extends Error {}

/** Full-jitter exponential backoff: a random delay in [0, min(max, initial * mult^attempt)]. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** attempt);
  return Math.round(random() * ceiling);
}

export interface RetryOptions {
  policy?: Partial<RetryPolicy>;
  /** Decides whether an error is worth another attempt; default: `isRetriable`. */
  retriable?: (error: unknown) => boolean;
  /** Called before each wait, for logs and metrics. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Aborting stops the wait at once and abandons the retry (the pending attempt's error is the cause). */
  signal?: AbortSignal | undefined;
  /** Checked before every attempt: false abandons (the partition moved, the process stops). */
  stillWanted?: () => boolean;
  /** Called about every second while waiting (a consumer heartbeat): its error ends the retry. */
  whileWaiting?: () => Promise<void>;
  /** The error thrown when abandoned; default RetryAbandonedError. */
  abandoned?: (cause: unknown) => Error;
  /** The least delay between attempts in ms (full jitter can draw 0). */
  minDelayMs?: number;
}

/**
 * Runs `fn` until it succeeds, a non-retriable error is thrown, attempts run out, or the
 * caller abandons it (`stillWanted`, `signal`). The one retry loop of Sluice: every wait on
 * a dependency goes through here, with its policy and its classification (`retriable`).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy = { ...DEFAULT_RETRY, ...options.policy };
  const retriable = options.retriable ?? isRetriable;
  const abandon = (cause: unknown): Error => options.abandoned?.(cause) ?? new RetryAbandonedError('retry abandoned', { cause });
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    if ((options.stillWanted && !options.stillWanted()) || options.signal?.aborted) throw abandon(last);
    try {
      return await fn(attempt);
    } catch (error) {
      last = error;
      if (options.signal?.aborted) throw abandon(error);
      if (!retriable(error) || attempt + 1 >= policy.maxAttempts) throw error;
      const delay = Math.max(options.minDelayMs ?? 0, backoffDelay(policy, attempt));
      options.onRetry?.(error, attempt + 1, delay);
      if (!options.whileWaiting) await sleep(delay, options.signal);
      else {
        const until = Date.now() + delay;
        while (Date.now() < until && !options.signal?.aborted) {
          await sleep(Math.min(1000, until - Date.now()), options.signal);
          await options.whileWaiting();
        }
      }
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
