import type { Message } from 'kafkajs';
import { deadLetterMessage, type ConsumedRecord } from '../core/dlq/dead-letter.js';
import { DLQ_REASONS } from '../core/dlq/reasons.js';
import { isUnavailable } from '../core/errors/errors.js';
import { BLOCKING_RETRY, withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { DecodeError, type AvroDecoder } from './decoder.js';
import type { OutputRecord } from './outputs/output.js';
import type { PartitionBatch } from './partition-batch.js';
import type { StepOutcome } from './steps.js';

type Consumed = ConsumedRecord['message'];

/**
 * What happens to one consumed message, up to the open batch of its partition: decoded
 * (Avro through the registry, JSON, or raw bytes), run through the pipeline's processors,
 * then placed by the output, or dead-lettered with the reason of the step that refused it
 * (decode, a processor, the output's placement). No Kafka client here: the runner hands in
 * messages and takes the batch.
 */
export class RecordPath {
  private readonly decode: PipelineConfig['input']['config']['decode'];

  constructor(
    private readonly pipeline: PipelineConfig,
    private readonly decoder: AvroDecoder,
    private readonly log: Logger,
  ) {
    this.decode = pipeline.input.config.decode;
  }

  /**
   * One message into its partition's batch. Synchronous unless the registry must be asked
   * (a schema id not seen yet: waited out while the registry is away) or a processor is
   * async; then it returns the promise to wait for.
   */
  consume(batch: PartitionBatch, message: Consumed, prepared = false): Promise<void> | undefined {
    const { topic } = batch;
    if (!prepared && this.decode === 'avro_registry' && !this.decoder.ready(topic, message.value)) {
      return withRetry(() => this.decoder.prepare(topic, message.value), {
        policy: BLOCKING_RETRY,
        retriable: isUnavailable,
        onRetry: (error, attempt, retryInMs) => this.log.warn({ dependency: 'schema registry', attempt, retryInMs, err: error }, 'schema registry unavailable, waiting (nothing is dropped)'),
      }).then(() => this.consume(batch, message, true));
    }
    batch.consumedMessage(message.offset, message.value?.length ?? 0, Date.now(), Number(message.timestamp));
    let value: unknown;
    let reader: OutputRecord['reader'];
    try {
      if (this.decode === 'avro_registry') {
        const decoded = this.decoder.decode(topic, message.value);
        value = decoded.value;
        if (decoded.readerId !== undefined) reader = { id: decoded.readerId, schema: decoded.readerSchema };
      } else if (this.decode === 'json') {
        value = parseJson(message.value);
      } else value = message.value;
    } catch (error) {
      if (error instanceof DecodeError) return this.deadLetter(batch, message, error.reason, error.message, 'input');
      throw error;
    }
    const outcome = batch.steps.run(value);
    if (outcome instanceof Promise) return outcome.then((o) => this.place(batch, message, o, reader));
    return this.place(batch, message, outcome, reader);
  }

  /** A processed record into the output's batch (or the DLQ, or nowhere when a processor dropped it). */
  private place(batch: PartitionBatch, message: Consumed, outcome: StepOutcome, reader: OutputRecord['reader']): undefined {
    if (outcome.kind === 'drop') return void batch.drop(outcome.by);
    if (outcome.kind === 'dead') return this.deadLetter(batch, message, outcome.reason, outcome.error, outcome.by);
    const record: OutputRecord = { value: outcome.value, topic: batch.topic, partition: batch.partition, offset: message.offset, message };
    if (reader) record.reader = reader;
    const refused = batch.output.add(record);
    if (refused) this.deadLetter(batch, message, refused.reason, refused.error, 'output');
    return undefined;
  }

  private deadLetter(batch: PartitionBatch, message: Consumed, reason: string, error: string, by: string): undefined {
    batch.deadLetter(this.deadLetterFor({ topic: batch.topic, partition: batch.partition, message }, reason, error, by), reason);
    return undefined;
  }

  /** The DLQ record of a consumed one, as the pipeline's `dlq` section wants it (original kept or not, extra headers). */
  deadLetterFor(record: ConsumedRecord, reason: string, error: string, by: string): Message {
    const dlq = this.pipeline.dlq;
    const letter = deadLetterMessage(record, { reason, error }, `${this.pipeline.name}/${by}`);
    if (!dlq.include_original) {
      letter.value = null;
      for (const name of Object.keys(record.message.headers ?? {})) delete (letter.headers as Record<string, unknown>)[name];
    }
    Object.assign(letter.headers!, dlq.headers);
    return letter;
  }
}

function parseJson(value: Buffer | null): unknown {
  if (!value) throw new DecodeError(DLQ_REASONS.decodeError, 'value is null (a tombstone)');
  try {
    return JSON.parse(value.toString('utf8'));
  } catch (error) {
    throw new DecodeError(DLQ_REASONS.decodeError, `value is not JSON: ${(error as Error).message}`);
  }
}
