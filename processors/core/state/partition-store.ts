import { mkdirSync, rmSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';

/**
 * One input partition's state on local disk: an LMDB environment (chosen by measurement,
 * BENCHMARKS.md "State store candidates") holding
 *   - `data`: key -> [8-byte expiry, ms since epoch, big-endian][value];
 *   - `expiry`: [8-byte expiry][key] -> empty, so expired entries are found in time order
 *     without a scan;
 *   - `meta`: the changelog offset the store reflects (the next changelog record it has
 *     not applied), written in the same LMDB transaction as the data it describes.
 * The store is a cache of the changelog topic: it is only ever written with changes whose
 * Kafka transaction has committed (or that were read back from the changelog), so it is
 * a prefix of the changelog, and `changelogNext` says where the catch-up read starts.
 * LMDB without fsync per commit (noSync): a process crash loses nothing (the pages are in
 * the OS cache); an OS crash may lose the last commits, never consistency, and the
 * catch-up read from the changelog brings them back.
 */
export interface StateChange {
  key: string;
  /** The new value; null deletes the entry (a tombstone in the changelog). */
  value: Buffer | null;
  /** When the entry expires (ms since epoch); ignored for deletes. */
  expiresAt: number;
}

export interface StoredEntry {
  value: Buffer;
  expiresAt: number;
}

const NO_EXPIRY = Number.MAX_SAFE_INTEGER;
const CHANGELOG_NEXT = 'changelog-next';

function expiryKey(expiresAt: number, key: string): Buffer {
  const k = Buffer.from(key, 'utf8');
  const out = Buffer.allocUnsafe(8 + k.length);
  out.writeBigUInt64BE(BigInt(expiresAt), 0);
  k.copy(out, 8);
  return out;
}

export class PartitionStore {
  private constructor(
    readonly dir: string,
    private readonly root: RootDatabase,
    private readonly data: Database<Buffer, string>,
    private readonly expiry: Database<Buffer, Buffer>,
    private readonly meta: Database<string, string>,
  ) {}

  /** Opens (creating when absent) the store in `dir`. */
  static open(dir: string): PartitionStore {
    mkdirSync(dir, { recursive: true });
    const root = open({ path: dir, maxDbs: 4, noSync: true, compression: false });
    const data = root.openDB<Buffer, string>('data', { encoding: 'binary', keyEncoding: 'ordered-binary' });
    const expiry = root.openDB<Buffer, Buffer>('expiry', { encoding: 'binary', keyEncoding: 'binary' });
    const meta = root.openDB<string, string>('meta', { encoding: 'string' });
    return new PartitionStore(dir, root, data, expiry, meta);
  }

  /** Removes a store's files (a store that no longer matches its changelog is rebuilt from it). */
  static destroy(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
  }

  get(key: string): StoredEntry | undefined {
    const raw = this.data.getBinaryFast(key);
    if (raw === undefined) return undefined;
    return { expiresAt: Number(raw.readBigUInt64BE(0)), value: Buffer.from(raw.subarray(8)) };
  }

  has(key: string): boolean {
    return this.data.doesExist(key);
  }

  /** The next changelog offset this store has not applied; undefined for a new store. */
  changelogNext(): bigint | undefined {
    const v = this.meta.get(CHANGELOG_NEXT);
    return v === undefined ? undefined : BigInt(v);
  }

  /**
   * Applies changes in one local transaction; with `changelogNext`, records that the store
   * now reflects the changelog up to (not including) that offset.
   */
  apply(changes: Iterable<StateChange>, changelogNext?: bigint): void {
    this.root.transactionSync(() => {
      for (const c of changes) {
        const old = this.data.getBinaryFast(c.key);
        if (old !== undefined) this.expiry.removeSync(expiryKey(Number(old.readBigUInt64BE(0)), c.key));
        if (c.value === null) {
          if (old !== undefined) this.data.removeSync(c.key);
          continue;
        }
        const expiresAt = Number.isSafeInteger(c.expiresAt) && c.expiresAt >= 0 ? c.expiresAt : NO_EXPIRY;
        const stored = Buffer.allocUnsafe(8 + c.value.length);
        stored.writeBigUInt64BE(BigInt(expiresAt), 0);
        c.value.copy(stored, 8);
        this.data.putSync(c.key, stored);
        if (expiresAt !== NO_EXPIRY) this.expiry.putSync(expiryKey(expiresAt, c.key), Buffer.alloc(0));
      }
      if (changelogNext !== undefined) this.meta.putSync(CHANGELOG_NEXT, changelogNext.toString());
    });
  }

  /** Keys whose expiry is at or before `now`, oldest first, at most `limit`. */
  expired(now: number, limit: number): string[] {
    const end = Buffer.alloc(8);
    end.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now)) + 1), 0);
    const keys: string[] = [];
    for (const key of this.expiry.getKeys({ end, limit })) keys.push((key as Buffer).subarray(8).toString('utf8'));
    return keys;
  }

  /** The earliest expiry in the store (ms), or undefined when nothing expires. */
  nextExpiry(): number | undefined {
    for (const key of this.expiry.getKeys({ limit: 1 })) return Number((key as Buffer).readBigUInt64BE(0));
    return undefined;
  }

  /** Number of entries. */
  count(): number {
    return (this.data.getStats() as { entryCount: number }).entryCount;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
