import type { Message } from 'kafkajs';
import { isInteger, isSafeNumber, parse as parseLossless } from 'lossless-json';
import { deadLetterMessage, type ConsumedRecord } from '../core/dlq/dead-letter.js';
import { DLQ_REASONS } from '../core/dlq/reasons.js';
import { isUnavailable } from '../core/errors/errors.js';
import { BLOCKING_RETRY, withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { valueDecoding, type ValueDecoding } from '../core/pipeline/input-config.js';
import { AvroDecoder, DecodeError, type SchemaLookup } from './decoder.js';
import type { Output, OutputRecord } from './outputs/output.js';
import { PartitionBatch } from './partition-batch.js';
import { StepChain, type PartitionSteps } from './steps.js';

/** A consumed message as the record path reads it (kafkajs's KafkaMessage fits). */
export type ConsumedMessage = ConsumedRecord['message'];

export type RecordOutcome =
  | { kind: 'placed'; value: unknown }
  | { kind: 'dropped'; by: string }
  | { kind: 'dead'; reason: string; error: string; by: string };

interface DecodedValue {
  value: unknown;
  reader: OutputRecord['reader'];
}

/**
 * The record path of an export pipeline, one consumed message at a time: decode (Avro
 * through the registry, JSON or raw) -> processors -> placement by the output (the row cut
 * to its columns, the object key rendered...) -> or the DLQ with a reason code
 * (core/dlq/reasons.ts), or dropped. No Kafka client and no I/O but the decoder's schema
 * lookups (`prepare`), so it runs the same against a real registry in the runner and
 * against schema files in `sluice test`.
 */
export class RecordPath {
  readonly decoder: AvroDecoder;
  readonly chain: StepChain;

  constructor(
    readonly pipeline: PipelineConfig,
    registry: SchemaLookup,
    private readonly output: Pick<Output, 'openBatch'>,
    /** Where `log` processors write (the pipeline's logger). */
    logger?: Logger,
    /** How values decode: the input's (inputs/input.ts); the pipeline's input config says when absent. */
    readonly decoding: ValueDecoding = valueDecoding(pipeline),
  ) {
    this.decoder = new AvroDecoder(registry);
    this.chain = new StepChain(pipeline.pipeline.processors, logger);
  }

  /** A new open batch of one input partition (the processors' state: a fresh chain unless given). */
  openBatch(topic: string, partition: number, steps: PartitionSteps = this.chain.forPartition()): PartitionBatch {
    return new PartitionBatch(topic, partition, steps, this.output.openBatch(topic, partition));
  }

  /** Fetches what decoding `value` needs (schemas); a registry fault throws (the caller retries). */
  async prepare(topic: string, value: Buffer | null): Promise<void> {
    if (this.decoding === 'avro_registry' && !this.decoder.ready(topic, value)) await this.decoder.prepare(topic, value);
  }

  /** Whether `prepare` has nothing to fetch for the value. */
  ready(topic: string, value: Buffer | null): boolean {
    return this.decoding !== 'avro_registry' || this.decoder.ready(topic, value);
  }

  /** Decodes a value as the input declares; a DecodeError is a DLQ case (`not_avro`, `unknown_schema`, `decode_error`). */
  decode(topic: string, value: Buffer | null): DecodedValue {
    const decode = this.decoding;
    if (decode === 'avro_registry') {
      const d = this.decoder.decode(topic, value);
      return { value: d.value, reader: { id: d.readerId, schema: d.readerSchema } };
    }
    if (decode === 'json') return { value: parseJson(value), reader: undefined };
    return { value, reader: undefined };
  }

  /**
   * One message through decode and the processors and into `batch`'s output (prepare()
   * first for Avro). Counts it as consumed by the batch; the caller dead-letters a 'dead'
   * outcome. Synchronous unless a processor had to ask jsonata; then a promise.
   */
  process(batch: PartitionBatch, message: ConsumedMessage): RecordOutcome | Promise<RecordOutcome> {
    batch.consumedMessage(message.offset, message.value?.length ?? 0, Date.now(), Number(message.timestamp));
    let decoded: DecodedValue;
    try {
      decoded = this.decode(batch.topic, message.value);
    } catch (error) {
      if (error instanceof DecodeError) return { kind: 'dead', reason: error.reason, error: error.message, by: 'input' };
      throw error;
    }
    const outcome = batch.steps.run(decoded.value);
    if (outcome instanceof Promise) return outcome.then((o) => this.place(batch, message, o, decoded.reader));
    return this.place(batch, message, outcome, decoded.reader);
  }

  /** A processed record into the output's batch; a value the output cannot place is a DLQ case. */
  private place(batch: PartitionBatch, message: ConsumedMessage, outcome: Awaited<ReturnType<PartitionSteps['run']>>, reader: OutputRecord['reader']): RecordOutcome {
    if (outcome.kind === 'drop') return { kind: 'dropped', by: outcome.by };
    if (outcome.kind === 'dead') return outcome;
    const record: OutputRecord = { value: outcome.value, topic: batch.topic, partition: batch.partition, offset: message.offset, message };
    if (reader) record.reader = reader;
    const refused = batch.output.add(record);
    if (refused) return { kind: 'dead', reason: refused.reason, error: refused.error, by: 'output' };
    return { kind: 'placed', value: outcome.value };
  }
}

/**
 * The runner's use of the record path: the registry waited out while it is away, and a
 * message's outcome accounted in its batch (dropped, or a dead letter as the pipeline's
 * `dlq` section wants it).
 */
export class RecordConsumer {
  constructor(
    readonly path: RecordPath,
    private readonly log: Logger,
  ) {}

  /** One message into its partition's batch; a promise only when the registry or a processor must be waited for. */
  consume(batch: PartitionBatch, message: ConsumedMessage): Promise<void> | undefined {
    if (!this.path.ready(batch.topic, message.value)) {
      return withRetry(() => this.path.prepare(batch.topic, message.value), {
        policy: BLOCKING_RETRY,
        retriable: isUnavailable,
        onRetry: (error, attempt, retryInMs) => this.log.warn({ dependency: 'schema registry', attempt, retryInMs, err: error }, 'schema registry unavailable, waiting (nothing is dropped)'),
      }).then(() => this.consume(batch, message));
    }
    const outcome = this.path.process(batch, message);
    if (outcome instanceof Promise) return outcome.then((o) => this.account(batch, message, o));
    this.account(batch, message, outcome);
    return undefined;
  }

  private account(batch: PartitionBatch, message: ConsumedMessage, outcome: RecordOutcome): void {
    if (outcome.kind === 'dropped') batch.drop(outcome.by);
    else if (outcome.kind === 'dead') batch.deadLetter(this.deadLetterFor({ topic: batch.topic, partition: batch.partition, message }, outcome.reason, outcome.error, outcome.by), outcome.reason);
  }

  /** The DLQ record of a consumed one, as the pipeline's `dlq` section wants it (original kept or not, extra headers). */
  deadLetterFor(record: ConsumedRecord, reason: string, error: string, by: string): Message {
    const { dlq, name } = this.path.pipeline;
    const letter = deadLetterMessage(record, { reason, error }, `${name}/${by}`);
    if (!dlq.include_original) {
      letter.value = null;
      for (const header of Object.keys(record.message.headers ?? {})) delete (letter.headers as Record<string, unknown>)[header];
    }
    Object.assign(letter.headers!, dlq.headers);
    return letter;
  }
}

/** 16 digits or more in a row: a number JSON.parse may round (beyond 2^53) could be there. */
const LONG_DIGITS = /\d{16}/;

/**
 * A JSON value; integers beyond 2^53 come out exact, as BigInt (lossless-json, used only
 * when the text holds a run of 16 digits: JSON.parse is several times faster).
 */
export function parseJson(value: Buffer | null): unknown {
  if (!value) throw new DecodeError(DLQ_REASONS.decodeError, 'value is null (a tombstone)');
  try {
    const text = value.toString('utf8');
    if (!LONG_DIGITS.test(text)) return JSON.parse(text);
    return parseLossless(text, null, (n) => (isSafeNumber(n) ? Number(n) : isInteger(n) ? BigInt(n) : Number(n)));
  } catch (error) {
    throw new DecodeError(DLQ_REASONS.decodeError, `value is not JSON: ${(error as Error).message}`);
  }
}
