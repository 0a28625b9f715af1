import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { defineComponent } from '../../core/pipeline/component.js';
import { object, string, type AnyField, type Field } from '../../core/pipeline/fields.js';
import type { TimeFormat } from '../../core/pipeline/path-template.js';
import { valueDecoding } from '../../core/pipeline/input-config.js';
import type { Logger } from '../../core/log/logger.js';
import { shapeSource } from '../shape.js';
import type { Output, OutputComponent, OutputContext, PreparedWrite, WriteContext } from './output.js';
import { S3Batch, type FileSettings } from './s3-batch.js';
import { s3OutputSpec, type OutputFormat, type S3OutputConfig } from './s3.js';

/** The s3 output's fields a local file shares: what a file is and when it is complete. */
const SHARED = ['path', 'format', 'compression', 'columns', 'time_field', 'time_format', 'batching'] as const;
const s3Fields = s3OutputSpec.config.fields!;

const config = object(
  {
    directory: string({ doc: 'The local directory the files are written under (created when absent); the rendered `path` is relative to it.', minLength: 1, examples: ['./lake'] }),
    ...(Object.fromEntries(SHARED.map((name) => [name, s3Fields[name]!])) as Record<(typeof SHARED)[number], AnyField>),
  },
  { doc: 'file output settings: `directory`, and the s3 output\'s `path`, `format`, `compression`, `columns`, `time_field`, `time_format` and `batching`, with the same meaning.' },
) as unknown as Field<FileRawConfig>;

type FileRawConfig = { directory: string } & Pick<S3OutputConfig, (typeof SHARED)[number]> & { compression?: S3OutputConfig['compression']; time_format?: TimeFormat };
export type FileOutputConfig = { directory: string } & Pick<S3OutputConfig, (typeof SHARED)[number]>;

export const fileOutputSpec = defineComponent({
  name: 'file',
  kind: 'output',
  summary: 'Writes batches of records as Parquet, JSON Lines or CSV files under a local directory, with the same path templates as the s3 output.',
  description: [
    "The s3 output's files, on a local disk: for trying a pipeline with no server (`--set output.file.directory=./lake`), a test, or a machine that ships files on by other means. Records are grouped into files by their rendered `path` and flushed by `batching`, as with s3; the files read as the lake's do (DuckDB: `read_parquet('lake/**/*.parquet', hive_partitioning = true)`).",
    'Each file is written atomically: to a temporary file beside it (`.<name>.tmp-<random>`), flushed to disk (fsync), then renamed over its final name, so a reader never sees half a file and a replayed batch replaces the file it wrote (names are deterministic, as the s3 keys are). A write that fails (disk full, permission) fails the flush; it is retried from the records held, and the run stops after 5 failures in a row.',
  ].join('\n\n'),
  config,
  example: [
    'file:',
    '  directory: ./lake',
    '  path: agent_events/event_type=${data.event_type}/dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet',
    '  format: parquet',
    '  columns:',
    '    - { name: event_id, type: string }',
    '    - { name: event_type, type: string }',
    '    - { name: amount_minor, type: int64, nullable: true }',
    '    - { name: occurred_at, type: timestamp_us }',
    '  time_field: occurred_at',
  ].join('\n'),
  finish(c, ctx): FileOutputConfig {
    // The s3 output's rules across these fields (format vs extension, time_field, columns in the path), on a config without S3.
    const s3 = s3OutputSpec.finish!(
      { ...c, bucket: 'local', region: 'local', multipart: { part_size: 0, concurrency: 1 }, encode_threads: 0, max_in_flight: 1, credentials: {} } as never,
      ctx,
    );
    return { directory: c.directory, path: s3.path, format: s3.format, compression: s3.compression, columns: s3.columns, time_field: s3.time_field, time_format: s3.time_format, batching: s3.batching };
  },
});

/**
 * The file output: a partition's batch becomes one file per rendered path (the s3 output's
 * S3Batch), each written to a temporary name and renamed. Names are deterministic (topic,
 * partition, first offset), so the input's offsets are committed after the write
 * (`offsets: 'consumer'`) and a replay overwrites.
 */
export class FileOutput implements Output<S3Batch> {
  readonly type = 'file';
  readonly offsets = 'consumer' as const;
  readonly batching: Output['batching'];
  readonly describe: Record<string, unknown>;
  private readonly files: FileSettings;
  private readonly root: string;
  private readonly shapes: ReturnType<typeof shapeSource>;
  private readonly log: Logger;

  constructor(
    private readonly config: FileOutputConfig,
    ctx: OutputContext,
  ) {
    this.root = resolve(config.directory);
    this.log = ctx.logger;
    this.batching = config.batching;
    this.describe = { directory: this.root, format: config.format };
    this.shapes = shapeSource(config, valueDecoding(ctx.pipeline), ctx.pipeline.file);
    this.files = {
      path: config.path,
      format: config.format as OutputFormat,
      compression: config.compression,
      timeField: config.time_field?.split('.'),
      timeFormat: config.time_format,
      metadata: { 'sluice.pipeline': ctx.pipeline.name },
    };
  }

  async connect(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async check(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  openBatch(topic: string, partition: number): S3Batch {
    return new S3Batch(topic, partition, this.files, this.shapes);
  }

  async write(batch: S3Batch, ctx: WriteContext): Promise<PreparedWrite> {
    const files = batch.seal();
    let bytes = 0;
    for (const file of files) {
      if (!ctx.owned()) throw new Error('the partition is no longer this member\'s');
      const target = this.inside(file.key);
      const body = await file.encode();
      await writeAtomically(target, body);
      bytes += body.byteLength;
    }
    this.log.debug({ files: files.length, bytes }, 'files written');
    return { rejected: [], stats: { bytes, objects: files.length }, commit: async () => undefined, abort: async () => undefined };
  }

  async close(): Promise<void> {}

  /** The file's absolute name; a rendered key that would leave the directory (`..` from a record field) is refused. */
  private inside(key: string): string {
    const target = resolve(this.root, key);
    const rel = relative(this.root, target);
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      throw new Error(`the rendered path ${JSON.stringify(key)} leaves the output directory ${this.root} (a record field rendered ".."?)`);
    }
    return target;
  }
}

/** Writes `body` to a temporary file beside `target`, fsyncs it and renames it over `target`. */
export async function writeAtomically(target: string, body: Uint8Array): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temp = resolve(dirname(target), `.${target.slice(dirname(target).length + 1)}.tmp-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(body);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** The file output component: its spec and its constructor. */
export const fileOutput: OutputComponent<FileOutputConfig> = {
  spec: fileOutputSpec,
  create: (config, ctx) => new FileOutput(config, ctx),
};
