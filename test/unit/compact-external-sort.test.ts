import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ExternalSorter } from '../../processors/compact/external-sort.js';
import { bucketCount, compareIds, IdBuckets } from '../../processors/compact/id-check.js';
import type { LakeColumn, LakeValue } from '../../processors/core/parquet/lake-schema.js';

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sort-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const columns: LakeColumn[] = [
  { name: 'event_id', type: 'string', nullable: false },
  { name: 'agent_id', type: 'string', nullable: true },
  { name: 'occurred_at', type: 'timestamp_us', nullable: false },
  { name: 'amount_minor', type: 'int64', nullable: true },
  { name: 'rate', type: 'double', nullable: true },
  { name: 'n', type: 'int32', nullable: true },
  { name: 'ok', type: 'boolean', nullable: true },
  { name: 'raw', type: 'bytes', nullable: true },
];
const keys = { id: 0, agent: 1, time: 2 };

/** A deterministic pseudo-random generator (the test must not depend on luck). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const utf8Key = (v: LakeValue) => (v === null || v === undefined ? '' : Buffer.from(v as string, 'utf8').toString('latin1'));

/** The reference: everything in memory, sorted by (agent bytes, time, id bytes, input order), first copy of an event kept. */
function reference(rows: LakeValue[][]): LakeValue[][] {
  const keyed = rows.map((values, seq) => ({ values, seq, agent: utf8Key(values[1]), time: Number(values[2]), id: utf8Key(values[0]) }));
  keyed.sort((a, b) => (a.agent !== b.agent ? (a.agent < b.agent ? -1 : 1) : a.time !== b.time ? a.time - b.time : a.id !== b.id ? (a.id < b.id ? -1 : 1) : a.seq - b.seq));
  const out: LakeValue[][] = [];
  let last: (typeof keyed)[number] | undefined;
  for (const k of keyed) {
    if (last && last.id === k.id && last.agent === k.agent && last.time === k.time) continue;
    out.push(k.values);
    last = k;
  }
  return out;
}

function generate(count: number, seed: number): LakeValue[][] {
  const r = random(seed);
  const agents = ['a', 'b', 'é', 'z', 'agent-10', 'agent-9', '日本', null];
  const rows: LakeValue[][] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0 && r() < 0.05) {
      // A copy of an earlier event (as Kafka redelivery leaves them), possibly with other column values: the first one must win.
      const copy = [...rows[Math.floor(r() * rows.length)]!];
      copy[4] = r();
      rows.push(copy);
      continue;
    }
    rows.push([
      `e-${Math.floor(r() * 1e9).toString(36)}-${i}`,
      agents[Math.floor(r() * agents.length)]!,
      1_764_000_000_000_000n + BigInt(Math.floor(r() * 50)),
      r() < 0.1 ? null : 2n ** 62n + BigInt(i),
      r() < 0.1 ? null : r() * 1000,
      r() < 0.1 ? null : Math.floor(r() * 2 ** 31) * (r() < 0.5 ? -1 : 1),
      r() < 0.1 ? null : r() < 0.5,
      r() < 0.1 ? null : Uint8Array.from([i & 255, 0, 255]),
    ]);
  }
  return rows;
}

function sortAll(rows: LakeValue[][], memoryBytes: number, dir: string) {
  const sorter = new ExternalSorter({ dir, columns, keys, memoryBytes, readBufferBytes: 64 });
  for (const row of rows) sorter.add(row);
  const stats = { dropped: 0 };
  const out: LakeValue[][] = [];
  const ids: string[] = [];
  for (const r of sorter.merged(stats)) {
    out.push([...r.values]);
    ids.push(r.id);
  }
  return { out, ids, stats, sorter };
}

