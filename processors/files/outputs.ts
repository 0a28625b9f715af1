import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Producer } from 'kafkajs';
import { Readable } from 'node:stream';
import { deadLetterMessage } from '../core/dlq/dead-letter.js';
import type { Logger } from '../core/log/logger.js';
import { s3Encryption, type S3Settings } from '../core/s3/client.js';
import { csvTextField } from '../core/text/csv.js';
import type { Notifier } from '../reports/notify.js';
import { escapeHtml } from '../reports/notify.js';
import type { Ledger, LedgerRow, Reject } from './ledger.js';
import type { FilesMetrics } from './metrics.js';
import type { FilesSettings } from './settings.js';

/**
 * What a finished file leaves behind: its rejects CSV and DLQ records (from the ledger's
 * rejects table, written there with the rows' batches), its receipt, a notification when
 * it failed or rejected too much, then the object moved or tagged. Every step can run
 * again (a crash before the ledger says final repeats them): S3 writes overwrite, a
 * repeated DLQ record has the same key (file and line), and the move copies before it deletes.
 */

export const PROCESSOR = 'files';
/** The row rules a receipt names: the ingest API's validation (docs/domain.md) of this version. */
export const RULES_VERSION = 'agent-events/domain-v1';
const DLQ_CHUNK = 500;
const REJECTS_PAGE = 2000;
/** A DLQ record stays under the topic's 2 MiB max.message.bytes. */
const MAX_DLQ_VALUE = 1024 * 1024;

export interface OutputDeps {
  s3: S3Client;
  s3Settings: S3Settings;
  producer: Producer;
  ledger: Ledger;
  notifier: Notifier;
  metrics: FilesMetrics;
  settings: FilesSettings;
  logger: Logger;
}

/** Where a file's outputs go: <prefix><source>/<date>/<path under incoming/<source>/>. */
export function outputKeys(s: Pick<FilesSettings, 'incomingPrefix' | 'rejectsPrefix' | 'receiptsPrefix' | 'processedPrefix' | 'failedPrefix'>, row: Pick<LedgerRow, 'key' | 'source' | 'receivedAt' | 'discoveredAt'>) {
  const base = `${s.incomingPrefix}${row.source}/`;
  const relative = row.key.startsWith(base) ? row.key.slice(base.length) : row.key;
  const date = (row.receivedAt ?? row.discoveredAt).toISOString().slice(0, 10);
  return {
    relative,
    rejects: `${s.rejectsPrefix}${row.source}/${date}/${relative}.rejects.csv`,
    receipt: `${s.receiptsPrefix}${row.source}/${date}/${relative}.json`,
    processed: `${s.processedPrefix}${row.source}/${relative}`,
    failed: `${s.failedPrefix}${row.source}/${relative}`,
  };
}

export interface Receipt {
  file: { bucket: string; key: string; version: string; etag: string; size_bytes: number; sha256: string | null; source: string; last_modified: string };
  status: 'succeeded' | 'failed' | 'duplicate';
  duplicate_of: { file_id: number; key: string } | null;
  error: { reason: string; message: string } | null;
  rows: { read: number; accepted: number; rejected: number; duplicate: number };
  reject_reasons: Record<string, number>;
  rejects_key: string | null;
  timings: { discovered_at: string; started_at: string | null; finished_at: string | null; seconds: number | null };
  attempts: number;
  rules_version: string;
  base_currency: string;
  file_id: number;
}

