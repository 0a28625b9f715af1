import { valueDecoding } from '../../core/pipeline/input-config.js';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { defineComponent } from '../../core/pipeline/component.js';
import { ParquetEncodePool } from '../../core/parquet/encode-pool.js';
import { createS3Client } from '../../core/s3/client.js';
import { uploadDurably } from '../../core/s3/upload.js';
import type { Logger } from '../../core/log/logger.js';
import type { ExportMetrics } from '../metrics.js';
import { CONTENT_TYPES, OBJECT_METADATA } from '../formats.js';
import { shapeSource, type ShapeSource } from '../shape.js';
import type { Output, OutputComponent, OutputContext, PreparedWrite, WriteContext } from './output.js';
import { S3Batch, type FileSettings, type SealedFile } from './s3-batch.js';
import { bool, byteSize, duration, int, list, object, oneOf, string, template, type Infer } from '../../core/pipeline/fields.js';
import { partSource, templateExtension, type TimeFormat } from '../../core/pipeline/path-template.js';
import { suggestion } from '../../core/pipeline/suggest.js';
import { coreDefault } from '../../core/pipeline/components/core-defaults.js';

export const FORMATS = ['parquet', 'jsonl', 'csv'] as const;
export type OutputFormat = (typeof FORMATS)[number];
export const COMPRESSIONS = ['snappy', 'zstd', 'none'] as const;
export const TIME_FORMATS = ['unix_us', 'unix_ms', 'unix_s', 'rfc3339'] as const satisfies readonly TimeFormat[];
/** Column types, named as Parquet physical/logical pairs: int64 for money, timestamp_us for Avro timestamp-micros. */
export const COLUMN_TYPES = ['string', 'boolean', 'int32', 'int64', 'float', 'double', 'timestamp_ms', 'timestamp_us', 'date', 'bytes'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

const MiB = 1024 ** 2;

export const columnSpec = object(
  {
    name: string({ doc: 'column name', pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, patternFix: 'use letters, digits and _', examples: ['amount_minor'] }),
    type: oneOf(COLUMN_TYPES, { doc: `column type: ${COLUMN_TYPES.join(', ')}`, examples: ['int64'] }),
    nullable: bool({ doc: 'whether the value may be null or absent (a null in a non-nullable column sends the record to the DLQ)', default: false }),
  },
  { doc: 'one column', examples: [{ name: 'amount_minor', type: 'int64', nullable: true }] },
);

const config = object(
  {
    bucket: string({
      doc: 'Bucket to write to.',
      pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      patternFix: 'bucket names are 3-63 lower-case letters, digits, "." and "-"',
      examples: ['${SLUICE_S3_BUCKET:sluice-lake}'],
    }),
    path: template({
      doc: 'Object key template (see "Path templates"). It must contain `${topic}`, `${partition}` and `${first_offset}`, so that a batch replayed after a crash is written to the key it had and overwrites it.',
      objectKey: true,
      examples: ['events/event_type=${data.event_type}/dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet'],
    }),
    format: oneOf(FORMATS, { doc: 'File format: `parquet`, `jsonl` (one JSON object a line) or `csv` (with a header row).', default: 'parquet' }),
    compression: oneOf(COMPRESSIONS, { doc: 'Parquet page compression.', optional: true, defaultDoc: '`snappy` for parquet, `none` otherwise' }),
    columns: list(columnSpec, {
      doc: "The file's columns in order, with their types. Needed for parquet and csv when a processor reshapes the record (a `mapping`); when absent, the columns follow the input's Avro schema. Record fields that are not columns are not written.",
      optional: true,
      minItems: 1,
      unique: true,
      examples: [[{ name: 'event_id', type: 'string' }, { name: 'amount_minor', type: 'int64', nullable: true }]],
    }),
    time_field: string({
      doc: 'The record field holding the event time, which `${time:...}` formats (in UTC).',
      optional: true,
      pattern: /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/,
      patternFix: 'write a field name or a dotted path',
      examples: ['occurred_at'],
    }),
    time_format: oneOf(TIME_FORMATS, {
      doc: 'How `time_field` is encoded: epoch `unix_us` (Avro timestamp-micros), `unix_ms`, `unix_s`, or `rfc3339` text.',
      optional: true,
      defaultDoc: "from the column's type when `columns` declares `time_field` (timestamp_us: `unix_us`, timestamp_ms: `unix_ms`), else `unix_us`",
    }),
    batching: object(
      {
        count: int({ doc: 'Flush a file when it holds this many records.', default: 50000, min: 1, max: 10_000_000 }),
        bytes: byteSize({ doc: 'Flush a file when its records reach about this size (encoded input bytes).', default: '64MiB', min: 1024, max: 5 * 1024 ** 3 }),
        period: duration({ doc: 'Flush a file at the latest this long after its first record arrived, so a quiet partition still lands and commits.', default: '10s', min: 1 }),
      },
      {
        doc: 'When a file is complete: whichever limit is reached first. Each input partition batches on its own; a flush writes every open file of the partition, then commits its offsets.',
      },
    ),
    multipart: object(
      {
        part_size: byteSize({ doc: 'Files larger than this upload in parts of this size (S3 needs at least 5MiB).', default: '16MiB', min: 5 * MiB, max: 5 * 1024 ** 3 }),
        concurrency: int({ doc: 'Parts uploaded at once per file.', default: 4, min: 1, max: 64 }),
      },
      { doc: 'Multipart upload of large files.' },
    ),
    encode_threads: int({
      doc: "Worker threads that encode this pipeline's Parquet files while the event loop goes on consuming. 0 (the default) encodes on the event loop, between record batches. Worth it only with cores to spare: on 2 cores shared with a broker, 1 thread gave the same records/s for ~35 MB more RSS (BENCHMARKS.md).",
      default: 0,
      min: 0,
      max: 64,
    }),
    max_in_flight: int({ doc: 'Files of one flush being encoded and uploaded at once (each holds its encoded bytes until uploaded).', default: 8, min: 1, max: 256 }),
    region: string({ doc: 'AWS region.', minLength: 1, ...coreDefault('s3', 'region') }),
    endpoint: string({
      doc: 'Endpoint of an S3-compatible server (S3Proxy, MinIO). Unset or an empty string: AWS S3, or the standard `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` when set.',
      pattern: /^(https?:\/\/\S+)?$/,
      patternFix: 'write an http(s) URL, or "" for AWS S3',
      optional: true,
      ...coreDefault('s3', 'endpoint'),
    }),
    force_path_style: bool({
      doc: 'Path-style addressing (bucket in the path). Unset: on when an endpoint is set (S3-compatible servers need it), off for AWS S3 (virtual-hosted).',
      optional: true,
      ...coreDefault('s3', 'forcePathStyle'),
    }),
    server_side_encryption: string({
      doc: "Server-side encryption of every object written: `AES256` (SSE-S3) or `aws:kms` (SSE-KMS). Unset or empty: the bucket's default encryption.",
      pattern: /^(AES256|aws:kms)?$/,
      patternFix: 'write AES256 or aws:kms',
      optional: true,
      examples: ['aws:kms'],
      ...coreDefault('s3', 'serverSideEncryption'),
    }),
    kms_key_id: string({
      doc: "KMS key (id, alias/name or ARN) for SSE-KMS; implies `aws:kms`. Unset with `aws:kms`: the account's aws/s3 key.",
      optional: true,
      examples: ['alias/sluice-lake'],
      ...coreDefault('s3', 'kmsKeyId'),
    }),
    credentials: object(
      {
        access_key_id: string({ doc: 'Access key id; unset uses the AWS default credentials chain.', optional: true, ...coreDefault('s3', 'accessKeyId') }),
        secret_access_key: string({ doc: 'Secret access key; write it as ${ENV}.', optional: true, ...coreDefault('s3', 'secretAccessKey') }),
        session_token: string({ doc: 'Session token of temporary credentials.', optional: true, secret: true, env: ['AWS_SESSION_TOKEN'] }),
      },
      { doc: 'Static credentials; the AWS default chain (instance role, profile) when unset.' },
    ),
  },
  { doc: 'S3 output settings.' },
);

type RawS3Config = Infer<typeof config>;
export type S3Column = RawS3Config extends { columns?: (infer C)[] } ? C : never;

/** The s3 output's config as loaded: defaults computed, endpoint `undefined` for AWS S3. */
export type S3OutputConfig = Omit<RawS3Config, 'compression' | 'time_format' | 'endpoint' | 'server_side_encryption' | 'kms_key_id'> & {
  compression: (typeof COMPRESSIONS)[number];
  time_format: TimeFormat;
  endpoint: string | undefined;
  server_side_encryption: 'AES256' | 'aws:kms' | undefined;
  kms_key_id: string | undefined;
};

const TIMESTAMP_FORMAT: Partial<Record<ColumnType, TimeFormat>> = { timestamp_us: 'unix_us', timestamp_ms: 'unix_ms' };
const EXTENSIONS: Record<OutputFormat, readonly string[]> = { parquet: ['parquet'], jsonl: ['jsonl', 'json', 'ndjson'], csv: ['csv'] };

export const s3OutputSpec = defineComponent({
  name: 's3',
  kind: 'output',
  summary: 'Writes batches of records as Parquet, JSON Lines or CSV objects to S3 (or an S3-compatible server), keyed by a path template.',
  description: [
    "Each input partition's records are grouped into files by their rendered path (e.g. one per event type and day) and flushed by `batching`. A flush uploads every open file of the partition (multipart above `multipart.part_size`), and only then are the partition's offsets committed. Keys are deterministic from topic, partition and the first offset in the file, so a crash or rebalance that replays a batch rewrites the same keys: exactly-once files, as with Kafka Connect's S3 sink.",
    'Transient S3 faults (unavailable, throttling) block and retry with backoff; they never drop data or reach the DLQ. A record that cannot be written (a value of the wrong type for its column, a path field that is an object) goes to the DLQ.',
  ].join('\n\n'),
  config,
  example: [
    's3:',
    '  bucket: ${SLUICE_S3_BUCKET:sluice-lake}',
    '  path: events/event_type=${data.event_type}/dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet',
    '  format: parquet',
    '  compression: zstd',
    '  columns:',
    '    - { name: event_id, type: string }',
    '    - { name: event_type, type: string }',
    '    - { name: agent_id, type: string }',
    '    - { name: amount_minor, type: int64, nullable: true }',
    '    - { name: occurred_at, type: timestamp_us }',
    '  time_field: occurred_at',
    '  batching:',
    '    count: 50000',
    '    bytes: 64MiB',
    '    period: 1s',
  ].join('\n'),
  finish(c, ctx): S3OutputConfig {
    const columns = c.columns;
    const byName = new Map((columns ?? []).map((col) => [col.name, col]));

    if (c.compression !== undefined && c.compression !== 'none' && c.format !== 'parquet') {
      ctx.report(['compression'], `compression ${c.compression} applies to parquet only, and format is ${c.format}`, 'remove compression, or set format: parquet');
    }
    const ext = templateExtension(c.path);
    if (ext !== undefined && Object.values(EXTENSIONS).flat().includes(ext) && !EXTENSIONS[c.format].includes(ext)) {
      ctx.reportInValue(['path'], c.path.text.length - ext.length - 1, `the key ends in .${ext} but format is ${c.format}`, `end the path with .${EXTENSIONS[c.format][0]}, or set format: ${Object.entries(EXTENSIONS).find(([, e]) => e.includes(ext))![0]}`);
    }

    const timeParts = c.path.parts.filter((p) => p.kind === 'time');
    if (timeParts.length > 0 && c.time_field === undefined) {
      ctx.reportInValue(['path'], timeParts[0]!.offset, `${partSource(timeParts[0]!)} needs the event-time field`, 'set time_field to the record field holding the event time, e.g. time_field: occurred_at');
    }

    let timeFormat: TimeFormat = c.time_format ?? 'unix_us';
    if (c.time_field !== undefined && columns) {
      const col = byName.get(c.time_field.split('.')[0]!);
      const implied = col ? TIMESTAMP_FORMAT[col.type] : undefined;
      if (!col) {
        ctx.report(['time_field'], `"${c.time_field}" is not a column`, suggestion(c.time_field, [...byName.keys()], 'columns are'));
      } else if (!['timestamp_us', 'timestamp_ms', 'int64', 'string'].includes(col.type)) {
        ctx.report(['time_field'], `column ${col.name} is ${col.type}, which holds no event time`, 'name a timestamp_us, timestamp_ms, int64 or string column');
      } else if (implied && c.time_format !== undefined && c.time_format !== implied) {
        ctx.report(['time_format'], `time_format ${c.time_format} contradicts column ${col.name} (${col.type})`, `set time_format: ${implied}, or remove it`);
      } else if (implied) timeFormat = implied;
    }

    const sse = c.server_side_encryption === '' ? undefined : (c.server_side_encryption as 'AES256' | 'aws:kms' | undefined);
    const kmsKeyId = c.kms_key_id === '' ? undefined : c.kms_key_id;
    if (kmsKeyId !== undefined && sse === 'AES256') {
      ctx.report(['kms_key_id'], 'a KMS key is set while server_side_encryption is AES256 (SSE-S3 takes no key)', 'set server_side_encryption: aws:kms to encrypt with that key, or remove kms_key_id for SSE-S3');
    }

    if (columns) {
      for (const part of c.path.parts) {
        if (part.kind !== 'field') continue;
        const name = part.path[0]!;
        if (!byName.has(name)) {
          ctx.reportInValue(['path'], part.offset, `${partSource(part)} names no column`, `${suggestion(name, [...byName.keys()], 'columns are')}`);
        }
      }
    }

    return {
      ...c,
      compression: c.compression ?? (c.format === 'parquet' ? 'snappy' : 'none'),
      time_format: timeFormat,
      endpoint: c.endpoint === '' ? undefined : c.endpoint,
      server_side_encryption: sse,
      kms_key_id: kmsKeyId,
    };
  },
});

/**
 * The s3 output: a partition's batch becomes one object per rendered key, uploaded
 * `max_in_flight` at a time (multipart above the part size), each retried until durable.
 * Writes are idempotent (deterministic keys), so the flush's offsets are committed by the
 * consumer group afterwards (`offsets: 'consumer'`) and `commit()` has nothing left to do.
 */
export class S3Output implements Output<S3Batch> {
  readonly type = 's3';
  readonly offsets = 'consumer' as const;
  readonly batching: Output['batching'];
  readonly describe: Record<string, unknown>;
  private readonly files: FileSettings;
  private readonly shapes: ShapeSource;
  private readonly encodePool: ParquetEncodePool | undefined;
  private readonly log: Logger;
  private readonly metrics: ExportMetrics;
  private readonly name: string;

  constructor(
    private readonly config: S3OutputConfig,
    ctx: OutputContext,
    private readonly s3: S3Client = s3ClientFor(config),
  ) {
    const pipeline = ctx.pipeline;
    this.name = pipeline.name;
    this.log = ctx.logger;
    this.metrics = ctx.metrics;
    this.batching = config.batching;
    this.describe = { bucket: config.bucket, format: config.format };
    this.shapes = shapeSource(config, valueDecoding(pipeline), pipeline.file);
    this.files = {
      path: config.path,
      format: config.format,
      compression: config.compression,
      timeField: config.time_field?.split('.'),
      timeFormat: config.time_format,
      metadata: { 'sluice.pipeline': pipeline.name },
    };
    if (config.format === 'parquet' && config.encode_threads > 0) {
      if (ParquetEncodePool.available()) {
        this.encodePool = new ParquetEncodePool(config.encode_threads);
        this.files.encoder = this.encodePool;
      } else this.log.warn('the Parquet encoding thread is not built (running from sources): encoding on the event loop');
    }
  }

  async connect(): Promise<void> {
    // Stateless: the readiness check says whether the bucket answers; uploads wait it out.
  }

  /** Whether S3 answers for the bucket (readiness). */
  async check(): Promise<void> {
    await this.s3.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
  }

  openBatch(topic: string, partition: number): S3Batch {
    return new S3Batch(topic, partition, this.files, this.shapes);
  }

  async write(batch: S3Batch, ctx: WriteContext): Promise<PreparedWrite> {
    const files = batch.seal();
    const phases = { encoding: 0, uploading: 0 };
    const bytes = await this.writeFiles(files, ctx, phases);
    return { rejected: [], stats: { bytes, objects: files.length, phases }, commit: async () => undefined, abort: async () => undefined };
  }

  async close(): Promise<void> {
    await this.encodePool?.close();
  }

  /**
   * Encodes and uploads a flush's files, `max_in_flight` at a time (Parquet encoding on the
   * pool's threads overlaps the uploads). The first failure cuts the others and is thrown
   * once none is in flight any more; nothing is committed then. Returns the bytes uploaded.
   */
  private async writeFiles(files: SealedFile[], ctx: WriteContext, phases: { encoding: number; uploading: number }): Promise<number> {
    const { bucket, multipart, max_in_flight } = this.config;
    const cut = new AbortController();
    const aborted = AbortSignal.any([ctx.signal, cut.signal]);
    let next = 0;
    let uploaded = 0;
    let failure: { error: unknown } | undefined;
    const lane = async () => {
      while (next < files.length && !failure) {
        const file = files[next++]!;
        try {
          const encoding = Date.now();
          const body = await file.encode();
          const uploading = Date.now();
          phases.encoding += uploading - encoding;
          if (failure) return;
          await uploadDurably(this.s3, {
            bucket,
            key: file.key,
            body,
            contentType: CONTENT_TYPES[this.config.format],
            // The file's offset range: replay reads it back to find the files a reset cuts through.
            metadata: { [OBJECT_METADATA.firstOffset]: file.firstOffset, [OBJECT_METADATA.lastOffset]: file.lastOffset, [OBJECT_METADATA.records]: String(file.rows) },
            partSize: multipart.part_size,
            partConcurrency: multipart.concurrency,
            logger: ctx.logger,
            stillWanted: () => ctx.owned() && !failure,
            signal: aborted,
            ...(ctx.heartbeat ? { whileWaiting: ctx.heartbeat } : {}),
            onFailure: () => this.metrics.uploadFailures.inc({ pipeline: this.name }),
          });
          phases.uploading += Date.now() - uploading;
          uploaded += body.byteLength;
          this.metrics.files.inc({ pipeline: this.name });
        } catch (error) {
          failure ??= { error };
          cut.abort();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(max_in_flight, files.length) }, lane));
    if (failure) throw failure.error;
    return uploaded;
  }
}

/** The S3 client an s3 output writes with (its endpoint, region and credentials). */
export function s3ClientFor(output: S3OutputConfig): S3Client {
  return createS3Client({
    endpoint: output.endpoint,
    bucket: output.bucket,
    region: output.region,
    accessKeyId: output.credentials.access_key_id,
    secretAccessKey: output.credentials.secret_access_key,
    sessionToken: output.credentials.session_token,
    forcePathStyle: output.force_path_style,
    serverSideEncryption: output.server_side_encryption,
    kmsKeyId: output.kms_key_id,
  });
}

/** The s3 output component: its spec and its constructor. */
export const s3Output: OutputComponent<S3OutputConfig> = {
  spec: s3OutputSpec,
  offsets: 'consumer',
  create: (config, ctx) => new S3Output(config, ctx),
};

