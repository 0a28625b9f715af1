import { describe, expect, it } from 'vitest';
import { collectYoungGeneration } from '../../processors/core/runtime/young-gc.js';

/** A scavenge on demand frees dead buffers outside the heap that V8 would leave for tens of MiB. */

const MiB = 1024 * 1024;
const arrayBuffers = () => process.memoryUsage().arrayBuffers;

describe('collectYoungGeneration', () => {
  it('frees buffers whose wrappers died young, and gives the program no gc function', () => {
    collectYoungGeneration();
    const before = arrayBuffers();
    // 16 MiB of buffers read and dropped, as a hashing loop does with a socket's chunks.
    for (let i = 0; i < 256; i++) Buffer.allocUnsafeSlow(64 * 1024).fill(i);
    expect(arrayBuffers() - before).toBeGreaterThan(8 * MiB);
    collectYoungGeneration();
    expect(arrayBuffers() - before).toBeLessThan(2 * MiB);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
