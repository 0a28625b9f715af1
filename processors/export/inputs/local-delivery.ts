import type { Logger } from '../../core/log/logger.js';
import type { ConsumedMessage } from '../record-path.js';
import { StreamDeadLetters } from '../dead-letters.js';
import type { InputBatch, InputContext, InputHandler } from './input.js';

/**
 * Delivery for inputs with no durable position (stdin, generate; `offsets: 'none'` in
 * input.ts): the records a source yields get increasing offsets on one partition and go to
 * the runner in runs; each stays held in memory until the runner commits past it, and a seek
 * (a flush that failed, a record that threw) delivers the held ones again from there: at
 * least once within the process. When the source is exhausted the runner is told
 * (`drained`, so it flushes at once) and `ended` resolves once everything is committed.
 *
 * A flush that fails `maxAttempts` times in a row at the same offset ends the delivery
 * (`ended` rejects): a run that cannot write does not spin for ever. Retries back off.
 */

/** Where the records come from: `next` resolves with at least one new record, or an empty list at the end. */
export interface RecordSource {
  next(max: number): Promise<ConsumedRecordInput[]>;
  /** Stops producing (the run is stopping); a pending `next` resolves with []. */
  close(): void;
}

/** A record as a source yields it; the delivery gives it its offset. */
export interface ConsumedRecordInput {
  value: Buffer | null;
  key?: Buffer | null;
  /** The offset; the next after the previous record's when absent. */
  offset?: bigint;
}

export interface LocalDeliveryOptions {
  topic: string;
  partition?: number;
  /** Most records a run hands the runner at once. */
  chunk?: number;
  maxAttempts?: number;
  /** Backoff before the first redelivery (doubles each attempt, up to 8 s). */
  retryDelayMs?: number;
  logger: Logger;
}

