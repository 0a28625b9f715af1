import { Cron } from 'croner';
import { availableParallelism } from 'node:os';
import type { Registry } from 'prom-client';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { createPool } from '../core/db/pool.js';
import { ConfigError } from '../core/errors/errors.js';
import { ApiKeyCheck } from '../core/http/api-key.js';
import { OutboundGuard } from '../core/http/outbound-guard.js';
import { createKafka } from '../core/kafka/client.js';
import { ensureTopics } from '../core/kafka/topics.js';
import { reportsTopics } from '../core/kafka/topic-plan.js';
import { serve, startProcessor, type ProcessorContext, type StartOptions } from '../core/runtime/processor.js';
import { FAIL_FAST_RETRY } from '../core/runtime/startup.js';
import { createS3Client } from '../core/s3/client.js';
import { ReportsMetrics } from './metrics.js';
import { Notifier } from './notify.js';
import { reportsOpenApi } from './openapi.js';
import { ReportProcessor } from './processor.js';
import { previousMonth, type ReportRequest } from './request.js';
import { loadRules } from './rules.js';
import { reportsSettings } from './settings.js';
import { registerShimRoutes } from './shim.js';
import { StatusStore } from './status.js';

export const PROCESSOR_NAME = 'reports';

export type ReportsOptions = StartOptions;

export interface RunningReports {
  port: number;
  url: string;
  store: StatusStore;
  metrics: Registry;
  /** Publishes the scheduled request for `now` (what the cron job does). */
  runSchedule(now?: Date): Promise<string>;
  stop(): Promise<void>;
}

/**
 * `sluice reports`: the report processor (report-requests -> lake -> file on S3 ->
 * report-status -> notification), the REST shim on the same port as /healthz, /readyz and
 * /metrics, and the optional monthly schedule.
 */
export async function startReports(options: ReportsOptions = {}): Promise<RunningReports> {
  return startProcessor(PROCESSOR_NAME, reportsSettings, options, start);
}

