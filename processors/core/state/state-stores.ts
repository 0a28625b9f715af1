import { join } from 'node:path';
import type { KafkaMessage, Message } from 'kafkajs';
import type { Logger } from '../log/logger.js';
import { fromChangelogMessage, toChangelogMessage } from './changelog.js';
import type { ChangelogSource } from './changelog-reader.js';
import type { StateMetrics } from './metrics.js';
import { PartitionStore, type StateChange, type StoredEntry } from './partition-store.js';

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
  changelogTopic: string;
  source: ChangelogSource;
  logger: Logger;
  metrics?: StateMetrics;
}

export class StateTransaction {
  private readonly pending = new Map<string, StateChange>();
  /** Deletes queued by expireDue. */
  expiredCount = 0;

  constructor(
    readonly partition: number,
    private readonly store: PartitionStore,
  ) {}

  /** The entry as this transaction sees it: its own changes first, then the committed store. */
  get(key: string): StoredEntry | undefined {
    const p = this.pending.get(key);
    if (p) return p.value === null ? undefined : { value: p.value, expiresAt: p.expiresAt };
    return this.store.get(key);
  }

  put(key: string, value: Buffer, expiresAt: number): void {
    this.pending.set(key, { key, value, expiresAt });
  }

  delete(key: string): void {
    this.pending.set(key, { key, value: null, expiresAt: 0 });
  }

  /**
   * Deletes (tombstones) up to `limit` committed entries whose expiry is at or before
   * `now`; returns how many. Cheap when nothing is due (one index lookup).
   */
  expireDue(now: number, limit: number): number {
    const next = this.store.nextExpiry();
    if (next === undefined || next > now) return 0;
    let n = 0;
    for (const key of this.store.expired(now, limit)) {
      if (this.pending.has(key)) continue; // rewritten in this transaction
      this.delete(key);
      n++;
    }
    this.expiredCount += n;
    return n;
  }

  get size(): number {
    return this.pending.size;
  }

  changes(): StateChange[] {
    return [...this.pending.values()];
  }

  /** The changelog records of this transaction's changes, for its partition of the changelog. */
  messages(): Message[] {
    const out: Message[] = [];
    for (const change of this.pending.values()) out.push(toChangelogMessage(change, this.partition));
    return out;
  }
}

export class StateStores {
  private readonly open = new Map<number, PartitionStore>();
  private readonly current = new Set<number>();
  /** Restores under way, by partition (the eager one after an assignment, or one a batch waits for). */
  private readonly restoring = new Map<number, Promise<void>>();
  /** Bumped by every assignment: a restore begun under an older one does not make a store current. */
  private generation = 0;
  private closed = false;

  constructor(private readonly options: StateStoresOptions) {}

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
    for (const [partition, store] of [...this.open]) {
      if (keep.has(partition)) continue;
      await this.restoring.get(partition)?.catch(() => undefined);
      this.open.delete(partition);
      this.options.metrics?.entries.remove({ store: this.name, partition: String(partition) });
      await store.close();
      this.options.logger.info({ store: this.name, partition }, 'state store closed: partition revoked');
    }
    const generation = this.generation;
    void (async () => {
      for (const partition of partitions) {
        if (this.closed || generation !== this.generation) return;
        await this.ready(partition).catch((error: unknown) => this.options.logger.warn({ err: error, store: this.name, partition }, 'restoring a state store failed; retried when the partition is consumed'));
      }
    })();
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
    let store = this.open.get(partition) ?? PartitionStore.open(dir);
    this.open.set(partition, store);
    const { low, high } = await o.source.bounds(partition);
    const reflected = store.changelogNext();
    let from = reflected ?? low;
    let kind: 'full' | 'catch-up' = reflected === undefined ? 'full' : 'catch-up';
    if (reflected !== undefined && (reflected > high || reflected < low)) {
      // The changelog is not the one this store was built from (recreated topic, records
      // deleted): the store cannot be trusted, it is rebuilt.
      o.logger.warn({ store: this.name, partition, reflected: reflected.toString(), low: low.toString(), high: high.toString() }, 'local state store does not match its changelog; rebuilding it from the changelog');
      await store.close();
      PartitionStore.destroy(dir);
      store = PartitionStore.open(dir);
      this.open.set(partition, store);
      from = low;
      kind = 'full';
    }
    let records = 0;
    await o.source.read(
      partition,
      from,
      high,
      (batch: KafkaMessage[]) => {
        const changes: StateChange[] = [];
        for (const m of batch) {
          const c = fromChangelogMessage(m);
          if (c) changes.push(c);
        }
        store.apply(changes, BigInt(batch[batch.length - 1]!.offset) + 1n);
        records += batch.length;
      },
      async () => undefined,
    );
    if (this.open.get(partition) !== store) throw new Error(`state store ${this.name} partition ${partition} was closed while restoring`);
    if (store.changelogNext() !== high) store.apply([], high);
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

  /** A pending view of the partition's state for one Kafka transaction (the partition must be ready). */
  begin(partition: number): StateTransaction {
    const store = this.open.get(partition);
    if (!store || !this.current.has(partition)) throw new Error(`state store ${this.name} partition ${partition} is not ready: call ready() after the assignment`);
    return new StateTransaction(partition, store);
  }

  /**
   * The transaction holding `txn`'s changelog records committed: its changes go to the
   * local store. `changelogNext` (the offset after the last changelog record written)
   * moves the store's changelog position; undefined keeps it (a later catch-up re-reads).
   */
  committed(txn: StateTransaction, changelogNext?: bigint): void {
    const store = this.open.get(txn.partition);
    if (!store) return; // revoked meanwhile: the changelog has the changes
    if (txn.size === 0 && changelogNext === undefined) return;
    store.apply(txn.changes(), changelogNext);
    const m = this.options.metrics;
    if (m) {
      if (txn.expiredCount > 0) m.expired.inc({ store: this.name }, txn.expiredCount);
      m.entries.set({ store: this.name, partition: String(txn.partition) }, store.count());
    }
  }

  /** Entries of an open partition store (for the metrics and tests). */
  count(partition: number): number | undefined {
    return this.open.get(partition)?.count();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current.clear();
    for (const store of this.open.values()) await store.close();
    this.open.clear();
    await this.options.source.close();
  }
}
