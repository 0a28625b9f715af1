import { describe, expect, it } from 'vitest';
import { DirectCopyGate } from '../../processors/core/db/direct-copy-gate.js';

/** Which of `n` flushes of a partition try the direct COPY, the table refusing it on the flushes in `refusedAt`. */
function tries(gate: DirectCopyGate, partition: string, n: number, refusedAt: (flush: number) => boolean): number[] {
  const tried: number[] = [];
  for (let flush = 0; flush < n; flush++) {
    if (!gate.shouldTry(partition)) continue;
    tried.push(flush);
    if (refusedAt(flush)) gate.refused(partition);
    else gate.loaded(partition);
  }
  return tried;
}

describe('DirectCopyGate: a refused direct COPY is not paid again on every flush', () => {
  it('tries every flush while the table takes them', () => {
    expect(tries(new DirectCopyGate(), 't/0', 5, () => false)).toEqual([0, 1, 2, 3, 4]);
  });

  it('during a replay (every direct COPY refused) the tries back off 1, 2, 4... flushes up to the cap', () => {
    const gate = new DirectCopyGate(8);
    // tried at 0, skip 1 -> 2, skip 2 -> 5, skip 4 -> 10, skip 8 -> 19, skip 8 (cap) -> 28, 37
    expect(tries(gate, 't/0', 40, () => true)).toEqual([0, 2, 5, 10, 19, 28, 37]);
  });

  it('one direct COPY that loads brings back a try on every flush', () => {
    const gate = new DirectCopyGate();
    const refused = new Set([0, 2, 5]); // a replay of three refused tries, then new keys
    expect(tries(gate, 't/0', 14, (flush) => refused.has(flush))).toEqual([0, 2, 5, 10, 11, 12, 13]);
    expect(gate.skipping('t/0')).toBe(0);
  });

  it('remembers each partition on its own', () => {
    const gate = new DirectCopyGate();
    gate.refused('t/0');
    gate.refused('t/0');
    expect(gate.skipping('t/0')).toBe(2);
    expect(gate.shouldTry('t/1')).toBe(true);
    expect(gate.shouldTry('t/0')).toBe(false);
    expect(gate.skipping('t/0')).toBe(1);
  });
});
