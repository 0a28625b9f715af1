import { Command, InvalidArgumentError, Option } from 'commander';
import { Cron } from 'croner';
import { createPool } from '../../core/db/pool.js';
import { createLogger } from '../../core/log/logger.js';
import { DURATION_FIX, formatDuration, parseDuration } from '../../core/pipeline/units.js';
import { createS3Client } from '../../core/s3/client.js';
import { pruneStaging } from '../../ops/pruner.js';
import { cliSettings } from '../context.js';

const duration = (v: string): number => {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError(DURATION_FIX);
  return ms;
};

const RETENTION_DEFAULT_MS = 30 * 86_400_000;

/** `sluice prune`: delete staging rows past their retention whose events the lake holds. */
export function pruneCommand(): Command {
  return new Command('prune')
    .description('delete staging.agent_events rows older than the retention, only those whose event_id is read back from the Parquet lake')
    .addOption(new Option('--retention <duration>', 'rows received longer ago than this are candidates (e.g. 12h, 30d)').argParser(duration).default(RETENTION_DEFAULT_MS, formatDuration(RETENTION_DEFAULT_MS)))
    .option('--lake-prefix <prefix>', 'prefix of the lake (connectors/exports/lake.yaml)', 'lake/agent_events/')
    .option('--schedule <cron>', 'keep running and prune on this cron schedule (UTC), e.g. "0 3 * * *"; without it, prune once and exit')
    .option('--dry-run', 'count what would be deleted, delete nothing')
    .option('--batch-size <n>', 'candidates examined per round', (v) => Number(v), 10_000)
    .action(async (o: { retention: number; lakePrefix: string; schedule?: string; dryRun?: boolean; batchSize: number }, cmd: Command) => {
      const s = cliSettings(cmd);
      const logger = createLogger({ name: 'pruner', level: s.log.level });
      const pool = createPool(s.database.url, { max: 2, applicationName: 'sluice-pruner' });
      const s3 = createS3Client(s.s3);
      const once = async () => {
        const started = Date.now();
        const counts = await pruneStaging(pool, s3, { bucket: s.s3.bucket, lakePrefix: o.lakePrefix, retentionMs: o.retention, batchSize: o.batchSize, dryRun: o.dryRun ?? false }, logger);
        logger.info({ ...counts, dryRun: o.dryRun ?? false, retention: formatDuration(o.retention), ms: Date.now() - started }, o.dryRun ? 'prune dry run' : 'pruned staging rows whose events are in the lake');
        return counts;
      };
      if (!o.schedule) {
        try {
          await once();
        } finally {
          await pool.end();
        }
        return;
      }
      const job = new Cron(o.schedule, { timezone: 'UTC', protect: true }, () => void once().catch((error) => logger.error({ err: error }, 'prune failed; next run on schedule')));
      logger.info({ schedule: o.schedule, next: job.nextRun()?.toISOString() }, 'pruner scheduled');
      const stop = () => {
        job.stop();
        void pool.end().then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
