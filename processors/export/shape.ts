import { LakeValueError } from '../core/parquet/columns.js';
import { avroLakeMapping, KAFKA_METADATA_COLUMNS, type LakeColumn, type LakeRow, type LakeSchema } from '../core/parquet/lake-schema.js';
import type { S3OutputConfig } from './outputs/s3.js';
import { ConfigError } from '../core/errors/errors.js';

/**
 * What a file's rows look like. With `columns` in the output config, every record is cut
 * to those typed columns (one shape for the whole run). Without them, the shape follows
 * the reader Avro schema (flattened, plus the Kafka coordinates), one shape per schema:
 * a new, incompatible schema gets files of its own.
 */
export interface RowShape {
  /** Identity of the shape: records of different shapes never share a file. */
  id: string;
  schema: LakeSchema;
  toRow(value: unknown, kafka: { topic: string; partition: number; offset: string }): LakeRow;
}

export interface ShapeSource {
  /** The shape of a record read with `readerSchema` (undefined when the input is not Avro). */
  shapeFor(readerId: number | undefined, readerSchema: unknown): RowShape;
}

export function shapeSource(output: Pick<S3OutputConfig, 'columns'>, decode: 'avro_registry' | 'json' | 'raw', pipelineFile: string): ShapeSource {
  if (output.columns) {
    const shape = declaredShape(output.columns);
    return { shapeFor: () => shape };
  }
  if (decode !== 'avro_registry') {
    throw new ConfigError([
      {
        source: `file ${pipelineFile}`,
        setting: 'output.s3.columns',
        message: `there are no columns and input.kafka.decode is ${decode}, so nothing describes the file's columns`,
        fix: 'declare the columns (name and type of each) under output.s3.columns, or use decode: avro_registry',
      },
    ]);
  }
  const cache = new Map<number, RowShape>();
  return {
    shapeFor(readerId, readerSchema) {
      if (readerId === undefined) throw new LakeValueError('(record)', 'the record has no Avro schema to derive columns from');
      let shape = cache.get(readerId);
      if (!shape) {
        const mapping = avroLakeMapping(readerSchema, { extraColumns: KAFKA_METADATA_COLUMNS });
        shape = {
          id: `avro:${readerId}`,
          schema: mapping.schema,
          toRow: (value, k) => mapping.toRow(value, { kafka_topic: k.topic, kafka_partition: k.partition, kafka_offset: BigInt(k.offset) }),
        };
        cache.set(readerId, shape);
      }
      return shape;
    },
  };
}

function declaredShape(columns: NonNullable<S3OutputConfig['columns']>): RowShape {
  const schema: LakeSchema = { columns: columns.map((c): LakeColumn => ({ name: c.name, type: c.type, nullable: c.nullable })) };
  const names = columns.map((c) => c.name);
  return {
    id: 'columns',
    schema,
    toRow(value) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new LakeValueError('(record)', `the record is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}, not an object with the declared columns`);
      }
      const record = value as Record<string, unknown>;
      const row: LakeRow = {};
      for (const name of names) row[name] = record[name] as LakeRow[string];
      return row;
    },
  };
}
