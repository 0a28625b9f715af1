import { join } from 'node:path';
import type { KafkaMessage, Message } from 'kafkajs';
import type { Logger } from '../log/logger.js';
import { PER_CHANGE_CODEC, type ChangelogCodec } from './changelog.js';
import type { ChangelogSource } from './changelog-reader.js';
import { indexes, type KeyIndex } from './key-index.js';
import type { StateMetrics } from './metrics.js';
import { LmdbPartitionStore } from './lmdb-store.js';
import { decodeEntry, destroyPartitionStore, encodeEntry, entryExpiresAt, type PartitionStore, type StateChange, type StateEngine, type StoredEntry } from './partition-store.js';
import { SqlitePartitionStore } from './sqlite-store.js';

/**
 * A processor's state store, partitioned like its input: one local PartitionStore per
 * assigned input partition, each backed by the same partition of a compacted changelog
 * topic. The life of a partition's state, as in Kafka Streams:
 *   - assigned: before its first record is processed, the store is made current from the
 *     changelog (`ready`): the local store is reused when it is there and still matches
 *     the changelog (the catch-up read starts at the changelog offset it reflects),
 *     otherwise it is rebuilt from the changelog's start; the time it took is logged and
 *     measured;
 *   - processing: each Kafka transaction gets a StateTransaction, the pending view the
 *     processor reads and writes; its changes go to the changelog inside that Kafka
 *     transaction (`messages`), and reach the local store only once it committed
 *     (`committed`), so the local store is always a prefix of the committed changelog;
 *   - revoked: the store is closed (its files stay, for a later assignment).
 * After any rebalance every partition is made current again before it is processed: while
 * it was elsewhere another instance may have written its changelog.
 */
export interface StateStoresOptions {
  /** The store's name: part of the changelog topic name, the folder and the metric labels. */
  name: string;
  /** Folder of this store's partition folders (one per input partition). */
  dir: string;
  /** The embedded store of each partition (partition-store.ts: the engines and when to use which). Default 'lmdb'. */
  engine?: StateEngine;
  /** SQLite only: the page cache of each partition's store, KiB (default sqlite-store.ts SQLITE_CACHE_KIB). */
  cacheKiB?: number;
  changelogTopic: string;
  /** How changes are written to the changelog and read back (default: one record per change, PER_CHANGE_CODEC). */
  codec?: ChangelogCodec;
  source: ChangelogSource;
  /** The clock a restore drops expired entries by (default Date.now; tests set their own). */
  now?: () => number;
  logger: Logger;
  metrics?: StateMetrics;
  /**
   * The expiry sweep (see `StateTransaction.expireDue`): entries looked at per step, the
   * pause between steps and between rounds. Default 20,000 entries, 5 s, 10 min: a
   * million entries are swept in about 4 minutes at well under 1 % of a core.
   */
  sweep?: { stepEntries?: number; stepIntervalMs?: number; roundIntervalMs?: number };
  /**
   * An in-memory index of some keys per partition (key-index.ts), made by this for each
   * partition opened: kept in step with the store and the transactions, read with
   * `StateTransaction.index`.
   */
  index?: () => KeyIndex;
}

/** An open partition: its store, the committed changes LMDB has not written yet, and the expiry sweep's place. */
interface OpenPartition {
  store: PartitionStore;
  /** Changes of committed Kafka transactions queued to LMDB and not yet written: read before the store. */
  unwritten: Map<string, StateChange>;
  /**
   * Transactions begun and neither committed nor aborted, oldest first. A pipelined loop
   * routes the next batch while the previous transaction commits: the next one reads the
   * earlier ones' changes; an abort drops a transaction and every later one (they were
   * computed from it).
   */
  staged: StateTransaction[];
  sweepAfter: string | undefined;
  nextSweepAt: number;
  /** StateStoresOptions.index's index of this partition. */
  index: KeyIndex | undefined;
}

