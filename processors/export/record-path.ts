import type { Logger } from '../core/log/logger.js';
import { LakeValueError } from '../core/parquet/columns.js';
import { LakeSchemaError, LakeValueShapeError } from '../core/parquet/lake-schema.js';
import { TemplateValueError } from '../core/pipeline/path-template.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { AvroDecoder, DecodeError, type SchemaLookup } from './decoder.js';
import { PartitionBatch, type OutputSettings } from './partition-batch.js';
import { shapeSource, type ShapeSource } from './shape.js';
import { StepChain, type PartitionSteps, type StepOutcome } from './steps.js';

/**
 * The record path of an export pipeline, one consumed value at a time: decode (Avro through
 * the registry, JSON or raw) -> processors -> placement into its file (the row cut to the
 * output's columns, the object key rendered) -> or the DLQ with a reason code, or dropped.
 *
 * No I/O but the decoder's schema lookups (`prepare`), so it runs the same against a real
 * registry in the runner and against schema files in `sluice test`.
 */

export type RecordOutcome =
  | { kind: 'placed'; value: unknown }
  | { kind: 'dropped'; by: string }
  | { kind: 'dead'; reason: string; error: string; by: string };

interface DecodedValue {
  value: unknown;
  readerId: number | undefined;
  readerSchema: unknown;
}

export class RecordPath {
  readonly decoder: AvroDecoder;
  readonly chain: StepChain;
  readonly shapes: ShapeSource;
  readonly out: OutputSettings;

  constructor(
    readonly pipeline: PipelineConfig,
    registry: SchemaLookup,
    logger?: Logger,
  ) {
    const input = pipeline.input.config;
    const output = pipeline.output.config;
    this.decoder = new AvroDecoder(registry);
    this.chain = new StepChain(pipeline.pipeline.processors, logger);
    this.shapes = shapeSource(output, input.decode, pipeline.file);
    this.out = {
      path: output.path,
      format: output.format,
      compression: output.compression,
      timeField: output.time_field?.split('.'),
      timeFormat: output.time_format,
      metadata: { 'sluice.pipeline': pipeline.name },
    };
  }

  /** A new open batch of one input partition. */
  openBatch(topic: string, partition: number, steps: PartitionSteps = this.chain.forPartition()): PartitionBatch {
    return new PartitionBatch(topic, partition, steps, this.out);
  }

  /** Fetches what decoding `value` needs (schemas); a registry fault throws (the caller retries). */
  async prepare(topic: string, value: Buffer | null): Promise<void> {
    if (this.pipeline.input.config.decode === 'avro_registry' && !this.decoder.ready(topic, value)) await this.decoder.prepare(topic, value);
  }

  /** Decodes a value as the input declares; a DecodeError is a DLQ case (`not_avro`, `unknown_schema`, `decode_error`). */
  decode(topic: string, value: Buffer | null): DecodedValue {
    const decode = this.pipeline.input.config.decode;
    if (decode === 'avro_registry') {
      const d = this.decoder.decode(topic, value);
      return { value: d.value, readerId: d.readerId, readerSchema: d.readerSchema };
    }
    if (decode === 'json') return { value: parseJson(value), readerId: undefined, readerSchema: undefined };
    return { value, readerId: undefined, readerSchema: undefined };
  }

  /**
   * One value through decode and the processors and into `batch` (prepare() first for Avro).
   * Synchronous unless a processor had to ask jsonata; then a promise.
   */
  process(batch: PartitionBatch, value: Buffer | null, offset: string): RecordOutcome | Promise<RecordOutcome> {
    let decoded: DecodedValue;
    try {
      decoded = this.decode(batch.topic, value);
    } catch (error) {
      if (error instanceof DecodeError) return { kind: 'dead', reason: error.reason, error: error.message, by: 'input' };
      throw error;
    }
    const outcome = batch.steps.run(decoded.value);
    if (outcome instanceof Promise) return outcome.then((o) => this.place(batch, o, decoded, offset));
    return this.place(batch, outcome, decoded, offset);
  }

  /** A processed record into its file; a value the columns or the key cannot hold is a DLQ case. */
  place(batch: PartitionBatch, outcome: StepOutcome, decoded: Pick<DecodedValue, 'readerId' | 'readerSchema'>, offset: string): RecordOutcome {
    if (outcome.kind === 'drop') return { kind: 'dropped', by: outcome.by };
    if (outcome.kind === 'dead') return outcome;
    try {
      batch.add(outcome.value, this.shapes.shapeFor(decoded.readerId, decoded.readerSchema), offset);
    } catch (error) {
      if (error instanceof LakeValueError || error instanceof LakeValueShapeError || error instanceof LakeSchemaError) {
        return { kind: 'dead', reason: 'schema_mismatch', error: (error as Error).message, by: 'output' };
      }
      if (error instanceof TemplateValueError) return { kind: 'dead', reason: 'path_error', error: error.message, by: 'output' };
      throw error;
    }
    return { kind: 'placed', value: outcome.value };
  }
}

export function parseJson(value: Buffer | null): unknown {
  if (!value) throw new DecodeError('decode_error', 'value is null (a tombstone)');
  try {
    return JSON.parse(value.toString('utf8'));
  } catch (error) {
    throw new DecodeError('decode_error', `value is not JSON: ${(error as Error).message}`);
  }
}
