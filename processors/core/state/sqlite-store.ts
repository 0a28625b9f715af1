import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decodeEntry, type PartitionStore, type StateChange, type StoredEntry } from './partition-store.js';

const CHANGELOG_NEXT = 'changelog-next';
/** Rows a multi-row INSERT takes (SQLite's default limit is 32,766 bound variables). */
const ROWS = 64;
/** SQLite's own page cache per store by default (private memory): the hot pages; the others come from the OS cache with pread. */
export const SQLITE_CACHE_KIB = 4096;

/**
 * A partition store in one SQLite database (better-sqlite3), `<dir>/state.db`: tables
 * `data` (key BLOB -> entry BLOB, WITHOUT ROWID: the key is the B-tree's) and `meta`
 * (the changelog position, written in the same transaction as the data it describes).
 * partition-store.ts: the contract, and why live uses this engine.
 *   - No memory map (`mmap_size = 0`): pages are read with pread into a page cache of
 *     `cacheKiB` (default SQLITE_CACHE_KIB); the OS page cache holds the rest of the file, outside the process's
 *     RSS. With LMDB every page read through the map stayed in the RSS, and the kernel maps
 *     64 KiB or more around each one (BENCHMARKS.md "Live: memory").
 *   - WAL with `synchronous = OFF`: a commit is one append to the WAL in the OS cache; a
 *     killed process loses nothing, an OS crash may lose the last commits (the catch-up
 *     from the changelog brings them back) and never leaves the database inconsistent.
 *   - Keys are stored as their UTF-8 bytes (BLOB: byte order, as LMDB's ordered keys, and
 *     NULs inside keys are plain bytes).
 *   - Writes happen in the caller's thread (`inline`): a transaction of a few thousand rows
 *     is milliseconds; StateStores then keeps no copy of the changes waiting for a writer.
 *   - The entry count is kept by counting what each statement changed: SQLite has no O(1)
 *     count(*).
 * A folder that still holds an LMDB store of an earlier version (data.mdb) is cleared: the
 * store is a cache of the changelog and is restored from it.
 */
export class SqlitePartitionStore implements PartitionStore {
  readonly inline = true;
  private readonly db: Database.Database;
  private readonly st: ReturnType<typeof statements>;
  private entries: number;
  /** `write` in one SQLite transaction (rolled back if it throws). */
  private readonly writeTxn: (changes: Iterable<StateChange>, changelogNext: bigint | undefined) => void;

