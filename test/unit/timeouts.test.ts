import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { settlesWithin, whileBeating, within, withTimeout } from '../../processors/core/runtime/timeouts.js';

const later = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), ms));
const failsLater = (ms: number, error: Error): Promise<never> => new Promise((_, reject) => setTimeout(() => reject(error), ms));

describe('waiting on a promise for a bounded time (core/runtime/timeouts)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('within: the value, the error, or not settled; no timer left behind', async () => {
    const ok = within(later(10, 'v'), 100);
    await vi.advanceTimersByTimeAsync(10);
    expect(await ok).toEqual({ settled: true, value: 'v' });
    expect(vi.getTimerCount()).toBe(0);

    const boom = new Error('boom');
    const failed = within(failsLater(10, boom), 100);
    await vi.advanceTimersByTimeAsync(10);
    expect(await failed).toEqual({ settled: true, error: boom });

    const slow = within(later(500, 'late'), 100);
    await vi.advanceTimersByTimeAsync(100);
    expect(await slow).toEqual({ settled: false });
  });

  it('a promise rejecting after the bound is not an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    vi.useRealTimers();
    try {
      const outcome = within(failsLater(60, new Error('late failure')), 20);
      expect((await outcome).settled).toBe(false);
      // The rejection comes after the race ended, then the event loop turns once more.
      await new Promise((r) => setTimeout(r, 80));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('settlesWithin counts a rejection as settled', async () => {
    const rejected = settlesWithin(failsLater(5, new Error('x')), 50);
    await vi.advanceTimersByTimeAsync(5);
    expect(await rejected).toBe(true);
    const slow = settlesWithin(later(80, 1), 50);
    await vi.advanceTimersByTimeAsync(50);
    expect(await slow).toBe(false);
  });

  it('withTimeout returns the value, rethrows the error, or throws the message', async () => {
    const ok = withTimeout(later(5, 42), 50, 'too slow');
    await vi.advanceTimersByTimeAsync(5);
    expect(await ok).toBe(42);
    const failed = withTimeout(failsLater(5, new Error('own error')), 50, 'too slow');
    const failedCheck = expect(failed).rejects.toThrow('own error');
    await vi.advanceTimersByTimeAsync(5);
    await failedCheck;
    const slow = withTimeout(later(80, 1), 50, 'too slow');
    const slowCheck = expect(slow).rejects.toThrow('too slow');
    await vi.advanceTimersByTimeAsync(50);
    await slowCheck;
  });

  it('whileBeating beats every interval until the promise settles, and an error of the beat ends the wait', async () => {
    let beats = 0;
    const done = whileBeating(later(3_500, 'done'), async () => void beats++, 1_000);
    await vi.advanceTimersByTimeAsync(3_500);
    expect(await done).toBe('done');
    expect(beats).toBe(3);

    const rebalancing = whileBeating(later(10_000, 'never'), async () => {
      throw new Error('rebalancing');
    }, 1_000);
    const check = expect(rebalancing).rejects.toThrow('rebalancing');
    await vi.advanceTimersByTimeAsync(1_000);
    await check;
  });
});
