/**
 * An in-memory index a processor keeps beside each partition's store (StateStoresOptions.index)
 * over the keys that start with one of its `prefixes`, so that it can ask "may the store hold
 * such a key?" without reading the store: a read of a random key is a B-tree descent to a page
 * seldom cached (through LMDB's memory map it also leaves 64 KiB or more of the file resident in
 * the process, BENCHMARKS.md "Live: memory"), while a read the index answers costs nothing.
 *
 * The index is a filter with no false negatives: it holds (at least) every key with its
 * prefixes that the partition's transactions can see (the store's, those of committed changes
 * not yet written, those put by the open transactions). A "maybe" must be confirmed by an exact
 * read (StateTransaction.has): an index may answer by fingerprint, and it may keep keys that were
 * deleted since (an owner drops them by its own rule, e.g. when their window closed). StateStores
 * keeps it in step:
 *   - made current (restore, catch-up, rebuild): `clear`, then `add` of every key the store holds
 *     with one of the prefixes;
 *   - StateTransaction.put of a key with one of the prefixes: `add`; when that transaction aborts
 *     (and with it every later one of the partition), `remove` of each key whose `add` said it was
 *     new to the index, newest first, so the index holds no more than before the transaction.
 */
export interface KeyIndex {
  readonly prefixes: readonly string[];
  /** Records the key; whether the index did not hold it (as it identifies keys) before. */
  add(key: string): boolean;
  /** Takes back an `add` that returned true (its transaction aborted). */
  remove(key: string): void;
  /** Forgets every key (the partition is made current again from its store). */
  clear(): void;
}

/** Whether `key` starts with one of the index's prefixes. */
export function indexes(index: KeyIndex, key: string): boolean {
  for (const p of index.prefixes) if (key.startsWith(p)) return true;
  return false;
}