export class StateTransaction {
  private readonly pending = new Map<string, StateChange>();
  /**
   * The transactions of the partition begun before this one and still open when it began,
   * newest first. Emptied once this one commits or aborts (`settle`): each transaction
   * lists the one before it, so a finished transaction that kept its list would keep the
   * whole history of transactions, and every change they made, in memory (measured:
   * 556,768 changes held at 490k events, BENCHMARKS.md "Live: memory").
   */
  private readonly before: StateTransaction[];
  /** Deletes queued by expireDue. */
  expiredCount = 0;
  /** Keys this transaction added to the partition's index (taken back if it aborts). */
  private indexed: string[] | undefined;

  constructor(
    readonly partition: number,
    private readonly open: OpenPartition,
    private readonly sweep: Required<NonNullable<StateStoresOptions['sweep']>>,
    private readonly codec: ChangelogCodec = PER_CHANGE_CODEC,
  ) {
    this.before = [...open.staged].reverse();
    open.staged.push(this);
  }

  /** The change this transaction or an open one before it made to the key, else a committed one not yet on disk. */
  private change(key: string): StateChange | undefined {
    const own = this.pending.get(key);
    if (own) return own;
    for (const t of this.before) {
      const c = t.pending.get(key);
      if (c) return c;
    }
    return this.open.unwritten.get(key);
  }

  /** Whether the key has an entry as this transaction sees it (`get` without decoding or copying the entry). */
  has(key: string): boolean {
    const p = this.change(key);
    if (p) return p.entry !== null;
    return this.open.store.has(key);
  }

  /** The entry as this transaction sees it: its own changes, then committed ones not yet on disk, then the store. */
  get(key: string): StoredEntry | undefined {
    const p = this.change(key);
    if (p) return p.entry === null ? undefined : decodeEntry(p.entry);
    return this.open.store.get(key);
  }

  put(key: string, value: Buffer, expiresAt: number): void {
    let entry: Buffer;
    if (value.length === 0) {
      // Presence entries (ids, members of a set) of one expiry share one immutable buffer.
      if (this.emptyEntry?.expiresAt !== expiresAt) this.emptyEntry = { expiresAt, entry: encodeEntry(value, expiresAt) };
      entry = this.emptyEntry.entry;
    } else entry = encodeEntry(value, expiresAt);
    this.pending.set(key, { key, entry });
    const index = this.open.index;
    if (index && indexes(index, key) && index.add(key)) (this.indexed ??= []).push(key);
  }

  /** The partition's index (StateStoresOptions.index): may the partition hold a key? (a filter: confirm with `has`). */
  get index(): KeyIndex | undefined {
    return this.open.index;
  }

  /** Takes this transaction's keys out of the partition's index (it aborted). */
  unindex(): void {
    const keys = this.indexed;
    this.indexed = undefined;
    if (!keys) return;
    for (let i = keys.length - 1; i >= 0; i--) this.open.index!.remove(keys[i]!);
  }

  private emptyEntry: { expiresAt: number; entry: Buffer } | undefined;

  delete(key: string): void {
    this.pending.set(key, { key, entry: null });
  }

  /**
   * Deletes (tombstones) entries whose expiry is at or before `now`, found by a sweep over
   * the store a bounded step at a time (at most one step per step interval, a pause after
   * each round); returns how many this transaction deletes.
   */
  expireDue(now: number): number {
    const o = this.open;
    if (now < o.nextSweepAt) return 0;
    const { expired, next } = o.store.sweep(now, o.sweepAfter, this.sweep.stepEntries);
    o.sweepAfter = next;
    o.nextSweepAt = now + (next === undefined ? this.sweep.roundIntervalMs : this.sweep.stepIntervalMs);
    let n = 0;
    for (const key of expired) {
      if (this.change(key)) continue; // rewritten since
      this.delete(key);
      n++;
    }
    this.expiredCount += n;
    return n;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Whether the partition's local store holds a key starting with `prefix` (only the store: not this or other open transactions' changes). */
  storeHasKeysFrom(prefix: string): boolean {
    return this.open.store.hasKeysFrom(prefix);
  }

