import { requireKafkaInput } from '../../core/pipeline/input-config.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Cron } from 'croner';
import { createKafka } from '../../core/kafka/client.js';
import { createLogger } from '../../core/log/logger.js';
import { loadPipeline } from '../../core/pipeline/lint.js';
import { lakeSchemaOf } from '../../core/pipeline/lake-columns.js';
import { staticPrefix } from '../../core/pipeline/path-template.js';
import { BYTE_SIZE_FIX, DURATION_FIX, formatByteSize, formatDuration, parseByteSize, parseDuration } from '../../core/pipeline/units.js';
import { compactLake, SORT_MEMORY_DEFAULT, type CompactOptions } from '../../compact/compactor.js';
import { partitionDir } from '../../compact/layout.js';
import { pipelineS3Client } from '../../export/export.js';
import { cliSettings } from '../context.js';
import { CompactMetrics } from '../../compact/metrics.js';
import { startHealthServer } from '../../core/http/health-server.js';
import { createMetricsRegistry } from '../../core/metrics/metrics.js';

const duration = (v: string): number => {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 0) throw new InvalidArgumentError(DURATION_FIX);
  return ms;
};
const size = (v: string): number => {
  const n = parseByteSize(v);
  if (n === undefined || n <= 0) throw new InvalidArgumentError(BYTE_SIZE_FIX);
  return n;
};
const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

const GRACE_DEFAULT_MS = 24 * 3_600_000;
const TARGET_DEFAULT = 128 * 1024 * 1024;