export async function finishFile(deps: OutputDeps, row: LedgerRow): Promise<Receipt> {
  const { s3, settings: s, ledger, logger } = deps;
  const keys = outputKeys(s, row);
  const status: Receipt['status'] = row.duplicateOf !== null ? 'duplicate' : row.errorReason ? 'failed' : 'succeeded';
  const reasons = row.rowsRejected > 0 ? await writeRejects(deps, row, keys.rejects) : {};
  let duplicateOf: Receipt['duplicate_of'] = null;
  if (row.duplicateOf !== null) {
    const earlier = await ledger.get(row.duplicateOf);
    duplicateOf = { file_id: row.duplicateOf, key: earlier?.key ?? '' };
  }
  const receipt: Receipt = {
    file_id: row.fileId,
    file: { bucket: row.bucket, key: row.key, version: row.version, etag: row.etag, size_bytes: row.size, sha256: row.sha256, source: row.source, last_modified: row.lastModified.toISOString() },
    status,
    duplicate_of: duplicateOf,
    error: row.errorReason ? { reason: row.errorReason, message: row.firstError ?? '' } : null,
    rows: { read: row.rowsRead, accepted: row.rowsAccepted, rejected: row.rowsRejected, duplicate: row.rowsDuplicate },
    reject_reasons: reasons,
    rejects_key: row.rowsRejected > 0 ? keys.rejects : null,
    timings: {
      discovered_at: row.discoveredAt.toISOString(),
      started_at: row.startedAt?.toISOString() ?? null,
      finished_at: row.finishedAt?.toISOString() ?? null,
      seconds: row.startedAt && row.finishedAt ? (row.finishedAt.getTime() - row.startedAt.getTime()) / 1000 : null,
    },
    attempts: row.attempts,
    rules_version: RULES_VERSION,
    base_currency: s.baseCurrency,
  };
  await s3.send(new PutObjectCommand({ Bucket: row.bucket, Key: keys.receipt, Body: `${JSON.stringify(receipt, null, 2)}\n`, ContentType: 'application/json', ...s3Encryption(deps.s3Settings) }));
  await notifyIfNeeded(deps, row, receipt, keys.receipt);
  const disposition = await dispose(deps, row, status);
  await ledger.finished(row.fileId, status, disposition);
  await ledger.deleteRejects(row.fileId);
  deps.metrics.files.inc({ source: row.source, status });
  logger.info({ fileId: row.fileId, key: row.key, status, rows: receipt.rows, error: receipt.error?.reason, receipt: keys.receipt, disposition }, 'file done');
  return receipt;
}

/** The rejects CSV (streamed to S3 from the ledger, page by page) and one DLQ record per reject. */
async function writeRejects(deps: OutputDeps, row: LedgerRow, key: string): Promise<Record<string, number>> {
  const { ledger, producer, settings: s } = deps;
  const counts: Record<string, number> = {};
  const source = `s3://${row.bucket}/${row.key}`;
  async function* csv(): AsyncGenerator<string> {
    yield 'line,reasons,message,original\n';
    let after = 0;
    for (;;) {
      const page = await ledger.rejects(row.fileId, after, REJECTS_PAGE);
      if (page.length === 0) return;
      for (const r of page) for (const reason of r.reasons) counts[reason] = (counts[reason] ?? 0) + 1;
      await sendDeadLetters(producer, s.dlqTopic, source, row, page);
      deps.metrics.dlq.inc({ source: row.source }, page.length);
      yield page.map((r) => `${r.line},${csvTextField(r.reasons.join(';'))},${csvTextField(r.message)},${csvTextField(r.original)}\n`).join('');
      after = page[page.length - 1]!.line;
    }
  }
  const upload = new Upload({
    client: deps.s3,
    params: { Bucket: row.bucket, Key: key, Body: Readable.from(csv()), ContentType: 'text/csv; charset=utf-8', ...s3Encryption(deps.s3Settings) },
    queueSize: 2,
  });
  await upload.done();
  return counts;
}

async function sendDeadLetters(producer: Producer, topic: string, source: string, row: LedgerRow, rejects: readonly Reject[]): Promise<void> {
  for (let i = 0; i < rejects.length; i += DLQ_CHUNK) {
    const messages = rejects.slice(i, i + DLQ_CHUNK).map((r) => {
      const value = Buffer.from(r.original, 'utf8');
      const message = deadLetterMessage(
        {
          topic: source,
          partition: 0,
          message: {
            // File and line: a record sent again after a crash has the same key.
            key: Buffer.from(`${row.bucket}/${row.key}@${row.version}:${r.line}`),
            value: value.length > MAX_DLQ_VALUE ? value.subarray(0, MAX_DLQ_VALUE) : value,
            headers: { 'sluice.file.key': row.key, 'sluice.file.line': String(r.line), 'sluice.file.source': row.source, 'sluice.file.sha256': row.sha256 ?? '' },
            offset: String(r.line),
            timestamp: String(row.lastModified.getTime()),
          },
        },
        { reason: r.reasons.join(';'), error: r.message },
        PROCESSOR,
      );
      return message;
    });
    await producer.send({ topic, acks: -1, messages });
  }
}

