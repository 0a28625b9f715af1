import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The bounded check that compaction's outputs hold exactly the event ids it meant to write,
 * each once, however many rows a partition has: ids are spread over hash buckets on disk (the
 * ids written, and the ids read back from S3), then compared one bucket at a time, so memory
 * holds one bucket's ids (a budget), not the partition's.
 *
 * Ids are latin1 keys of their UTF-8 bytes (exact identity). Bucket file format: per id, u16
 * length then the bytes.
 */

/** Bytes an id costs in a Set while its bucket is checked (the key string and the Set entry). */
const ID_COST = 100;
const BUFFER = 16 * 1024;

/** How many buckets keep one bucket of `rows` ids within `memoryBytes`. */
export function bucketCount(rows: number, memoryBytes: number): number {
  return Math.min(4096, Math.max(1, Math.ceil((rows * ID_COST) / Math.max(1, memoryBytes))));
}

/** FNV-1a over the key's char codes (bytes, for latin1 keys). */
export function idHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class IdBuckets {
  private readonly buffers: Buffer[];
  private readonly used: number[];
  private readonly fds: (number | undefined)[];
  count = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    readonly buckets: number,
  ) {
    this.buffers = Array.from({ length: buckets }, () => Buffer.allocUnsafe(BUFFER));
    this.used = new Array<number>(buckets).fill(0);
    this.fds = new Array<number | undefined>(buckets).fill(undefined);
  }

  private path(b: number): string {
    return join(this.dir, `${this.name}-${b}.ids`);
  }

  add(key: string): void {
    const b = idHash(key) % this.buckets;
    const n = key.length;
    if (n > 0xffff) throw new Error(`an event_id of ${n} bytes: longer than compaction's id check allows (65535)`);
    if (this.used[b]! + 2 + n > BUFFER) this.flush(b);
    const buf = this.buffers[b]!;
    if (2 + n > BUFFER) {
      const big = Buffer.allocUnsafe(2 + n);
      big.writeUInt16LE(n, 0);
      big.write(key, 2, 'latin1');
      this.write(b, big, big.length);
    } else {
      buf.writeUInt16LE(n, this.used[b]!);
      buf.write(key, this.used[b]! + 2, 'latin1');
      this.used[b]! += 2 + n;
    }
    this.count++;
  }

  private write(b: number, buf: Buffer, len: number): void {
    this.fds[b] ??= openSync(this.path(b), 'a');
    let at = 0;
    while (at < len) at += writeSync(this.fds[b]!, buf, at, len - at);
  }

  private flush(b: number): void {
    if (this.used[b]! > 0) this.write(b, this.buffers[b]!, this.used[b]!);
    this.used[b] = 0;
  }

  /** Writes what is buffered and closes the files. */
  close(): void {
    for (let b = 0; b < this.buckets; b++) {
      this.flush(b);
      if (this.fds[b] !== undefined) closeSync(this.fds[b]!);
      this.fds[b] = undefined;
    }
  }

  /** The ids of one bucket (after close()). */
  *ids(b: number): Generator<string> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path(b));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let p = 0;
    while (p < bytes.length) {
      const n = bytes.readUInt16LE(p);
      yield bytes.toString('latin1', p + 2, p + 2 + n);
      p += 2 + n;
    }
  }
}

/**
 * Compares what was written with what was read back, bucket by bucket: undefined when both hold
 * the same ids each exactly once, else what is wrong (with one example id).
 */
export function compareIds(written: IdBuckets, readBack: IdBuckets): string | undefined {
  if (written.buckets !== readBack.buckets) throw new Error('compareIds: bucket counts differ');
  if (written.count !== readBack.count) return `${readBack.count} rows read back, ${written.count} written`;
  const show = (k: string) => JSON.stringify(Buffer.from(k, 'latin1').toString('utf8'));
  for (let b = 0; b < written.buckets; b++) {
    const expected = new Set<string>();
    for (const id of written.ids(b)) {
      if (expected.has(id)) return `event_id ${show(id)} was written twice (two rows with that id differ in agent_id or occurred_at: not copies of one event; fix the source data)`;
      expected.add(id);
    }
    for (const id of readBack.ids(b)) {
      if (!expected.delete(id)) return `event_id ${show(id)} read back but not written, or read back twice`;
    }
    if (expected.size > 0) return `event_id ${show(expected.values().next().value!)} written but not read back (${expected.size} ids missing in its bucket)`;
  }
  return undefined;
}