async function start(ctx: ProcessorContext<typeof reportsSettings>): Promise<RunningReports> {
  const { logger, core } = ctx;
  const s = ctx.settings.reports;
  const rules = loadRules(s.rulesFile);
  if (s.role !== 'processor' && !s.apiKey) {
    throw new ConfigError([{ source: 'env SLUICE_REPORTS_API_KEY', setting: 'reports.apiKey', message: `the REST shim needs an API key (role ${s.role})`, fix: 'set SLUICE_REPORTS_API_KEY to a random key of at least 16 characters, or SLUICE_REPORTS_ROLE=processor' }]);
  }
  if (s.schedule) validateCron(s.schedule);
  if (s.source === 'warehouse' && !s.warehouseUrl && s.role !== 'shim') {
    throw new ConfigError([{ source: 'env SLUICE_WAREHOUSE_URL', setting: 'reports.warehouseUrl', message: 'source warehouse reads the month from the warehouse, and no warehouse URL is set', fix: 'set SLUICE_WAREHOUSE_URL to the postgres:// URL of the warehouse (connectors/exports/warehouse.yaml writes it), or SLUICE_REPORTS_SOURCE=lake' }]);
  }
  const kafka = createKafka(core.kafka, { region: core.s3.region, logger, clientId: `${core.kafka.clientId}-${PROCESSOR_NAME}` });
  const s3 = createS3Client(core.s3);
  const warehouse = s.source === 'warehouse' && s.role !== 'shim' ? { pool: createPool(s.warehouseUrl!, { max: 2, applicationName: 'sluice-reports' }), table: s.warehouseTable } : undefined;
  if (warehouse) {
    warehouse.pool.on('error', (error) => logger.warn({ err: { message: error.message } }, 'warehouse connection lost (idle); the next report reconnects'));
    ctx.shutdown.add('warehouse pool', () => warehouse.pool.end());
  }
  const metrics = new ReportsMetrics(ctx.metrics);
  // Fails fast: the startup waits below log what they wait for and back off themselves.
  const admin = kafka.admin({ retry: FAIL_FAST_RETRY });
  ctx.shutdown.add('kafka admin', () => admin.disconnect());
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 } });
  ctx.shutdown.add('kafka producer', () => producer.disconnect());
  // The shim's own producer, with no retry at any level and each step (connect, metadata,
  // produce) bounded by a third of publishTimeoutMs: a send settles within the timeout, and
  // a failed one is never sent again behind the 503 it was answered with (see shim.ts).
  const step = Math.ceil(s.publishTimeoutMs / 3);
  const shimKafka = createKafka(core.kafka, { region: core.s3.region, logger, clientId: `${core.kafka.clientId}-${PROCESSOR_NAME}-shim`, requestTimeoutMs: step, retries: 0 });
  const shimProducer = shimKafka.producer({ idempotent: false, maxInFlightRequests: 1, retry: { retries: 0 } });
  ctx.shutdown.add('kafka shim producer', () => shimProducer.disconnect());
  const store = new StatusStore(kafka, s.statusTopic, logger);
  ctx.shutdown.add('status view', () => store.stop());
  const webhooks = new OutboundGuard({ allowedHosts: s.webhookAllowedHosts, allowedNetworks: s.webhookAllowedNetworks });
  if (s.scheduleNotifyWebhook && !webhooks.hostAllowed(s.scheduleNotifyWebhook)) {
    throw new ConfigError([
      {
        source: 'env SLUICE_REPORTS_SCHEDULE_NOTIFY_WEBHOOK',
        setting: 'reports.scheduleNotifyWebhook',
        message: "the scheduled reports' webhook host is not on the allow list, so it would never be called",
        fix: 'add its host to SLUICE_REPORTS_WEBHOOK_ALLOWED_HOSTS (e.g. hooks.slack.com)',
      },
    ]);
  }
  const notifier = new Notifier({ smtpUrl: s.smtpUrl, from: s.mailFrom, webhooks, webhookTimeoutMs: s.webhookTimeoutMs });
  ctx.shutdown.add('smtp transport', () => notifier.close());

  // The port opens first: /readyz says what the start waits for (Kafka, a topic) until it consumes.
  const server = await serve(
    ctx,
    {
      kafka: async () => void (await admin.describeCluster()),
      s3: async () => void (await s3.send(new HeadBucketCommand({ Bucket: core.s3.bucket }))),
      ...(warehouse ? { warehouse: async () => void (await warehouse.pool.query('SELECT 1')) } : {}),
      'status view': async () => {
        if (!store.ready) throw new Error('report-status not read up to its end yet');
      },
    },
    s.role === 'processor'
      ? undefined
      : (app) => registerShimRoutes(app, { producer: shimProducer, s3, store, apiKeys: new ApiKeyCheck(s.apiKey ?? []), webhooks, settings: s, metrics, logger, openApi: reportsOpenApi(s.linkExpirySeconds) }),
    s.httpPort,
  );

  const { startup } = ctx;
  const kafkaAt = `Kafka at ${core.kafka.brokers.join(',')}`;
  await startup.dependency(kafkaAt, () => admin.connect());
  // Its own topics as the topic plan defines them (`sluice topics plan`).
  await startup.dependency(kafkaAt, () => ensureTopics(admin, reportsTopics({ kafka: core.kafka, reports: s }), logger));
  await startup.dependency(kafkaAt, () => producer.connect());
  if (s.role !== 'processor') await startup.dependency(kafkaAt, () => shimProducer.connect());
  await startup.dependency(kafkaAt, async () => {
    try {
      await store.start();
    } catch (error) {
      await store.stop().catch(() => undefined); // its half-started consumer closed before the next attempt
      throw error;
    }
  });

  if (s.role !== 'shim') {
    const readers = { count: s.readerThreads ?? availableParallelism(), s3: core.s3 };
    const processor = new ReportProcessor({ kafka, producer, s3, bucket: core.s3.bucket, store, notifier, rules, readers, warehouse, settings: s, logger, metrics });
    ctx.shutdown.add('report processor', () => processor.stop());
    await startup.dependency(kafkaAt, async () => {
      try {
        await processor.start();
      } catch (error) {
        await processor.stop().catch(() => undefined);
        throw error;
      }
    });
  }
  startup.ready();

  const runSchedule = async (now: Date = new Date()): Promise<string> => {
    const month = previousMonth(now);
    const request: ReportRequest = {
      request_id: `scheduled-agent_commissions-${month}`,
      report_type: 'agent_commissions',
      month,
      format: s.scheduleFormat,
      requested_at: now.toISOString(),
      requested_via: 'schedule',
      ...(s.scheduleNotifyEmail || s.scheduleNotifyWebhook
        ? { notify: { ...(s.scheduleNotifyEmail ? { email: s.scheduleNotifyEmail.split(',').map((e) => e.trim()) } : {}), ...(s.scheduleNotifyWebhook ? { webhook: s.scheduleNotifyWebhook } : {}) } }
        : {}),
    };
    // The id is the month's: every instance and every rerun of the schedule names the same report.
    await producer.send({ topic: s.requestsTopic, acks: -1, messages: [{ key: request.request_id, value: JSON.stringify(request) }] });
    logger.info({ requestId: request.request_id, month }, 'scheduled report requested');
    return request.request_id;
  };
  if (s.schedule && s.role !== 'shim') {
    const job = new Cron(s.schedule, { timezone: 'UTC', protect: true }, () => void runSchedule().catch((error) => logger.error({ err: error }, 'scheduled report request failed')));
    ctx.shutdown.add('schedule', () => job.stop());
    logger.info({ schedule: s.schedule, next: job.nextRun()?.toISOString() }, 'monthly report scheduled');
  }
  logger.info({ role: s.role, port: server.port, requestsTopic: s.requestsTopic, statusTopic: s.statusTopic, rules: rules.version, source: warehouse ? `warehouse table ${warehouse.table}` : `lake s3://${core.s3.bucket}/${s.lakePrefix}` }, 'reports ready');
  return {
    port: server.port,
    url: server.url,
    store,
    metrics: ctx.metrics,
    runSchedule,
    stop: async () => void (await ctx.shutdown.run()),
  };
}

function validateCron(expression: string): void {
  try {
    new Cron(expression, { timezone: 'UTC', paused: true }).stop();
  } catch (error) {
    throw new ConfigError([{ source: 'env SLUICE_REPORTS_SCHEDULE', setting: 'reports.schedule', message: `not a cron expression: ${(error as Error).message}`, fix: 'write five fields, e.g. "0 6 1 * *" for 06:00 UTC on the 1st' }]);
  }
}