/** `sluice compact`: rewrite the small files of closed lake partitions into a few large sorted ones. */
export function compactCommand(): Command {
  return new Command('compact')
    .description(
      "rewrite the files of closed lake partitions (event type + day, older than the grace) into files of the target size, sorted by agent_id then occurred_at; a journal makes every run finish or roll back what a crashed one left (docs/lake-compaction.md)",
    )
    .argument('<pipeline>', 'the export pipeline that writes the lake (connectors/exports/lake.yaml): its bucket, path, columns, compression and consumer group')
    .option('--partition <dir>', 'compact only this partition, e.g. event_type=deposit_made/dt=2026-10-01 (still only once closed and what the export committed)')
    .addOption(new Option('--grace <duration>', 'a day is closed this long after it ends (late events keep arriving until then)').argParser(duration).default(GRACE_DEFAULT_MS, formatDuration(GRACE_DEFAULT_MS)))
    .addOption(new Option('--target-size <size>', 'bytes per compacted file').argParser(size).default(TARGET_DEFAULT, formatByteSize(TARGET_DEFAULT)))
    .addOption(new Option('--row-group-rows <n>', 'rows per Parquet row group (smaller: finer row-group pruning by agent_id in engines that read statistics)').argParser(positive).default(131_072))
    .addOption(new Option('--concurrency <n>', 'partitions compacted at once (memory: each holds up to --sort-memory of rows, a row group being encoded and one compacted file while it is uploaded)').argParser(positive).default(4))
    .addOption(
      new Option('--sort-memory <size>', 'rows a partition sorts in memory before it writes a sorted run to --temp-dir and merges the runs (bounds memory whatever the day holds)')
        .argParser(size)
        .default(SORT_MEMORY_DEFAULT, formatByteSize(SORT_MEMORY_DEFAULT)),
    )
    .addOption(new Option('--temp-dir <dir>', 'local directory for sorted runs and compacted files before upload (needs ~2x the bytes of the largest partition, decoded); removed after each partition, and after a crash by the next run').env('SLUICE_COMPACT_TEMP_DIR'))
    .option('--schedule <cron>', 'keep running and compact on this cron schedule (UTC), e.g. "15 * * * *"; without it, compact once and exit')
    .addOption(
      new Option('--http-port <port>', 'with --schedule: port of /healthz, /readyz and /metrics (sluice_compact_*; 0 picks a free one), on SLUICE_HTTP_HOST')
        .env('SLUICE_COMPACT_HTTP_PORT')
        .argParser((v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port, 0-65535');
          return n;
        })
        .default(9471),
    )
    .option('--dry-run', 'say what would be compacted, write nothing')
    .action(async (file: string, o: { partition?: string; concurrency: number; sortMemory: number; tempDir?: string; grace: number; targetSize: number; rowGroupRows: number; schedule?: string; dryRun?: boolean; httpPort: number }, cmd: Command) => {
      const s = cliSettings(cmd);
      const logger = createLogger({ name: 'compact', level: s.log.level });
      const pipeline = loadPipeline(file);
      const output = pipeline.output.config;
      const input = requireKafkaInput(pipeline, 'sluice compact');
      if (output.format !== 'parquet' || !output.columns) cmd.error(`sluice compact: ${file} must write parquet with output.s3.columns declared (the compacted files keep those columns)`, { exitCode: 64 });
      const prefix = staticPrefix(output.path);
      const only = o.partition !== undefined ? partitionDir(prefix, o.partition) : undefined;
      if (o.partition !== undefined && !only) cmd.error(`sluice compact: --partition ${o.partition} is not a dt=YYYY-MM-DD partition under ${prefix}`, { exitCode: 64 });
      const kafka = createKafka(
        { brokers: input.brokers, clientId: input.client_id, ssl: input.tls.enabled, sslCaFile: input.tls.ca_file, saslMechanism: input.sasl.mechanism, saslUsername: input.sasl.username, saslPassword: input.sasl.password },
        { region: output.region, logger, clientId: `${input.client_id}-compact` },
      );
      const admin = kafka.admin();
      await admin.connect();
      const options: CompactOptions & { partitionConcurrency: number } = {
        partitionConcurrency: o.concurrency,
        sortMemoryBytes: o.sortMemory,
        ...(o.tempDir !== undefined ? { tempDir: o.tempDir } : {}),
        s3: pipelineS3Client(pipeline),
        bucket: output.bucket,
        prefix,
        schema: lakeSchemaOf(pipeline, file),
        compression: output.compression === 'none' ? 'none' : output.compression,
        targetBytes: o.targetSize,
        rowGroupSize: o.rowGroupRows,
        graceMs: o.grace,
        pipelineName: pipeline.name,
        logger,
        dryRun: o.dryRun ?? false,
        committedOffsets: async (topic) => {
          const [t] = await admin.fetchOffsets({ groupId: input.consumer_group, topics: [topic] });
          return new Map((t?.partitions ?? []).filter((x) => x.offset !== '-1').map((x) => [x.partition, BigInt(x.offset)] as const));
        },
      };
      const registry = createMetricsRegistry('compact');
      const metrics = new CompactMetrics(registry);
      const once = async () => {
        const started = Date.now();
        const { outcomes, failed } = await compactLake(options, only).catch((error: unknown) => {
          metrics.runs.inc({ outcome: 'failed' });
          throw error;
        });
        metrics.record(outcomes, failed, (Date.now() - started) / 1000);
        const done = outcomes.filter((x) => !x.skipped);
        const totals = {
          partitions: outcomes.length,
          compacted: done.length,
          recovered: outcomes.filter((x) => x.recovered !== 'none').length,
          failed,
          inputs: done.reduce((n, x) => n + x.inputs, 0),
          outputs: done.reduce((n, x) => n + x.outputs, 0),
          rows: done.reduce((n, x) => n + x.rows, 0),
          inputBytes: done.reduce((n, x) => n + x.inputBytes, 0),
          outputBytes: done.reduce((n, x) => n + x.outputBytes, 0),
          uncommitted: outcomes.reduce((n, x) => n + x.uncommitted, 0),
          ms: Date.now() - started,
        };
        logger.info({ ...totals, dryRun: o.dryRun ?? false }, 'compaction run finished');
        if (o.dryRun) for (const x of outcomes.filter((x) => x.skipped === 'dry_run')) console.log(`${x.partition}: ${x.inputs} files (${formatByteSize(x.inputBytes)}) would be compacted`);
        return failed;
      };
      if (!o.schedule) {
        try {
          if ((await once()) > 0) process.exitCode = 1;
        } finally {
          await admin.disconnect();
        }
        return;
      }
      const server = await startHealthServer({
        port: o.httpPort,
        host: s.http.host,
        metrics: registry,
        logger,
        readiness: { kafka: async () => void (await admin.describeCluster()) },
      });
      logger.info({ host: server.host, port: server.port }, 'serving /healthz, /readyz, /metrics');
      const job = new Cron(o.schedule, { timezone: 'UTC', protect: true }, () => void once().catch((error) => logger.error({ err: error }, 'compaction failed; next run on schedule')));
      logger.info({ schedule: o.schedule, next: job.nextRun()?.toISOString() }, 'compaction scheduled');
      const stop = () => {
        job.stop();
        void Promise.allSettled([server.close(), admin.disconnect()]).then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
