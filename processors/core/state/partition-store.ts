import { rmSync } from 'node:fs';

/**
 * One input partition's state on local disk, as StateStores uses it, and the format of its
 * entries. Two engines implement it, chosen per processor by measurement (BENCHMARKS.md
 * "State store candidates" and "Live: memory"):
 *   - LMDB (lmdb-store.ts): the fastest point reads, through a memory map; every page read
 *     through the map counts in the process's RSS while the map lives. The normalizer's
 *     durable dedupe (random event-id keys, read-heavy) uses it.
 *   - SQLite (sqlite-store.ts, better-sqlite3): reads with pread into a bounded page cache
 *     of its own, so the process's memory does not grow with the store. Live uses it (its
 *     RSS target with millions of events of state).
 * A store holds
 *   - key -> entry, an entry being [8-byte expiry, ms since epoch, big-endian][value]
 *     (the same bytes as the changelog record's value, see changelog.ts);
 *   - the changelog offset the store reflects (the next changelog record it has not
 *     applied), written in the same local transaction as the data it describes.
 * The store is a cache of the changelog topic: it is only ever written with changes whose
 * Kafka transaction has committed (or that were read back from the changelog), so it is
 * a prefix of the changelog, and `changelogNext` says where the catch-up read starts.
 * Neither engine syncs to disk per commit: a process crash loses nothing (the pages are in
 * the OS cache); an OS crash may lose the last commits, never consistency, and the
 * catch-up read from the changelog brings them back. Expired entries are found by a sweep
 * over the keys (`sweep`), a bounded step at a time, rather than by a second index that
 * every write would pay for.
 */
export interface StateChange {
  key: string;
  /** The entry (expiry + value, `encodeEntry`); null deletes it (a tombstone in the changelog). */
  entry: Buffer | null;
}

export interface StoredEntry {
  value: Buffer;
  expiresAt: number;
}

/** No expiry. */
export const NEVER = Number.MAX_SAFE_INTEGER;

export function encodeEntry(value: Buffer, expiresAt: number): Buffer {
  const out = Buffer.allocUnsafe(8 + value.length);
  out.writeBigUInt64BE(BigInt(Number.isSafeInteger(expiresAt) && expiresAt >= 0 ? expiresAt : NEVER), 0);
  value.copy(out, 8);
  return out;
}

/** An entry's expiry (ms since epoch); NEVER for bytes too short to be an entry. */
export function entryExpiresAt(entry: Buffer): number {
  return entry.length < 8 ? NEVER : Number(entry.readBigUInt64BE(0));
}

/** An entry's parts; undefined for bytes too short to be one. */
export function decodeEntry(entry: Buffer): StoredEntry | undefined {
  if (entry.length < 8) return undefined;
  return { expiresAt: Number(entry.readBigUInt64BE(0)), value: entry.subarray(8) };
}

export type StateEngine = 'lmdb' | 'sqlite';

export interface PartitionStore {
  readonly dir: string;
  /** The entry of `key`, copied out of the store; undefined when absent. */
  get(key: string): StoredEntry | undefined;
  /** Whether the key has an entry (nothing is copied). */
  has(key: string): boolean;
  /** Whether the store holds a key starting with `prefix` (one B-tree descent). */
  hasKeysFrom(prefix: string): boolean;
  /** The keys starting with `prefix`, in key order (read lazily: nothing else may use the store until the loop ends). */
  keysFrom(prefix: string): Iterable<string>;
  /** The next changelog offset this store has not applied; undefined for a new store. */
  changelogNext(): bigint | undefined;
  /** Applies changes in one local transaction, now; with `changelogNext`, records that the store then reflects the changelog up to (not including) that offset. */
  apply(changes: Iterable<StateChange>, changelogNext?: bigint): void;
  /**
   * The same, as one transaction the engine may write later (LMDB: on its write thread);
   * resolves once committed. `inline` engines have written it when this returns.
   */
  applyAsync(changes: Iterable<StateChange>, changelogNext?: bigint): Promise<unknown>;
  /** Whether applyAsync writes before it returns (StateStores then keeps no copy of the changes meanwhile). */
  readonly inline: boolean;
  /**
   * One step of the expiry sweep: looks at up to `limit` entries in key order after
   * `after` (from the first when undefined) and returns the keys expired at `now`, and
   * where the next step starts (undefined: the sweep went round; start again).
   */
  sweep(now: number, after: string | undefined, limit: number): { expired: string[]; next: string | undefined };
  /** Number of entries (kept by the store: no scan). */
  count(): number;
  /** Resolves when every queued write has committed. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

/** Removes a store's files, of either engine (a store that no longer matches its changelog is rebuilt from it). */
export function destroyPartitionStore(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