  /** This transaction committed or aborted: it no longer reads the ones before it (see `before`). */
  settle(): void {
    this.before.length = 0;
  }

  changes(): StateChange[] {
    return [...this.pending.values()];
  }

  /** The changelog records of this transaction's changes, for its partition of the changelog. */
  messages(): Message[] {
    return this.codec.encode(this.changes(), this.partition);
  }
}

/** Committed changes of a partition that may wait for LMDB's write thread before new work waits for it (see writable). */
export const MAX_UNWRITTEN = 50_000;

export class StateStores {
  private readonly open = new Map<number, OpenPartition>();
  private readonly sweep: Required<NonNullable<StateStoresOptions['sweep']>>;
  private readonly current = new Set<number>();
  /** Restores under way, by partition (the eager one after an assignment, or one a batch waits for). */
  private readonly restoring = new Map<number, Promise<void>>();
  /** Bumped by every assignment: a restore begun under an older one does not make a store current. */
  private generation = 0;
  private closed = false;
  /** A local write failed: no new transaction may rely on the store. */
  private writeFailed: Error | undefined;

  constructor(private readonly options: StateStoresOptions) {
    this.sweep = { stepEntries: 20_000, stepIntervalMs: 5_000, roundIntervalMs: 600_000, ...options.sweep };
  }

  get name(): string {
    return this.options.name;
  }

  get changelogTopic(): string {
    return this.options.changelogTopic;
  }

  /**
   * A new assignment of input partitions (after every rebalance): stores of partitions
   * no longer assigned are closed; every assigned one is made current again, eagerly in
   * the background (as Kafka Streams restores on assignment), and at the latest when its
   * first batch waits in `ready`.
   */
  async assigned(partitions: readonly number[]): Promise<void> {
    this.generation++;
    this.current.clear();
    const keep = new Set(partitions);
    for (const [partition, open] of [...this.open]) {
      if (keep.has(partition)) continue;
      await this.restoring.get(partition)?.catch(() => undefined);
      this.open.delete(partition);
      this.options.metrics?.entries.remove({ store: this.name, partition: String(partition) });
      await open.store.flushed().catch(() => undefined);
      await open.store.close();
      this.options.logger.info({ store: this.name, partition }, 'state store closed: partition revoked');
    }
    const generation = this.generation;
    // All at once: the changelog source reads the partitions in the same fetches (one at a
    // time, each restore waited for the fetch of the one before: seconds per partition).
    for (const partition of partitions) {
      if (this.closed || generation !== this.generation) break;
      void this.ready(partition).catch((error: unknown) => this.options.logger.warn({ err: error, store: this.name, partition }, 'restoring a state store failed; retried when the partition is consumed'));
    }
  }

  /** Whether the partition's store is open and current (no restore needed before processing). */
  isReady(partition: number): boolean {
    return this.current.has(partition);
  }

  /**
   * Makes the partition's store current from its changelog, reusing the local store when
   * it matches. `progress` is called while reading (the caller's consumer heartbeats).
   */
  async ready(partition: number, progress: () => Promise<void> = async () => undefined): Promise<void> {
    while (!this.current.has(partition)) {
      if (this.closed) throw new Error(`state store ${this.name} is closed`);
      let restore = this.restoring.get(partition);
      if (!restore) {
        restore = this.restore(partition).finally(() => this.restoring.delete(partition));
        this.restoring.set(partition, restore);
      }
      let settled = false;
      const done = restore.finally(() => void (settled = true));
      while (!settled) {
        await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
        if (!settled) await progress();
      }
      await done;
    }
  }