describe('external sort (compaction)', () => {
  it('spills sorted runs within the memory budget and merges them into the same order and values as an in-memory sort', () => {
    const rows = generate(5000, 7);
    const dir = tempDir();
    const { out, stats, sorter, ids } = sortAll(rows, 16 * 1024, dir);
    // 5,000 rows of ~100 bytes with a 16 KiB budget: dozens of runs on disk.
    expect(sorter.runCount).toBeGreaterThan(20);
    expect(readdirSync(dir).filter((f) => f.startsWith('run-')).length).toBe(sorter.runCount - 1);
    expect(sorter.spilledBytes).toBeGreaterThan(0);
    const expected = reference(rows);
    expect(stats.dropped).toBe(rows.length - expected.length);
    expect(stats.dropped).toBeGreaterThan(100);
    expect(out).toEqual(expected);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toBe(utf8Key(expected[0]![0]));
  });

  it('keeps everything in memory when the rows fit (one run, nothing on disk), with the same result', () => {
    const rows = generate(2000, 11);
    const dir = tempDir();
    const { out, sorter } = sortAll(rows, 64 * 1024 * 1024, dir);
    expect(sorter.runCount).toBe(1);
    expect(sorter.spilledBytes).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(out).toEqual(reference(rows));
  });

  it('reads rows that straddle the read buffer and rows bigger than it', () => {
    const dir = tempDir();
    const big = 'x'.repeat(3000);
    const rows: LakeValue[][] = [
      ['e2', 'a', 2n, null, null, null, null, null],
      ['e1', 'a', 1n, 5n, 1.5, -3, true, new Uint8Array(5000).fill(7)],
      ['e3', big, 0n, null, null, null, null, null],
    ];
    const { out } = sortAll(rows, 100, dir);
    expect(out).toEqual(reference(rows));
    expect((out[0]![7] as Uint8Array).length).toBe(5000);
    expect(out.map((r) => r[0])).toEqual(['e1', 'e2', 'e3']);
  });

  it('does not merge two rows that share an event_id but differ in agent or time: the id check refuses them', () => {
    const dir = tempDir();
    const rows: LakeValue[][] = [
      ['same', 'a', 1n, null, null, null, null, null],
      ['same', 'b', 1n, null, null, null, null, null],
      ['other', 'a', 1n, null, null, null, null, null],
    ];
    const { ids } = sortAll(rows, 100, dir);
    expect(ids).toEqual(['other', 'same', 'same']);
    const written = new IdBuckets(dir, 'w', 3);
    const read = new IdBuckets(dir, 'r', 3);
    for (const id of ids) {
      written.add(id);
      read.add(id);
    }
    written.close();
    read.close();
    expect(compareIds(written, read)).toMatch(/event_id "same" was written twice/);
  });
});

describe('bounded id check (compaction read-back)', () => {
  const check = (written: string[], read: string[], buckets = 4) => {
    const dir = tempDir();
    const w = new IdBuckets(dir, 'w', buckets);
    const r = new IdBuckets(dir, 'r', buckets);
    for (const id of written) w.add(Buffer.from(id, 'utf8').toString('latin1'));
    for (const id of read) r.add(Buffer.from(id, 'utf8').toString('latin1'));
    w.close();
    r.close();
    return compareIds(w, r);
  };
  const ids = Array.from({ length: 3000 }, (_, i) => `id-${i}-é`);

  it('accepts the same ids in any order, in any number of buckets', () => {
    expect(check(ids, [...ids].reverse(), 1)).toBeUndefined();
    expect(check(ids, [...ids].reverse(), 37)).toBeUndefined();
  });

  it('names what is wrong: a lost id, an id read twice, a count that differs', () => {
    expect(check(ids, [...ids.slice(1), 'stranger'], 1)).toMatch(/"stranger" read back but not written/);
    expect(check(ids, [...ids.slice(1), 'stranger'], 64)).toMatch(/"(stranger" read back but not written|id-0-é" written but not read back)/);
    expect(check(ids, [...ids.slice(0, -1), ids[0]!], 1)).toMatch(/"id-0-é" read back but not written, or read back twice/);
    expect(check(ids, ids.slice(1))).toMatch(/2999 rows read back, 3000 written/);
    expect(check(['é'], ['e'])).toMatch(/"e" read back but not written/);
  });

  it('sizes buckets so one fits the memory budget', () => {
    expect(bucketCount(10, 1 << 20)).toBe(1);
    expect(bucketCount(10_000_000, 64 * 1024 * 1024)).toBe(15);
    expect(bucketCount(1e12, 1)).toBe(4096);
  });
});