  private constructor(
    readonly dir: string,
    cacheKiB: number,
  ) {
    const db = new Database(join(dir, 'state.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    db.pragma('mmap_size = 0');
    db.pragma(`cache_size = -${cacheKiB}`);
    db.exec('CREATE TABLE IF NOT EXISTS data (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
    db.exec('CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID');
    this.db = db;
    this.st = statements(db);
    this.entries = this.st.count.get() as number;
    this.writeTxn = db.transaction((changes: Iterable<StateChange>, next: bigint | undefined) => this.write(changes, next));
  }

  /** Opens (creating when absent) the store in `dir`. */
  static open(dir: string, cacheKiB = SQLITE_CACHE_KIB): SqlitePartitionStore {
    mkdirSync(dir, { recursive: true });
    for (const lmdbFile of ['data.mdb', 'lock.mdb']) if (existsSync(join(dir, lmdbFile))) rmSync(join(dir, lmdbFile), { force: true });
    return new SqlitePartitionStore(dir, cacheKiB);
  }

  get(key: string): StoredEntry | undefined {
    const raw = this.st.get.get(Buffer.from(key)) as Buffer | undefined;
    return raw === undefined ? undefined : decodeEntry(raw);
  }

  has(key: string): boolean {
    return this.st.has.get(Buffer.from(key)) !== undefined;
  }

  hasKeysFrom(prefix: string): boolean {
    const first = this.st.firstFrom.get(Buffer.from(prefix)) as Buffer | undefined;
    return first !== undefined && first.toString().startsWith(prefix);
  }

  *keysFrom(prefix: string): Iterable<string> {
    for (const raw of this.st.keysFrom.iterate(Buffer.from(prefix)) as IterableIterator<Buffer>) {
      const key = raw.toString();
      if (!key.startsWith(prefix)) return;
      yield key;
    }
  }

  changelogNext(): bigint | undefined {
    const v = this.st.getMeta.get(CHANGELOG_NEXT) as string | undefined;
    return v === undefined ? undefined : BigInt(v);
  }

  apply(changes: Iterable<StateChange>, changelogNext?: bigint): void {
    this.writeTxn(changes, changelogNext);
  }

  applyAsync(changes: Iterable<StateChange>, changelogNext?: bigint): Promise<unknown> {
    try {
      this.writeTxn(changes, changelogNext);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /**
   * Entries of an empty value (presence: ids, members of a set) are nearly always new: they
   * go in ROWS at a time with INSERT OR IGNORE, and a chunk in which some key was already
   * there is written again row by row (its entries may carry a new expiry). Other entries
   * (totals rewritten per transaction) are inserted or else updated, row by row.
   */
  private write(changes: Iterable<StateChange>, changelogNext: bigint | undefined): void {
    const st = this.st;
    const chunk: Buffer[] = [];
    const flushChunk = (rows: number): void => {
      const stmt = rows === ROWS ? st.insertMany : st.insertSome(rows);
      const inserted = stmt.run(chunk).changes;
      this.entries += inserted;
      if (inserted < rows) for (let i = 0; i < chunk.length; i += 2) this.upsert(chunk[i]!, chunk[i + 1]!, true);
      chunk.length = 0;
    };
    for (const c of changes) {
      const key = Buffer.from(c.key);
      if (c.entry !== null && c.entry.length === 8) {
        chunk.push(key, c.entry);
        if (chunk.length === 2 * ROWS) flushChunk(ROWS);
        continue;
      }
      // In order: a chunk's rows go in before a later change (a restore may delete or rewrite a key it just put).
      if (chunk.length > 0) flushChunk(chunk.length / 2);
      if (c.entry === null) this.entries -= st.delete.run(key).changes;
      else this.upsert(key, c.entry, false);
    }
    if (chunk.length > 0) flushChunk(chunk.length / 2);
    if (changelogNext !== undefined) st.putMeta.run(CHANGELOG_NEXT, changelogNext.toString());
  }

  /** Writes one entry; `present`: the row is known to be there already (only its value is set). */
  private upsert(key: Buffer, entry: Buffer, present: boolean): void {
    if (!present && this.st.insert.run(key, entry).changes === 1) {
      this.entries++;
      return;
    }
    this.st.update.run(entry, key);
  }

  sweep(now: number, after: string | undefined, limit: number): { expired: string[]; next: string | undefined } {
    const expired: string[] = [];
    let last: string | undefined;
    let seen = 0;
    const rows = (after === undefined ? this.st.sweepFirst.iterate(limit) : this.st.sweepAfter.iterate(Buffer.from(after), limit)) as IterableIterator<{ k: Buffer; v: Buffer }>;
    for (const { k, v } of rows) {
      last = k.toString();
      seen++;
      if (v.length >= 8 && Number(v.readBigUInt64BE(0)) <= now) expired.push(last);
    }
    return { expired, next: seen < limit ? undefined : last };
  }

  count(): number {
    return this.entries;
  }

  async flushed(): Promise<void> {}

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function statements(db: Database.Database) {
  const values = (rows: number) => Array.from({ length: rows }, () => '(?, ?)').join(', ');
  const some = new Map<number, Database.Statement>();
  return {
    get: db.prepare('SELECT v FROM data WHERE k = ?').pluck(),
    has: db.prepare('SELECT 1 FROM data WHERE k = ?').pluck(),
    firstFrom: db.prepare('SELECT k FROM data WHERE k >= ? ORDER BY k LIMIT 1').pluck(),
    keysFrom: db.prepare('SELECT k FROM data WHERE k >= ? ORDER BY k').pluck(),
    count: db.prepare('SELECT count(*) FROM data').pluck(),
    insert: db.prepare('INSERT OR IGNORE INTO data (k, v) VALUES (?, ?)'),
    insertMany: db.prepare(`INSERT OR IGNORE INTO data (k, v) VALUES ${values(ROWS)}`),
    insertSome: (rows: number): Database.Statement => {
      let s = some.get(rows);
      if (!s) some.set(rows, (s = db.prepare(`INSERT OR IGNORE INTO data (k, v) VALUES ${values(rows)}`)));
      return s;
    },
    update: db.prepare('UPDATE data SET v = ? WHERE k = ?'),
    delete: db.prepare('DELETE FROM data WHERE k = ?'),
    sweepFirst: db.prepare('SELECT k, v FROM data ORDER BY k LIMIT ?'),
    sweepAfter: db.prepare('SELECT k, v FROM data WHERE k > ? ORDER BY k LIMIT ?'),
    getMeta: db.prepare('SELECT v FROM meta WHERE k = ?').pluck(),
    putMeta: db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'),
  };
}
