import type { Admin } from 'kafkajs';
import { isUnavailable, PermanentError } from '../errors/errors.js';
import { withRetry, type RetryPolicy } from '../errors/retry.js';
import type { ReadinessCheck } from '../http/health-server.js';
import { waitForTopic, type TopicWaitOptions } from '../kafka/topics.js';
import type { Logger } from '../log/logger.js';

/**
 * A processor's start when its servers are not there yet: Kafka, the registry, S3 or
 * PostgreSQL may be down or still starting (a compose file, a node reboot, an MSK
 * maintenance), and a topic another component creates may not exist yet. The processor
 * then waits and retries with a log line naming what it waits for, instead of exiting,
 * and /readyz answers what it is waiting for until it consumes.
 */

/**
 * Retries of a kafkajs admin used at start: kafkajs's default (10 retries) spends about two
 * minutes on a broker that is down before the caller hears of it; with few, the caller's
 * wait logs what it waits for within seconds and backs off itself.
 */
export const FAIL_FAST_RETRY = { retries: 1, initialRetryTime: 300, maxRetryTime: 2000 };

/** An endpoint as logs may show it: no user info, no query string. */
export function endpointName(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Thrown when a dependency or a topic did not come within the configured startup timeout. */
export class StartupTimeoutError extends PermanentError {}

export interface DependencyWaitOptions {
  logger: Logger;
  signal?: AbortSignal;
  /** A warning is logged at the first failure and again every this often while it lasts (default 30 s). */
  warnEveryMs?: number;
  /** Give up after this long with a StartupTimeoutError (default: wait until it comes). */
  timeoutMs?: number;
  /** What to check when it stays away, as an imperative: "check infra/local/stack status". */
  hint?: string;
  policy?: Partial<RetryPolicy>;
  /** An attempt without an answer after this long is announced like a failure (default 3 s). */
  slowMs?: number;
  /** Called with the reason of each failed attempt (readiness shows it). */
  onWaiting?: (reason: string) => void;
}

/**
 * Runs `attempt` until it succeeds; while it fails because `dependency` is away
 * (isUnavailable: a refused connection, a broker not there, a 5xx), it backs off (0.5 s
 * to 10 s, jittered) and retries, logging `waiting for <dependency>` at warn now and then
 * and at debug in between. A permanent error (a bad config, a refused login) is thrown at once.
 */
export async function waitForDependency<T>(dependency: string, attempt: () => Promise<T>, o: DependencyWaitOptions): Promise<T> {
  const started = Date.now();
  const warnEveryMs = o.warnEveryMs ?? 30_000;
  let lastWarn = 0;
  let failures = 0;
  let timedOut = false;
  const waited = () => Math.round((Date.now() - started) / 1000);
  const announce = (fields: Record<string, unknown>, reason: string, first: boolean) => {
    o.onWaiting?.(reason);
    const now = Date.now();
    const all = { dependency, waitedS: waited(), reason, ...fields, ...(o.hint ? { check: o.hint } : {}) };
    if (lastWarn === 0 || now - lastWarn >= warnEveryMs) {
      lastWarn = now;
      o.logger.warn(all, first ? `waiting for ${dependency}` : `still waiting for ${dependency} after ${waited()} s`);
    } else {
      o.logger.debug(all, `waiting for ${dependency}`);
    }
  };
  // A client library may spend long on its own retries before it fails (kafkajs: ~30 s on a
  // broker that is down): an attempt without an answer after a few seconds is announced too.
  const timed = async (): Promise<T> => {
    const timer = setTimeout(() => {
      slow = true;
      announce({}, `no answer within ${Math.round(slowMs / 1000)} s`, lastWarn === 0);
    }, slowMs);
    try {
      return await attempt();
    } finally {
      clearTimeout(timer);
    }
  };
  const slowMs = o.slowMs ?? 3000;
  let slow = false;
  try {
    const value = await withRetry(timed, {
      policy: { initialMs: 500, maxMs: 10_000, multiplier: 2, maxAttempts: Infinity, ...o.policy },
      retriable: (error) => {
        if (!isUnavailable(error)) return false;
        timedOut = o.timeoutMs !== undefined && Date.now() - started >= o.timeoutMs;
        return !timedOut;
      },
      ...(o.signal ? { signal: o.signal } : {}),
      onRetry: (error, n, delayMs) => {
        failures = n;
        announce({ attempt: n, retryInMs: delayMs }, error instanceof Error ? error.message : String(error), lastWarn === 0);
      },
    });
    if (failures > 0 || slow) o.logger.info({ dependency, waitedS: waited() }, `${dependency} is available`);
    return value;
  } catch (error) {
    if (o.signal?.aborted) throw new Error(`stopped while waiting for ${dependency}`, { cause: error });
    if (timedOut) {
      throw new StartupTimeoutError(
        `${dependency} did not become available within ${Math.round(o.timeoutMs! / 1000)} s (last error: ${(error as Error).message})${o.hint ? `; ${o.hint}` : ''}`,
        { cause: error },
      );
    }
    throw error;
  }
}

export interface StartupOptions {
  logger: Logger;
  signal: AbortSignal;
  /** How long a wait lasts before a warning names the component to check (and again as often). */
  warnAfterMs: number;
  /** Give up a wait after this long (the process exits and its orchestrator restarts it); undefined waits for ever. */
  timeoutMs?: number | undefined;
}

/**
 * What a processor is doing until it consumes: /readyz shows the step in progress ("waiting
 * for topic X (created by Y)", "waiting for the schema registry at Z: connection refused")
 * and answers ready only once `ready()` is called, after the consumer joined its group.
 */
export class StartupState {
  private stage = 'starting';
  private done = false;

  constructor(private readonly o: StartupOptions) {}

  get isReady(): boolean {
    return this.done;
  }

  /** Names the step in progress, shown by /readyz until ready. */
  step(what: string): void {
    this.stage = what;
  }

  ready(): void {
    this.done = true;
    this.stage = 'ready';
  }

  /** The readiness check: fails with the step in progress until the processor consumes. */
  readonly check: ReadinessCheck = async () => {
    if (!this.done) throw new Error(this.stage);
  };

  /** Waits for a dependency (see waitForDependency), shown as the current step. */
  dependency<T>(dependency: string, attempt: () => Promise<T>, hint?: string): Promise<T> {
    this.step(`waiting for ${dependency}`);
    return waitForDependency(dependency, attempt, {
      logger: this.o.logger,
      signal: this.o.signal,
      warnEveryMs: this.o.warnAfterMs,
      ...(this.o.timeoutMs !== undefined ? { timeoutMs: this.o.timeoutMs } : {}),
      ...(hint ? { hint } : {}),
      onWaiting: (reason) => this.step(`waiting for ${dependency}: ${reason}`),
    });
  }

  /** Waits for a topic another component creates (see waitForTopic), shown as the current step. */
  topic(admin: Admin, topic: string, about: Pick<TopicWaitOptions, 'createdBy' | 'hint'>): Promise<void> {
    return waitForTopic(admin, topic, {
      ...about,
      logger: this.o.logger,
      signal: this.o.signal,
      warnAfterMs: this.o.warnAfterMs,
      ...(this.o.timeoutMs !== undefined ? { timeoutMs: this.o.timeoutMs } : {}),
      onWaiting: (message) => this.step(message),
    });
  }
}
