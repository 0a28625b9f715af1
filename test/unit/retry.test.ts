import { describe, expect, it } from 'vitest';
import { PermanentError, TransientError, isRetriable } from '../../processors/core/errors/errors.js';
import { backoffDelay, RetryAbandonedError, withRetry } from '../../processors/core/errors/retry.js';
import { isFenced, isPostgresTransient, isRebalancing, isUnavailable } from '../../processors/core/errors/errors.js';

describe('retry', () => {
  const policy = { initialMs: 100, maxMs: 1000, multiplier: 2, maxAttempts: 5 };

  it('grows the jitter ceiling exponentially up to the cap', () => {
    expect(backoffDelay(policy, 0, () => 1)).toBe(100);
    expect(backoffDelay(policy, 3, () => 1)).toBe(800);
    expect(backoffDelay(policy, 10, () => 1)).toBe(1000);
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
  });

  it('classifies errors', () => {
    expect(isRetriable(new TransientError('s3 away'))).toBe(true);
    expect(isRetriable(new PermanentError('bad row'))).toBe(false);
    expect(isRetriable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { retriable: false }))).toBe(false);
    expect(isRetriable(new Error('plain'))).toBe(false);
  });

  it('retries transient failures and stops at the first permanent one', async () => {
    let calls = 0;
    const value = await withRetry(async () => {
      calls++;
      if (calls < 3) throw new TransientError('not yet');
      return 'done';
    }, { policy: { ...policy, initialMs: 1 } });
    expect(value).toBe('done');
    expect(calls).toBe(3);

    calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw new PermanentError('bad');
    }, { policy })).rejects.toThrow('bad');
    expect(calls).toBe(1);
  });

  it('gives up after maxAttempts', async () => {
    let calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw new TransientError('down');
    }, { policy: { ...policy, initialMs: 1, maxAttempts: 3 } })).rejects.toThrow('down');
    expect(calls).toBe(3);
  });

  it('is abandoned when the caller no longer wants it, and beats while it waits', async () => {
    let wanted = true;
    let beats = 0;
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        if (calls === 2) wanted = false;
        throw new TransientError('down');
      },
      { policy: { initialMs: 1500, maxMs: 1500, multiplier: 1, maxAttempts: Infinity }, minDelayMs: 1500, stillWanted: () => wanted, whileWaiting: async () => void beats++ },
    );
    await expect(run).rejects.toBeInstanceOf(RetryAbandonedError);
    expect(calls).toBe(2);
    expect(beats).toBeGreaterThanOrEqual(2); // a beat a second through each 1.5 s wait

    // A heartbeat that says the group rebalances ends the wait with its error.
    const rebalancing = Object.assign(new Error('rebalance'), { type: 'REBALANCE_IN_PROGRESS' });
    await expect(withRetry(async () => { throw new TransientError('down'); }, { policy: { initialMs: 1200, maxMs: 1200, multiplier: 1, maxAttempts: Infinity }, minDelayMs: 1200, whileWaiting: async () => { throw rebalancing; } })).rejects.toBe(rebalancing);

    // An abort gives the caller's own error, with the failure as its cause.
    const abort = new AbortController();
    const failure = new TransientError('s3 away');
    const aborted = withRetry(async () => { abort.abort(); throw failure; }, { signal: abort.signal, abandoned: (cause) => new Error('abandoned', { cause }) });
    await expect(aborted).rejects.toMatchObject({ message: 'abandoned', cause: failure });
  });

  it('classifies kafkajs errors once: rebalancing, fenced, unavailable', () => {
    const wrapped = (type: string) => Object.assign(new Error('gave up'), { name: 'KafkaJSNumberOfRetriesExceeded', originalError: Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type }) });
    expect(isRebalancing(wrapped('REBALANCE_IN_PROGRESS'))).toBe(true);
    expect(isRebalancing(wrapped('ILLEGAL_GENERATION'))).toBe(true);
    expect(isRebalancing(wrapped('LEADER_NOT_AVAILABLE'))).toBe(false);
    expect(isFenced(wrapped('INVALID_PRODUCER_EPOCH'))).toBe(true);
    expect(isFenced(Object.assign(new Error('fenced'), { code: 90 }))).toBe(true);
    expect(isUnavailable(wrapped('LEADER_NOT_AVAILABLE'))).toBe(true);
    expect(isUnavailable(wrapped('MESSAGE_TOO_LARGE'))).toBe(false);
    expect(isUnavailable(wrapped('TOPIC_AUTHORIZATION_FAILED'))).toBe(false);
    expect(isUnavailable(new TypeError('a bug'))).toBe(false);
  });

  it('tells a passing PostgreSQL fault (restart, broken connection, overload, conflict) from a fault of the statement or data', () => {
    const pg = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    for (const code of ['57P01', '57P03', '08006', '53300', '40001', '40P01']) expect(isPostgresTransient(pg(code)), code).toBe(true);
    for (const code of ['23505', '22003', '42P01', '42501', '28P01']) expect(isPostgresTransient(pg(code)), code).toBe(false);
    expect(isPostgresTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isPostgresTransient(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isPostgresTransient(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isPostgresTransient(new PermanentError('stale batch'))).toBe(false);
    expect(isPostgresTransient(new TransientError('wait'))).toBe(true);
    expect(isPostgresTransient(new TypeError('a bug'))).toBe(false);
    // Waiting for a dependency at start-up uses the same Postgres classification.
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailable(pg('23505'))).toBe(false);
  });
});