async function notifyIfNeeded(deps: OutputDeps, row: LedgerRow, receipt: Receipt, receiptKey: string): Promise<void> {
  const { settings: s } = deps;
  const rate = row.rowsRead > 0 ? row.rowsRejected / row.rowsRead : 0;
  const failed = receipt.status === 'failed';
  if (!failed && rate <= s.rejectRateAlert) return;
  const target = { ...(s.notifyEmail ? { email: s.notifyEmail.split(',').map((e) => e.trim()).filter(Boolean) } : {}), ...(s.notifyWebhook ? { webhook: s.notifyWebhook } : {}) };
  if (!target.email && !target.webhook) return;
  const what = failed
    ? `failed: ${receipt.error!.reason} (${receipt.error!.message})`
    : `rejected ${row.rowsRejected} of ${row.rowsRead} rows (${(rate * 100).toFixed(1)} %, over the ${(s.rejectRateAlert * 100).toFixed(1)} % threshold)`;
  const text = `Sluice file ${row.source}/${outputKeys(s, row).relative} ${what}. Rows accepted ${row.rowsAccepted}, duplicate ${row.rowsDuplicate}, rejected ${row.rowsRejected}. Receipt: s3://${row.bucket}/${receiptKey}`;
  const outcomes = await deps.notifier.send(target, {
    subject: `Sluice file ${failed ? 'failed' : 'has many rejects'}: ${row.source}/${outputKeys(s, row).relative}`,
    text,
    html: `<p>${escapeHtml(text)}</p>`,
    webhookPayload: { text, file: row.key, source: row.source, status: receipt.status, error: receipt.error, rows: receipt.rows, receipt: `s3://${row.bucket}/${receiptKey}` },
  });
  for (const o of outcomes) {
    deps.metrics.notifications.inc({ channel: o.channel, outcome: o.ok ? 'sent' : 'failed' });
    if (!o.ok) deps.logger.warn({ channel: o.channel, target: o.target, error: o.error, key: row.key }, 'file notification failed');
  }
}

/** Moves (copy, then delete if the key still holds this version), tags, or keeps the object. */
async function dispose(deps: OutputDeps, row: LedgerRow, status: Receipt['status']): Promise<string> {
  const { s3, settings: s } = deps;
  const versioned = row.version !== row.etag;
  if (s.afterProcessing === 'keep') return 'kept';
  if (s.afterProcessing === 'tag') {
    await s3.send(
      new PutObjectTaggingCommand({
        Bucket: row.bucket,
        Key: row.key,
        ...(versioned ? { VersionId: row.version } : {}),
        Tagging: { TagSet: [{ Key: 'sluice-status', Value: status }, { Key: 'sluice-file-id', Value: String(row.fileId) }] },
      }),
    );
    return `tagged sluice-status=${status}`;
  }
  const keys = outputKeys(s, row);
  const target = status === 'failed' ? keys.failed : keys.processed;
  const head = await s3.send(new HeadObjectCommand({ Bucket: row.bucket, Key: row.key })).catch((error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
    if (error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  });
  // Gone already (moved before a crash), or replaced by a new version that is its own file.
  if (!head || (!versioned && head.ETag !== row.etag) || (versioned && head.VersionId !== row.version)) return target;
  await s3.send(
    new CopyObjectCommand({
      Bucket: row.bucket,
      Key: target,
      CopySource: `${row.bucket}/${row.key.split('/').map(encodeURIComponent).join('/')}${versioned ? `?versionId=${encodeURIComponent(row.version)}` : ''}`,
      CopySourceIfMatch: row.etag,
      ...s3Encryption(deps.s3Settings),
    }),
  );
  await s3.send(new DeleteObjectCommand({ Bucket: row.bucket, Key: row.key, ...(versioned ? { VersionId: row.version } : {}) }));
  return target;
}


/**
 * An object whose identity the ledger already finished, found again under incoming/: the
 * move was cut short, or the very same object was dropped again. It is moved (or tagged)
 * like the first time, without being read again.
 */
export async function redispose(deps: OutputDeps, bucket: string, key: string, version: string): Promise<void> {
  const row = await deps.ledger.latestOf(bucket, key);
  if (!row || row.version !== version || !(row.status === 'succeeded' || row.status === 'failed' || row.status === 'duplicate')) return;
  const target = await dispose(deps, row, row.status);
  deps.logger.info({ fileId: row.fileId, key, status: row.status, disposition: target }, 'object already ingested, found again: moved without reading it');
}
