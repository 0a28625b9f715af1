/**
 * When a partition's open batch is flushed: `count` records placed, `bytes` of input
 * consumed, or `period` ms after its first message, whichever comes first (the output's
 * `batching` block). Pure: the runner asks it after each record and from its idle timer.
 */
export class BatchPolicy {
  constructor(
    readonly count: number,
    readonly bytes: number,
    readonly period: number,
  ) {}

  /** Full: flush now, before the next record (a full batch also waits for the previous flush: backpressure). */
  full(batch: { records: number; bytes: number }): boolean {
    return batch.records >= this.count || batch.bytes >= this.bytes;
  }

  /** Old enough: its first message arrived `period` ago (a quiet partition still lands and commits). */
  due(batch: { openedAt: number | undefined }, now: number): boolean {
    return batch.openedAt !== undefined && now - batch.openedAt >= this.period;
  }
}
