import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { decodeEntry, type PartitionStore, type StateChange, type StoredEntry } from './partition-store.js';

const CHANGELOG_NEXT = 'changelog-next';

/**
 * The LMDB environment of a store. mapSize: the address space reserved up front (virtual
 * only: the file grows with its data, nothing is allocated). lmdb-js otherwise starts
 * with a 128 KiB map and, each time the file outgrows it, maps the file again at twice
 * the size while keeping every earlier mapping open until the store closes (readers may
 * still point into them): the pages read through the old mappings stay resident there,
 * so the RSS counted the same file up to twice (measured: 429 MB mapped for 136 MiB of
 * LMDB files at 1M events, BENCHMARKS.md "Live: memory"). A store that outgrows this
 * still works (lmdb-js grows the map as before). noReadAhead (MDB_NORDAHEAD): point reads and writes
 * of random keys (event ids) touch one page each; the kernel's read-ahead would map the
 * pages around it too, and every mapped page counts in the process's RSS (measured in
 * BENCHMARKS.md, live: the mapped part of the peak RSS). Exported for the other LMDB
 * environments of a process (processors/live/view.ts).
 */
export const LMDB_ENV = { maxDbs: 4, noSync: true, compression: false, noReadAhead: true, mapSize: 32 * 1024 ** 3 } as const;

/**
 * A partition store in an LMDB environment (partition-store.ts: the contract, and which
 * processor uses which engine): `data` (key -> entry) and `meta` (the changelog position)
 * in one environment. Writes after a Kafka commit are queued (`applyAsync`): LMDB's write
 * thread commits them as one transaction while the processor goes on; StateStores keeps
 * them readable until then.
 */
export class LmdbPartitionStore implements PartitionStore {
  readonly inline = false;
  private readonly root: RootDatabase;
  private readonly data: Database<Buffer, string>;
  private readonly meta: Database<string, string>;

  private constructor(readonly dir: string) {
    this.root = open({ path: dir, ...LMDB_ENV });
    this.data = this.root.openDB<Buffer, string>('data', { encoding: 'binary', keyEncoding: 'ordered-binary' });
    this.meta = this.root.openDB<string, string>('meta', { encoding: 'string' });
  }

  /** Opens (creating when absent) the store in `dir`. */
  static open(dir: string): LmdbPartitionStore {
    mkdirSync(dir, { recursive: true });
    return new LmdbPartitionStore(dir);
  }

  get(key: string): StoredEntry | undefined {
    const raw = this.data.getBinaryFast(key);
    if (raw === undefined) return undefined;
    const e = decodeEntry(raw);
    return e && { expiresAt: e.expiresAt, value: Buffer.from(e.value) };
  }

  /** Whether the key has an entry (no copy of it is made). */
  has(key: string): boolean {
    return this.data.getBinaryFast(key) !== undefined;
  }

  /** Whether the store holds a key starting with `prefix` (one B-tree descent). */
  hasKeysFrom(prefix: string): boolean {
    for (const key of this.data.getKeys({ start: prefix, limit: 1 })) return (key as string).startsWith(prefix);
    return false;
  }

  /** The keys starting with `prefix`, in key order (read lazily). */
  *keysFrom(prefix: string): Iterable<string> {
    for (const key of this.data.getKeys({ start: prefix })) {
      if (!(key as string).startsWith(prefix)) return;
      yield key as string;
    }
  }

  /** The next changelog offset this store has not applied; undefined for a new store. */
  changelogNext(): bigint | undefined {
    const v = this.meta.get(CHANGELOG_NEXT);
    return v === undefined ? undefined : BigInt(v);
  }

  /**
   * Applies changes in one local transaction, now; with `changelogNext`, records that the
   * store then reflects the changelog up to (not including) that offset.
   */
  apply(changes: Iterable<StateChange>, changelogNext?: bigint): void {
    this.root.transactionSync(() => this.write(changes, changelogNext, true));
  }

  /** The same as one transaction queued to LMDB's write thread; resolves once committed. */
  applyAsync(changes: Iterable<StateChange>, changelogNext?: bigint): Promise<unknown> {
    return this.root.batch(() => this.write(changes, changelogNext, false));
  }

  private write(changes: Iterable<StateChange>, changelogNext: bigint | undefined, sync: boolean): void {
    for (const c of changes) {
      if (c.entry === null) void (sync ? this.data.removeSync(c.key) : this.data.remove(c.key));
      else void (sync ? this.data.putSync(c.key, c.entry) : this.data.put(c.key, c.entry));
    }
    if (changelogNext !== undefined) void (sync ? this.meta.putSync(CHANGELOG_NEXT, changelogNext.toString()) : this.meta.put(CHANGELOG_NEXT, changelogNext.toString()));
  }

  /**
   * One step of the expiry sweep: looks at up to `limit` entries in key order after
   * `after` (from the first when undefined) and returns the keys expired at `now`, and
   * where the next step starts (undefined: the sweep went round; start again).
   */
  sweep(now: number, after: string | undefined, limit: number): { expired: string[]; next: string | undefined } {
    const expired: string[] = [];
    let last: string | undefined;
    let seen = 0;
    for (const { key, value } of this.data.getRange({ ...(after === undefined ? {} : { start: after, exclusiveStart: true }), limit })) {
      last = key as string;
      seen++;
      const raw = value as Buffer;
      if (raw.length >= 8 && Number(raw.readBigUInt64BE(0)) <= now) expired.push(last);
    }
    return { expired, next: seen < limit ? undefined : last };
  }

  /** Number of entries (LMDB keeps the count: no scan). */
  count(): number {
    return (this.data.getStats() as { entryCount: number }).entryCount;
  }

  /** Resolves when every queued write has committed. */
  async flushed(): Promise<void> {
    await this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
