import { HeadBucketCommand } from '@aws-sdk/client-s3';
import type { Registry } from 'prom-client';
import { createPool } from '../core/db/pool.js';
import { ConfigError } from '../core/errors/errors.js';
import { OutboundGuard } from '../core/http/outbound-guard.js';
import { createKafka } from '../core/kafka/client.js';
import { filesTopics } from '../core/kafka/topic-plan.js';
import { ensureTopics } from '../core/kafka/topics.js';
import { serve, startProcessor, type ProcessorContext, type StartOptions } from '../core/runtime/processor.js';
import { FAIL_FAST_RETRY } from '../core/runtime/startup.js';
import { createS3Client } from '../core/s3/client.js';
import { Notifier } from '../reports/notify.js';
import type { FileIngestDeps } from './ingest-file.js';
import { Ledger } from './ledger.js';
import { FilesMetrics } from './metrics.js';
import { PROCESSOR } from './outputs.js';
import { filesSettings } from './settings.js';
import { NotificationListener } from './notifications.js';
import { FileWatcher } from './watcher.js';

export type FilesOptions = StartOptions;

export interface RunningFiles {
  port: number;
  metrics: Registry;
  /** One pass over every source now (tests; the loop polls on its own). */
  pollOnce(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `sluice files`: partner files dropped under incoming/<source>/ become rows of
 * staging.agent_events (and so events, lake rows and report lines), once per file, with
 * a ledger, receipts, rejects, a DLQ, notifications and metrics.
 */
export async function startFiles(options: FilesOptions = {}): Promise<RunningFiles> {
  return startProcessor(PROCESSOR, filesSettings, options, start);
}

async function start(ctx: ProcessorContext<typeof filesSettings>): Promise<RunningFiles> {
  const { logger, core, startup } = ctx;
  const s = ctx.settings.files;
  const bucket = s.bucket ?? core.s3.bucket;
  const webhooks = new OutboundGuard({ allowedHosts: s.webhookAllowedHosts, allowedNetworks: s.webhookAllowedNetworks });
  if (s.notifyWebhook && !webhooks.hostAllowed(s.notifyWebhook)) {
    throw new ConfigError([
      { source: 'env SLUICE_FILES_NOTIFY_WEBHOOK', setting: 'files.notifyWebhook', message: 'the webhook host is not on the allow list, so it would never be called', fix: 'add its host to SLUICE_FILES_WEBHOOK_ALLOWED_HOSTS (e.g. hooks.slack.com)' },
    ]);
  }
  if (s.notifyEmail && !s.smtpUrl) {
    throw new ConfigError([{ source: 'env SLUICE_FILES_NOTIFY_EMAIL', setting: 'files.notifyEmail', message: 'email notifications need an SMTP server', fix: 'set SLUICE_FILES_SMTP_URL (smtps://user:pass@mail.example.com:465), or unset SLUICE_FILES_NOTIFY_EMAIL' }]);
  }
  const pool = createPool(core.database.url, { max: s.dbPoolMax, applicationName: 'sluice-files' });
  ctx.shutdown.add('postgres pool', () => pool.end());
  const s3 = createS3Client(core.s3);
  const kafka = createKafka(core.kafka, { region: core.s3.region, logger, clientId: `${core.kafka.clientId}-${PROCESSOR}` });
  const admin = kafka.admin({ retry: FAIL_FAST_RETRY });
  ctx.shutdown.add('kafka admin', () => admin.disconnect());
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 } });
  ctx.shutdown.add('kafka producer', () => producer.disconnect());
  const notifier = new Notifier({ smtpUrl: s.smtpUrl, from: s.mailFrom, webhooks, webhookTimeoutMs: s.webhookTimeoutMs, smtpSetting: 'SLUICE_FILES_SMTP_URL' });
  ctx.shutdown.add('smtp transport', () => notifier.close());
  const metrics = new FilesMetrics(ctx.metrics);
  const ledger = new Ledger(pool);

  const server = await serve(
    ctx,
    {
      postgres: async () => {
        const { rows } = await pool.query<{ t: string | null }>("SELECT to_regclass('staging.file_ingestions')::text AS t");
        if (!rows[0]?.t) throw new Error('staging.file_ingestions missing: apply the migrations (infra/postgres/migrate.sh)');
      },
      s3: async () => void (await s3.send(new HeadBucketCommand({ Bucket: bucket }))),
      kafka: async () => void (await admin.describeCluster()),
    },
    undefined,
    s.httpPort,
  );

  const kafkaAt = `Kafka at ${core.kafka.brokers.join(',')}`;
  await startup.dependency('PostgreSQL', () => pool.query('SELECT 1'));
  await startup.dependency(kafkaAt, () => admin.connect());
  await startup.dependency(kafkaAt, () => ensureTopics(admin, filesTopics({ kafka: core.kafka, files: s }), logger));
  await startup.dependency(kafkaAt, () => producer.connect());
  startup.ready();

  const stopping = new AbortController();
  ctx.shutdown.signal.addEventListener('abort', () => stopping.abort());
  const deps: FileIngestDeps = { s3, s3Settings: core.s3, producer, ledger, notifier, metrics, settings: s, logger, pool, signal: stopping.signal };
  const watcher = new FileWatcher(deps, bucket);
  const loop = watcher.run();
  if (s.notificationsTopic) {
    const consumer = kafka.consumer({ groupId: s.notificationsGroupId });
    ctx.shutdown.add('notifications consumer', () => consumer.disconnect());
    await new NotificationListener(deps, consumer, bucket, s.notificationsTopic).start();
  }
  // Registered last, so it runs first: the file in progress stops after its current batch.
  ctx.shutdown.add('file watcher', async () => {
    stopping.abort();
    await loop;
  });
  logger.info({ bucket, sources: s.sources.map((x) => `${s.incomingPrefix}${x.name}/ (${x.format})`), afterProcessing: s.afterProcessing, port: server.port }, 'files ready');
  return { port: server.port, metrics: ctx.metrics, pollOnce: () => watcher.pollOnce(), stop: async () => void (await ctx.shutdown.run()) };
}
