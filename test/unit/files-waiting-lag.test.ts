import { describe, expect, it } from 'vitest';
import { oldestWaitingSeconds } from '../../processors/files/watcher.js';

describe('files: seconds the oldest waiting object has waited', () => {
  it('is 0 when nothing waits, and never negative', () => {
    expect(oldestWaitingSeconds([], 1_000_000)).toBe(0);
    expect(oldestWaitingSeconds([2_000_000], 1_000_000)).toBe(0);
  });

  it('takes the oldest of the waiting objects', () => {
    expect(oldestWaitingSeconds([9_000, 4_000, 7_500], 10_000)).toBe(6);
  });

  it('handles a backlog far larger than an argument list can hold (a spread throws a RangeError there)', () => {
    const now = 1_700_000_000_000;
    const times = new Map<string, number>();
    for (let i = 0; i < 500_000; i++) times.set(`incoming/p/${i}.csv`, now - (i % 1000) * 1000);
    times.set('incoming/p/oldest.csv', now - 3_600_000);
    expect(() => Math.min(...times.values())).toThrow(RangeError);
    expect(oldestWaitingSeconds(times.values(), now)).toBe(3600);
  });
});
