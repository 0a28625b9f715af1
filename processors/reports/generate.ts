import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { withRetry } from '../core/errors/retry.js';
import type { S3Settings } from '../core/s3/client.js';
import { commission, type CommissionRules } from './commission.js';
import { aggregateMonth } from './lake-month.js';
import { aggregateWarehouseMonth } from './warehouse-month.js';
import { byCodePoint, renderCsv, renderJson } from './render.js';
import { reportKey, type ReportRequest } from './request.js';
import type { ReportResult } from './status.js';

export interface GenerateOptions {
  s3: S3Client;
  bucket: string;
  lakePrefix: string;
  reportsPrefix: string;
  currency: string;
  rules: CommissionRules;
  /** Read the lake with this many threads (each its own S3 client from these settings). */
  readers?: { count: number; s3: S3Settings } | undefined;
  onProgress?: (done: number, total: number) => void;
  /** Read the month from the warehouse (`source: warehouse`) instead of the lake: its pool and events table. */
  warehouse?: { pool: pg.Pool; table: string } | undefined;
}

/**
 * One report: the month's lake partitions (or the warehouse's rows) aggregated per agent, docs/domain.md's commission per
 * row, rendered and written to its predictable key. Pure apart from reading the lake and
 * writing the file, so a rerun of the same request writes the same bytes (bar the JSON's
 * generated_at).
 */
export async function generateReport(request: ReportRequest, o: GenerateOptions): Promise<ReportResult> {
  const aggregate = o.warehouse
    ? await aggregateWarehouseMonth(o.warehouse.pool, { table: o.warehouse.table, month: request.month, agentIds: request.agent_ids ? new Set(request.agent_ids) : undefined })
    : await aggregateMonth(o.s3, {
    bucket: o.bucket,
    prefix: o.lakePrefix,
    month: request.month,
    agentIds: request.agent_ids ? new Set(request.agent_ids) : undefined,
    workers: o.readers,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  const rows = [...aggregate.agents.values()].sort((a, b) => byCodePoint(a.agentId, b.agentId)).map((m) => commission(m, o.rules));
  const generatedAt = new Date().toISOString();
  const text =
    request.format === 'csv'
      ? renderCsv(rows, request.month, o.currency)
      : renderJson(rows, request, o.currency, {
          generated_at: generatedAt,
          rules_version: o.rules.version,
          ...(o.warehouse
            ? { warehouse: { table: o.warehouse.table, rows_read: aggregate.rows } }
            : { lake: { bucket: o.bucket, prefix: o.lakePrefix, files: aggregate.files, rows_read: aggregate.rows, duplicates_ignored: aggregate.duplicates } }),
        });
  const key = reportKey(o.reportsPrefix, request);
  const body = Buffer.from(text, 'utf8');
  await withRetry(() =>
    o.s3.send(
      new PutObjectCommand({
        Bucket: o.bucket,
        Key: key,
        Body: body,
        ContentType: request.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json',
        ContentDisposition: `attachment; filename="${request.report_type}-${request.month}-${request.request_id}.${request.format}"`,
      }),
    ),
  );
  return { bucket: o.bucket, key, format: request.format, rows: rows.length, bytes: body.byteLength, rules_version: o.rules.version, generated_at: generatedAt, lake_files: aggregate.files };
}
