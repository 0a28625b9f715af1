import { describe, expect, it } from 'vitest';
import { PermanentError, TransientError, isRetriable } from '../../processors/core/errors/errors.js';
import { backoffDelay, withRetry } from '../../processors/core/errors/retry.js';

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
});
