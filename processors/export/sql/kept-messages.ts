import type { IHeaders } from 'kafkajs';
import type { ConsumedRecord } from '../../core/dlq/dead-letter.js';

type KeptMessage = ConsumedRecord['message'];

const CHUNK_BYTES = 1024 * 1024;

/**
 * The consumed messages of a batch's rows, kept for the rare row the database refuses at
 * flush time (its `sql_rejected` dead letter carries the original key, value, headers,
 * offset and timestamp). Holding the kafkajs message objects instead would keep, per row,
 * an object, two Buffer views and two strings, and through the views the whole fetch
 * response they were sliced from, until the batch is committed. Here key and value bytes
 * are copied into shared 1 MiB chunks, and per row only numbers are kept (headers only when
 * a message has some), so a fetch's memory is freed as soon as its records are consumed.
 * `get(i)` gives back a message equal to the one added. Pure: no I/O.
 */
export class KeptMessages {
  private readonly chunks: Buffer[] = [];
  private chunk: Buffer | undefined;
  private used = 0;
  /** Per row, 4 numbers: chunk index, start in it, key length, value length (-1: null). */
  private readonly refs: number[] = [];
  /** Per row: offset - `base` (a batch's offsets are one partition's, close together). */
  private readonly offsets: number[] = [];
  private base: bigint | undefined;
  private baseNumber = NaN;
  /** Per row: the timestamp as the broker gave it (ms), or NaN when it is not a plain number (kept in `odd`). */
  private readonly timestamps: number[] = [];
  private readonly odd = new Map<number, { timestamp?: string; offset?: string }>();
  private readonly headers = new Map<number, IHeaders>();

  get length(): number {
    return this.offsets.length;
  }

  add(message: KeptMessage): void {
    const row = this.offsets.length;
    const key = message.key ?? null;
    const value = message.value ?? null;
    const size = (key?.length ?? 0) + (value?.length ?? 0);
    if (!this.chunk || this.used + size > this.chunk.length) {
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, size));
      this.chunks.push(this.chunk);
      this.used = 0;
    }
    const start = this.used;
    if (key) this.used += key.copy(this.chunk, this.used);
    if (value) this.used += value.copy(this.chunk, this.used);
    this.refs.push(this.chunks.length - 1, start, key ? key.length : -1, value ? value.length : -1);

    // Offsets below 10^15 subtract exactly as numbers (no BigInt a row); the first one is the base.
    if (this.base === undefined) {
      this.base = BigInt(message.offset);
      this.baseNumber = message.offset.length < 16 ? Number(message.offset) : NaN;
    }
    const delta = message.offset.length < 16 && !Number.isNaN(this.baseNumber) ? Number(message.offset) - this.baseNumber : Number(BigInt(message.offset) - this.base);
    this.offsets.push(Number.isSafeInteger(delta) ? delta : NaN);
    const timestamp = Number(message.timestamp);
    this.timestamps.push(String(timestamp) === message.timestamp ? timestamp : NaN);
    if (Number.isNaN(this.offsets[row]!) || Number.isNaN(this.timestamps[row]!)) this.odd.set(row, { offset: message.offset, timestamp: message.timestamp });
    if (message.headers) {
      for (const _ in message.headers) {
        this.headers.set(row, message.headers);
        break;
      }
    }
  }

  /** The message of row `i`, as added (key and value are views of the kept bytes). */
  get(i: number): KeptMessage {
    if (i < 0 || i >= this.offsets.length) throw new RangeError(`no kept message ${i} (${this.offsets.length} kept)`);
    const [c, start, keyLength, valueLength] = this.refs.slice(i * 4, i * 4 + 4) as [number, number, number, number];
    const chunk = this.chunks[c]!;
    const keyEnd = start + Math.max(0, keyLength);
    const odd = this.odd.get(i);
    return {
      key: keyLength < 0 ? null : chunk.subarray(start, keyEnd),
      value: valueLength < 0 ? null : chunk.subarray(keyEnd, keyEnd + valueLength),
      headers: this.headers.get(i) ?? {},
      offset: odd?.offset ?? (this.base! + BigInt(this.offsets[i]!)).toString(),
      timestamp: odd?.timestamp ?? String(this.timestamps[i]),
    };
  }
}
