/**
 * Whether a batch tries the direct COPY into its table first (core/db/copy.ts): the sql
 * output keys it by Kafka partition, the file drops by file.
 * A refused direct COPY (the table holds one of the keys already: a replay, a producer's
 * duplicate, another pipeline writing the same table; or a row the table refuses) costs a
 * rolled-back COPY on top of the MERGE way, and in a replay every flush would pay it again.
 * So a refusal is remembered per partition: the next `backoff` flushes of that partition go
 * the MERGE way at once, and `backoff` doubles with each refusal in a row (1, 2, 4... up to
 * `maxBackoff`); one direct COPY that loads resets it. During a long replay the wasted COPY
 * is then at most one flush in `maxBackoff`, and after it the fast path is back within
 * `maxBackoff` flushes. Pure: no I/O, one instance per writer.
 */
export class DirectCopyGate {
  private readonly partitions = new Map<string, { skip: number; backoff: number }>();

  constructor(readonly maxBackoff = 64) {}

  /** Whether this flush of the partition tries the direct COPY (a skipped flush counts down the backoff). */
  shouldTry(partition: string): boolean {
    const state = this.partitions.get(partition);
    if (!state || state.skip === 0) return true;
    state.skip--;
    return false;
  }

  /** The table refused the partition's direct COPY: skip the next flushes (twice as many as after the refusal before). */
  refused(partition: string): void {
    const previous = this.partitions.get(partition);
    const backoff = previous ? Math.min(previous.backoff * 2, this.maxBackoff) : 1;
    this.partitions.set(partition, { skip: backoff, backoff });
  }

  /** The direct COPY loaded: try it on every flush again. */
  loaded(partition: string): void {
    this.partitions.delete(partition);
  }

  /** Flushes of the partition still to skip (for logs and tests). */
  skipping(partition: string): number {
    return this.partitions.get(partition)?.skip ?? 0;
  }
}
