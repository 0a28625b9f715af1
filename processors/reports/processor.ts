import type pg from 'pg';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { deadLetterMessage } from '../core/dlq/dead-letter.js';
import { DLQ_REASONS } from '../core/dlq/reasons.js';
import type { Logger } from '../core/log/logger.js';
import type { S3Settings } from '../core/s3/client.js';
import type { CommissionRules } from './commission.js';
import { generateReport } from './generate.js';
import { startReaderThreads } from './lake-month.js';
import type { ReportsMetrics } from './metrics.js';
import type { Notifier } from './notify.js';
import { parseReportRequest, type ReportRequest } from './request.js';
import type { ReportsSettings } from './settings.js';
import { publishStatus, type ReportResult, type ReportStatus, type StatusStore } from './status.js';

export interface ProcessorDeps {
  kafka: Kafka;
  producer: Producer;
  s3: S3Client;
  bucket: string;
  store: StatusStore;
  notifier: Notifier;
  rules: CommissionRules;
  /** Threads reading the lake, with the S3 settings each opens its client with. */
  readers: { count: number; s3: S3Settings };
  /** `source: warehouse`: the month is read from this pool's events table instead of the lake. */
  warehouse?: { pool: pg.Pool; table: string } | undefined;
  settings: ReportsSettings;
  logger: Logger;
  metrics: ReportsMetrics;
}

/**
 * Consumes `report-requests` one at a time, in order per partition: a malformed request
 * goes to the DLQ with its field errors; a request whose id already succeeded is answered
 * from that result (republished, its target notified again), not recomputed; any other
 * runs (running -> succeeded with the file's key, or failed with a reason). The offset is
 * committed after the final state is published, so a crash repeats at most the request in
 * hand, and the repeat is answered from its result once it succeeded.
 */
export class ReportProcessor {
  private readonly consumer: Consumer;

  constructor(private readonly d: ProcessorDeps) {
    // A short fetch wait: a request is answered sooner, and a stop does not wait out a 5 s fetch.
    this.consumer = d.kafka.consumer({ groupId: d.settings.groupId, sessionTimeout: 60_000, rebalanceTimeout: 120_000, maxWaitTimeInMs: 500 });
  }

  async start(): Promise<void> {
    // The lake's reader threads start now, beside the consumer, not with the first report (lake-month.ts).
    if (!this.d.warehouse) {
      startReaderThreads(this.d.readers.s3, this.d.readers.count).catch((error: unknown) =>
        this.d.logger.warn({ err: error }, 'lake reader threads did not start ahead of the first report; the first report starts them'),
      );
    }
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.d.settings.requestsTopic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message, heartbeat }) => {
        const keepAlive = setInterval(() => void heartbeat().catch(() => undefined), 3000);
        try {
          await this.handle(topic, partition, message);
        } finally {
          clearInterval(keepAlive);
        }
        await this.consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }

  private async handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    const { settings, logger, metrics } = this.d;
    let body: unknown;
    try {
      body = JSON.parse(message.value?.toString('utf8') ?? '');
    } catch (error) {
      return this.deadLetter(topic, partition, message, DLQ_REASONS.malformedJson, `the request is not JSON: ${(error as Error).message}`);
    }
    if (body && typeof body === 'object' && !('requested_via' in body)) (body as Record<string, unknown>).requested_via = 'topic';
    const parsed = parseReportRequest(body);
    if (!parsed.ok) {
      return this.deadLetter(topic, partition, message, DLQ_REASONS.invalidRequest, parsed.errors.map((e) => `${e.field}: ${e.code} (${e.message})`).join('; '));
    }
    const request = parsed.request;
    const earlier = this.d.store.get(request.request_id);
    if (earlier?.state === 'succeeded' && earlier.result) {
      logger.info({ requestId: request.request_id, key: earlier.result.key }, 'request already done: answered from its result');
      const notifications = await this.notify(request, earlier.result);
      await publishStatus(this.d.producer, settings.statusTopic, this.d.store, { ...earlier, at: new Date().toISOString(), from_earlier_result: true, notifications });
      metrics.requests.inc({ outcome: 'answered_from_result' });
      return;
    }
    const base = { request_id: request.request_id, request };
    if (earlier?.state !== 'queued') await this.publish({ ...base, state: 'queued', at: new Date().toISOString() });
    await this.publish({ ...base, state: 'running', at: new Date().toISOString() });
    const started = Date.now();
    let result: ReportResult;
    try {
      result = await generateReport(request, {
        s3: this.d.s3,
        bucket: this.d.bucket,
        lakePrefix: settings.lakePrefix,
        reportsPrefix: settings.reportsPrefix,
        currency: settings.baseCurrency,
        rules: this.d.rules,
        readers: this.d.readers,
        warehouse: this.d.warehouse,
      });
    } catch (error) {
      logger.error({ requestId: request.request_id, err: error }, 'report failed');
      await this.publish({ ...base, state: 'failed', at: new Date().toISOString(), error: { reason: 'generation_failed', message: (error as Error).message } });
      metrics.requests.inc({ outcome: 'failed' });
      return;
    }
    metrics.seconds.observe((Date.now() - started) / 1000);
    const notifications = await this.notify(request, result);
    await this.publish({ ...base, state: 'succeeded', at: new Date().toISOString(), result, notifications });
    metrics.requests.inc({ outcome: 'succeeded' });
    logger.info({ requestId: request.request_id, month: request.month, key: result.key, rows: result.rows, lakeFiles: result.lake_files, ms: Date.now() - started }, 'report written');
  }

  private async notify(request: ReportRequest, result: ReportResult) {
    if (!request.notify) return [];
    const expiresIn = this.d.settings.linkExpirySeconds;
    const url = await getSignedUrl(this.d.s3, new GetObjectCommand({ Bucket: result.bucket, Key: result.key }), { expiresIn });
    const outcomes = await this.d.notifier.notify(request.notify, {
      requestId: request.request_id,
      reportType: request.report_type,
      month: request.month,
      format: result.format,
      rows: result.rows,
      url,
      expiresAt: new Date(Date.now() + expiresIn * 1000).toISOString(),
    });
    for (const o of outcomes) {
      this.d.metrics.notifications.inc({ channel: o.channel, outcome: o.ok ? 'sent' : 'failed' });
      if (!o.ok) this.d.logger.warn({ requestId: request.request_id, channel: o.channel, target: o.target, error: o.error }, 'notification failed');
    }
    return outcomes;
  }

  private publish(status: ReportStatus): Promise<void> {
    return publishStatus(this.d.producer, this.d.settings.statusTopic, this.d.store, status);
  }

  private async deadLetter(topic: string, partition: number, message: KafkaMessage, reason: string, error: string): Promise<void> {
    this.d.logger.warn({ partition, offset: message.offset, reason, error }, 'malformed report request: sent to the DLQ');
    await this.d.producer.send({ topic: this.d.settings.dlqTopic, acks: -1, messages: [deadLetterMessage({ topic, partition, message }, { reason, error }, 'reports')] });
    this.d.metrics.requests.inc({ outcome: 'dead_letter' });
  }
}
