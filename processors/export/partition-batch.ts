import type { Message } from 'kafkajs';
import type { OutputBatch } from './outputs/output.js';
import type { PartitionSteps } from './steps.js';

/**
 * The open batch of one input partition, as the runner accounts for it: the offsets it
 * covers (where a replay starts, what the flush commits), what it consumed (count, bytes,
 * age: what the batch policy reads), the dead letters waiting to be sent and the records
 * processors dropped. The records themselves are in `output`, in the output's own form.
 * Nothing here does I/O.
 */
export class PartitionBatch {
  readonly deadLetters: { message: Message; reason: string }[] = [];
  readonly dropped = new Map<string, number>();
  /** Input bytes of the records in this batch (what `batching.bytes` counts). */
  bytes = 0;
  /** Messages consumed into this batch (records, dead letters and dropped). */
  consumed = 0;
  /** When the first message of this batch arrived (ms), for `batching.period`. */
  openedAt: number | undefined;
  /** The offset to commit once this batch is durable. */
  nextOffset: bigint | undefined;
  /** Kafka timestamp (ms) of the batch's first message: the oldest uncommitted record, for lag in seconds. */
  oldestTimestamp: number | undefined;
  /** The offset of the batch's first message: where to read again if the batch fails. */
  startOffset: string | undefined;
  /** Set by seal(): a batch is flushed once; a second flush of it would commit nothing written. */
  sealed = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly steps: PartitionSteps,
    readonly output: OutputBatch,
  ) {}

  /** Records placed in the output. */
  get records(): number {
    return this.output.rows;
  }

  /** Marks a message as consumed into this batch (whatever its outcome). */
  consumedMessage(offset: string, size: number, now: number, timestamp?: number): void {
    this.openedAt ??= now;
    if (timestamp !== undefined) this.oldestTimestamp ??= timestamp;
    this.startOffset ??= offset;
    this.consumed++;
    this.bytes += size;
    this.nextOffset = BigInt(offset) + 1n;
  }

  /** After a whole fetched batch: its last offset may be a transaction marker past the last record. */
  consumedUpTo(lastOffset: string): void {
    const next = BigInt(lastOffset) + 1n;
    if (this.nextOffset === undefined || next > this.nextOffset) this.nextOffset = next;
  }

  deadLetter(message: Message, reason: string): void {
    this.deadLetters.push({ message, reason });
  }

  drop(by: string): void {
    this.dropped.set(by, (this.dropped.get(by) ?? 0) + 1);
  }

  /** Whether anything waits to be made durable (records, dead letters, or an offset to commit). */
  get pending(): boolean {
    return this.consumed > 0;
  }

  /** Marks the batch as being flushed; the second call throws (a batch is flushed once). */
  seal(): void {
    if (this.sealed) throw new Error('a partition batch is sealed once');
    this.sealed = true;
  }
}
