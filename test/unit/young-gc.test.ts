import { describe, expect, it } from 'vitest';
import { collectingEvery, collectYoungGeneration } from '../../processors/core/runtime/young-gc.js';

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

describe('collectingEvery', () => {
  it('passes every chunk on and keeps the dead ones of a fast reader bounded', async () => {
    collectYoungGeneration();
    const before = arrayBuffers();
    let grew = 0;
    let seen = 0;
    // 16 MiB read as fresh 64 KiB buffers (a socket's reads), each dropped once used.
    async function* socket() {
      for (let i = 0; i < 256; i++) yield Buffer.allocUnsafeSlow(64 * 1024).fill(i);
    }
    for await (const chunk of collectingEvery(socket(), 2 * MiB)) {
      expect(chunk[0]).toBe(seen++ % 256);
      grew = Math.max(grew, arrayBuffers() - before);
    }
    expect(seen).toBe(256);
    expect(grew).toBeLessThan(6 * MiB);
  });

  it('stops the stream it reads when destroyed', () => {
    let destroyed = 0;
    const body = Object.assign((async function* () {})(), { destroy: () => void destroyed++ });
    collectingEvery(body, MiB).destroy();
    expect(destroyed).toBe(1);
  });
});