export class LocalDelivery {
  readonly topic: string;
  readonly partition: number;
  readonly ended: Promise<void>;
  private readonly chunk: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly log: Logger;
  /** Delivered and not yet committed, in offset order. */
  private held: ConsumedMessage[] = [];
  /** The offset the next delivery starts at. */
  private position = 0n;
  /** The offset the next new record gets. */
  private nextOffset = 0n;
  private exhausted = false;
  private drainedSaid = false;
  private stopping = false;
  /** Bumped by every seek: a run handed out before it is stale. */
  private generation = 0;
  private pendingSeek: bigint | undefined;
  private failedAt: bigint | undefined;
  private failures = 0;
  private wake: (() => void) | undefined;
  private resolveEnded!: () => void;
  private rejectEnded!: (error: Error) => void;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly source: RecordSource,
    o: LocalDeliveryOptions,
  ) {
    this.topic = o.topic;
    this.partition = o.partition ?? 0;
    this.chunk = o.chunk ?? 1000;
    this.maxAttempts = o.maxAttempts ?? 5;
    this.retryDelayMs = o.retryDelayMs ?? 500;
    this.log = o.logger;
    this.ended = new Promise<void>((resolve, reject) => {
      this.resolveEnded = resolve;
      this.rejectEnded = reject;
    });
    // The runner awaits it; an unhandled rejection before it does must not crash the process.
    this.ended.catch(() => undefined);
  }

  /** Starts the delivery loop (returns at once). */
  start(handler: InputHandler): void {
    this.loop = this.run(handler).catch((error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      handler.crashed(e);
      this.rejectEnded(e);
    });
  }

  /** Everything before `next` is durable: release it. */
  commit(next: bigint): void {
    let drop = 0;
    while (drop < this.held.length && BigInt(this.held[drop]!.offset) < next) drop++;
    if (drop > 0) this.held = this.held.slice(drop);
    if (this.failedAt !== undefined && next > this.failedAt) {
      this.failedAt = undefined;
      this.failures = 0;
    }
    this.poke();
  }

  /** Delivers again from `offset` (the held records from there). */
  seek(offset: string): void {
    const at = BigInt(offset);
    this.generation++;
    this.pendingSeek = at;
    this.failures = this.failedAt === at ? this.failures + 1 : 1;
    this.failedAt = at;
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.source.close();
    this.poke();
    await this.loop;
  }

  /** Records held for a retry (delivered, not committed). */
  get holding(): number {
    return this.held.length;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  private async run(handler: InputHandler): Promise<void> {
    while (!this.stopping) {
      if (this.pendingSeek !== undefined) {
        if (this.failures >= this.maxAttempts) {
          throw new Error(`the records from offset ${this.failedAt} of ${this.topic} failed to flush ${this.failures} times in a row (the warnings above say why); nothing after them was written`);
        }
        this.position = this.pendingSeek;
        this.pendingSeek = undefined;
        this.drainedSaid = false;
        const delay = Math.min(8000, this.retryDelayMs * 2 ** (this.failures - 1));
        this.log.warn({ topic: this.topic, offset: this.position.toString(), attempt: this.failures + 1, retryInMs: delay }, 'delivering the held records again');
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      let run = this.fromHeld();
      if (run.length === 0 && !this.exhausted) {
        const fresh = await this.source.next(this.chunk);
        if (this.stopping) return;
        if (fresh.length === 0) this.exhausted = true;
        for (const r of fresh) {
          const offset = r.offset ?? this.nextOffset;
          this.nextOffset = offset + 1n;
          this.held.push({ key: r.key ?? null, value: r.value, headers: {}, offset: offset.toString(), timestamp: String(Date.now()) } as ConsumedMessage);
        }
        run = this.fromHeld();
      }
      if (run.length === 0) {
        if (this.exhausted) {
          if (this.held.length === 0) {
            this.resolveEnded();
            return;
          }
          if (!this.drainedSaid) {
            this.drainedSaid = true;
            handler.drained();
          }
        }
        await this.idle();
        continue;
      }
      const generation = this.generation;
      const last = run[run.length - 1]!.offset;
      await handler.batch(this.batchOf(run, generation));
      if (generation === this.generation) this.position = BigInt(last) + 1n;
    }
  }

  /** Held records from the position on, up to a chunk. */
  private fromHeld(): ConsumedMessage[] {
    const out: ConsumedMessage[] = [];
    for (const m of this.held) {
      if (BigInt(m.offset) < this.position) continue;
      out.push(m);
      if (out.length >= this.chunk) break;
    }
    return out;
  }

  private batchOf(messages: ConsumedMessage[], generation: number): InputBatch {
    const last = messages[messages.length - 1]!.offset;
    return {
      topic: this.topic,
      partition: this.partition,
      messages,
      highWatermark: this.nextOffset.toString(),
      lastOffset: () => last,
      heartbeat: async () => undefined,
      resolveOffset: () => undefined,
      isRunning: () => !this.stopping,
      isStale: () => generation !== this.generation,
    };
  }
}

/**
 * What every local input (stdin, generate) shares: no broker to connect to or check, no
 * durable position (`offsets: 'none'`), a delivery that holds records until the runner
 * commits past them, and dead letters as JSON lines on stderr.
 */
export abstract class LocalInput {
  readonly offsets = 'none' as const;
  readonly deadLetters: StreamDeadLetters;
  protected readonly delivery: LocalDelivery;

  constructor(source: RecordSource, topic: string, ctx: InputContext) {
    this.deadLetters = new StreamDeadLetters(ctx.stderr ?? process.stderr);
    this.delivery = new LocalDelivery(source, { topic, logger: ctx.logger });
  }

  async connect(): Promise<void> {}

  async run(handler: InputHandler): Promise<void> {
    this.delivery.start(handler);
  }

  async commit(_topic: string, _partition: number, next: bigint): Promise<void> {
    this.delivery.commit(next);
  }

  seek(_topic: string, _partition: number, offset: string): void {
    this.delivery.seek(offset);
  }

  async check(): Promise<void> {}

  async stop(): Promise<void> {
    await this.delivery.stop();
  }
}