  private async restore(partition: number): Promise<void> {
    const o = this.options;
    const generation = this.generation;
    const started = performance.now();
    const dir = join(o.dir, String(partition));
    let open = this.open.get(partition);
    if (!open) this.open.set(partition, (open = this.newPartition(this.openStore(dir))));
    let store = open.store;
    // Committed changes still queued to LMDB are written before the store says where it is.
    await store.flushed();
    open.unwritten.clear();
    for (const dropped of open.staged.splice(0)) dropped.settle();
    const { low, high } = await o.source.bounds(partition);
    const reflected = store.changelogNext();
    let from = reflected ?? low;
    let kind: 'full' | 'catch-up' = reflected === undefined ? 'full' : 'catch-up';
    if (reflected !== undefined && (reflected > high || reflected < low)) {
      // The changelog is not the one this store was built from (recreated topic, records
      // deleted): the store cannot be trusted, it is rebuilt.
      o.logger.warn({ store: this.name, partition, reflected: reflected.toString(), low: low.toString(), high: high.toString() }, 'local state store does not match its changelog; rebuilding it from the changelog');
      await store.close();
      destroyPartitionStore(dir);
      store = this.openStore(dir);
      this.open.set(partition, (open = this.newPartition(store)));
      from = low;
      kind = 'full';
    }
    let records = 0;
    const codec = o.codec ?? PER_CHANGE_CODEC;
    const now = (o.now ?? Date.now)();
    await o.source.read(
      partition,
      from,
      high,
      (batch: KafkaMessage[]) => {
        const changes: StateChange[] = [];
        for (const m of batch) {
          for (const c of codec.decode(m)) {
            // An entry whose window has passed is gone, whether or not its tombstone was
            // written (a codec may leave expiry to the entries and the topic's retention).
            const expired = c.entry !== null && entryExpiresAt(c.entry) <= now;
            changes.push(expired ? { key: c.key, entry: null } : c);
          }
        }
        store.apply(changes, BigInt(batch[batch.length - 1]!.offset) + 1n);
        records += batch.length;
      },
      async () => undefined,
    );
    if (this.open.get(partition) !== open) throw new Error(`state store ${this.name} partition ${partition} was closed while restoring`);
    if (store.changelogNext() !== high) store.apply([], high);
    if (open.index) {
      open.index.clear();
      for (const prefix of open.index.prefixes) for (const key of store.keysFrom(prefix)) open.index.add(key);
    }
    if (generation === this.generation) this.current.add(partition);
    const seconds = (performance.now() - started) / 1000;
    const entries = store.count();
    o.metrics?.restoreSeconds.observe({ store: this.name, kind }, seconds);
    o.metrics?.restoredRecords.inc({ store: this.name }, records);
    o.metrics?.lastRestoreSeconds.set({ store: this.name, partition: String(partition) }, seconds);
    o.metrics?.entries.set({ store: this.name, partition: String(partition) }, entries);
    o.logger.info(
      { store: this.name, partition, kind, changelog: this.changelogTopic, from: from.toString(), to: high.toString(), records, entries, seconds: Math.round(seconds * 1000) / 1000 },
      kind === 'full' ? 'state store restored from its changelog' : 'state store caught up with its changelog',
    );
  }

  /**
   * Waits while the partition's committed changes queued to LMDB exceed MAX_UNWRITTEN:
   * LMDB's write thread falling behind the Kafka commits would otherwise hold every
   * change twice in memory (the `unwritten` map and lmdb-js' write queue), without bound
   * (measured: 1.25 GB private at 5M events without it, BENCHMARKS.md).
   */
  async writable(partition: number): Promise<void> {
    const open = this.open.get(partition);
    if (!open) return;
    if (open.unwritten.size > MAX_UNWRITTEN) await open.store.flushed();
  }

