import type { Message } from 'kafkajs';
import { isRebalancing } from '../core/errors/errors.js';
import { RetryAbandonedError } from '../core/errors/retry.js';
import { UploadAbandonedError } from '../core/s3/upload.js';
import type { Logger } from '../core/log/logger.js';
import type { Output, OutputRecord, PreparedWrite } from './outputs/output.js';
import type { PartitionBatch } from './partition-batch.js';

/** The partition moved to another member while its flush ran: nothing was committed. */
export class FlushAbandonedError extends Error {}

/** The narrow functions a flush needs from the runner (fakes in unit tests). */
export interface FlushPorts {
  output: Output;
  /** Sends dead letters to the DLQ and waits for their acks (blocking on a broker outage while `owned`). */
  sendDeadLetters(messages: Message[], owned: () => boolean, heartbeat: (() => Promise<void>) | undefined): Promise<void>;
  /** Commits the consumer group's offset of a partition (kafkajs refuses a member of an old generation). */
  commitOffset(topic: string, partition: number, next: bigint): Promise<void>;
  /** The dead letter of a row the target refused after placing it. */
  deadLetterFor(record: OutputRecord, reason: string, error: string): Message;
  logger: Logger;
}

export interface FlushContext {
  /** Whether the partition is still this member's (checked between steps). */
  owned(): boolean;
  /** Aborted when the group starts rebalancing. */
  signal: AbortSignal;
  heartbeat?: (() => Promise<void>) | undefined;
  /** What this member knows as the partition's committed offset (the fence of outputs that store offsets). */
  committedOffset: bigint | undefined;
}

export type FlushReport =
  | { result: 'committed'; next: bigint; records: number; deadLetters: { reason: string }[]; rejected: number; bytes: number; objects: number; phases: Record<string, number> }
  | { result: 'lost'; error: unknown }
  | { result: 'failed'; error: unknown };

/**
 * Makes one partition batch durable, in the order the Output interface defines: seal ->
 * write (the output's step 1) -> dead letters (the batch's and the rows the target refused)
 * -> commit (the output's, then the consumer group's when the output does not store
 * offsets itself). Nothing is committed unless every step before succeeded while the
 * partition stayed this member's. A failure says 'lost' (the partition moved: its new owner
 * reads the batch again) or 'failed' (the runner seeks back to the batch's first offset).
 */
export async function flushBatch(batch: PartitionBatch, ports: FlushPorts, ctx: FlushContext): Promise<FlushReport> {
  batch.seal();
  const next = batch.nextOffset;
  if (next === undefined || batch.startOffset === undefined) throw new Error('flushBatch of a batch that consumed nothing');
  const { output } = ports;
  const phases: Record<string, number> = {};
  let prepared: PreparedWrite | undefined;
  let step = Date.now();
  const lap = (name: string) => {
    const now = Date.now();
    phases[name] = now - step;
    step = now;
  };
  try {
    prepared = await output.write(batch.output, {
      topic: batch.topic,
      partition: batch.partition,
      startOffset: batch.startOffset,
      committedOffset: ctx.committedOffset,
      nextOffset: next,
      owned: ctx.owned,
      signal: ctx.signal,
      ...(ctx.heartbeat ? { heartbeat: ctx.heartbeat } : {}),
      logger: ports.logger,
    });
    lap('write');
    const letters = batch.deadLetters.map((d) => d.message);
    for (const r of prepared.rejected) letters.push(ports.deadLetterFor(r.record, r.reason, r.error));
    if (letters.length > 0) await ports.sendDeadLetters(letters, ctx.owned, ctx.heartbeat);
    lap('deadLetters');
    if (!ctx.owned()) throw new FlushAbandonedError('partition lost before the commit');
    await prepared.commit();
    if (output.offsets === 'consumer') await ports.commitOffset(batch.topic, batch.partition, next);
    else {
      // The output's transaction holds the offsets; the group's copy only feeds lag monitors.
      await ports.commitOffset(batch.topic, batch.partition, next).catch((error: unknown) => ports.logger.debug({ err: error, topic: batch.topic, partition: batch.partition }, 'group offset not updated (the output holds the offsets)'));
    }
    lap('commit');
  } catch (error) {
    if (prepared) await prepared.abort().catch((e: unknown) => ports.logger.warn({ err: e }, 'output abort failed'));
    const lost = error instanceof FlushAbandonedError || error instanceof UploadAbandonedError || error instanceof RetryAbandonedError || isRebalancing(error) || !ctx.owned();
    return { result: lost ? 'lost' : 'failed', error };
  }
  const { stats } = prepared;
  return {
    result: 'committed',
    next,
    records: batch.records - prepared.rejected.length,
    deadLetters: [...batch.deadLetters.map((d) => ({ reason: d.reason })), ...prepared.rejected.map((r) => ({ reason: r.reason }))],
    rejected: prepared.rejected.length,
    bytes: stats.bytes,
    objects: stats.objects,
    phases: { ...stats.phases, ...phases },
  };
}
