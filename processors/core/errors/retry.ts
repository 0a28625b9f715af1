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
  signal?: AbortSignal;
}

/** Runs `fn` until it succeeds, a non-retriable error is thrown, or attempts run out. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy = { ...DEFAULT_RETRY, ...options.policy };
  const retriable = options.retriable ?? isRetriable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!retriable(error) || attempt + 1 >= policy.maxAttempts || options.signal?.aborted) throw error;
      const delay = backoffDelay(policy, attempt);
      options.onRetry?.(error, attempt + 1, delay);
      await sleep(delay, options.signal);
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