  /** A pending view of the partition's state for one Kafka transaction (the partition must be ready). */
  begin(partition: number): StateTransaction {
    const open = this.open.get(partition);
    if (!open || !this.current.has(partition)) throw new Error(`state store ${this.name} partition ${partition} is not ready: call ready() after the assignment`);
    if (this.writeFailed) throw this.writeFailed;
    return new StateTransaction(partition, open, this.sweep, this.options.codec);
  }

  private openStore(dir: string): PartitionStore {
    return this.options.engine === 'sqlite' ? SqlitePartitionStore.open(dir, this.options.cacheKiB) : LmdbPartitionStore.open(dir);
  }

  private newPartition(store: PartitionStore): OpenPartition {
    return { store, unwritten: new Map(), staged: [], sweepAfter: undefined, nextSweepAt: 0, index: this.options.index?.() };
  }

  /**
   * The transaction holding `txn`'s changelog records committed: its changes go to the
   * local store. `changelogNext` (the offset after the last changelog record written)
   * moves the store's changelog position; undefined keeps it (a later catch-up re-reads).
   */
  committed(txn: StateTransaction, changelogNext?: bigint): void {
    txn.settle();
    const open = this.open.get(txn.partition);
    if (!open) return; // revoked meanwhile: the changelog has the changes
    const at = open.staged.indexOf(txn);
    if (at >= 0) open.staged.splice(at, 1);
    if (txn.size === 0 && changelogNext === undefined) return;
    const changes = txn.changes();
    const m = this.options.metrics;
    if (m && txn.expiredCount > 0) m.expired.inc({ store: this.name }, txn.expiredCount);
    if (open.store.inline) {
      // Written now: nothing to keep readable meanwhile.
      try {
        open.store.apply(changes, changelogNext);
        m?.entries.set({ store: this.name, partition: String(txn.partition) }, open.store.count());
      } catch (error) {
        this.localWriteFailed(open, txn.partition, error);
      }
      return;
    }
    for (const c of changes) open.unwritten.set(c.key, c);
    open.store.applyAsync(changes, changelogNext).then(
      () => {
        for (const c of changes) if (open.unwritten.get(c.key) === c) open.unwritten.delete(c.key);
        m?.entries.set({ store: this.name, partition: String(txn.partition) }, open.store.count());
      },
      (error: unknown) => this.localWriteFailed(open, txn.partition, error),
    );
  }

  /** The changelog has the changes; the local store cannot take them (disk full?): no new transaction may rely on it. */
  private localWriteFailed(open: OpenPartition, partition: number, error: unknown): void {
    this.writeFailed = new Error(`state store ${this.name} partition ${partition}: writing ${open.store.dir} failed: ${(error as Error).message}`, { cause: error });
    this.options.logger.error({ err: error, store: this.name, partition, dir: open.store.dir }, 'writing the local state store failed; the processor stops (the changelog holds the state)');
  }

  /**
   * The Kafka transaction holding `txn`'s changes aborted, or was given up: its changes are
   * dropped, and those of every transaction of the partition begun after it (they read
   * them). The local store never had them (only `committed` writes there).
   */
  aborted(txn: StateTransaction): void {
    txn.settle();
    const open = this.open.get(txn.partition);
    if (!open) return;
    const at = open.staged.indexOf(txn);
    if (at < 0) return;
    const dropped = open.staged.splice(at);
    // Newest first: the index goes back to what it held before `txn` (key-index.ts).
    for (let i = dropped.length - 1; i >= 0; i--) {
      dropped[i]!.settle();
      dropped[i]!.unindex();
    }
  }

  /** Entries of an open partition store (for the metrics and tests). */
  count(partition: number): number | undefined {
    const open = this.open.get(partition);
    return open?.store.count();
  }

  /** Resolves when every committed change has reached the local stores. */
  async flushed(): Promise<void> {
    for (const open of this.open.values()) {
      await open.store.flushed();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current.clear();
    for (const open of this.open.values()) {
      await open.store.flushed().catch(() => undefined);
      await open.store.close();
    }
    this.open.clear();
    await this.options.source.close();
  }
}
