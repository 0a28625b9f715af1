import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { eventually, hostPortOf, requireServer } from './servers.js';

/**
 * Partner files for `sluice files` tests: CSV (with quotes, embedded line breaks, a BOM)
 * or JSON lines of agent events with deterministic event ids, a share of them invalid in
 * each of docs/domain.md's ways, and what the file must come to (valid ids, rejected
 * lines with their reasons).
 */

export const CSV_HEADER = 'event_id,event_type,agent_id,customer_id,amount_minor,currency,occurred_at,source,metadata';

/** A UUID that is a function of the run and the row. */
export function fileEventId(run: string, i: number): string {
  const h = createHash('sha256').update(`${run}:${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The invalid kinds, each with the reason code the receipt, the rejects file and the DLQ must give. */
export const INVALID_KINDS = [
  { reason: 'unknown_event_type', patch: { event_type: 'refund_made' } },
  { reason: 'missing_field:customer_id', patch: { customer_id: '' } },
  { reason: 'invalid_amount', patch: { amount_minor: '-5' } },
  { reason: 'currency_mismatch', patch: { currency: 'EUR' } },
  { reason: 'invalid_timestamp', patch: { occurred_at: '2099-01-01T00:00:00Z' } },
] as const;

export interface GeneratedFile {
  text: string;
  valid: string[];
  invalid: { line: number; reason: string; eventId: string }[];
}

export interface GenerateOptions {
  run: string;
  rows: number;
  /** Every n-th row is invalid (rotating through INVALID_KINDS); 0: none. */
  invalidEvery?: number;
  /** Every n-th valid row has metadata with a quote, a comma and a line break. */
  trickyEvery?: number;
  bom?: boolean;
  /** First row number (to make several files with distinct ids). */
  from?: number;
}

const TYPES = ['deposit_made', 'customer_onboarded', 'withdrawal_made', 'investment_made'] as const;

function baseRow(run: string, i: number): Record<string, string> {
  const type = TYPES[i % TYPES.length]!;
  const money = type !== 'customer_onboarded';
  return {
    event_id: fileEventId(run, i),
    event_type: type,
    agent_id: `agent-${run}-${i % 37}`,
    customer_id: `cust-${run}-${i}`,
    amount_minor: money ? String(1000 + (i % 997)) : '',
    currency: money ? 'USD' : '',
    occurred_at: `2026-10-${String(1 + (i % 28)).padStart(2, '0')}T10:${String(i % 60).padStart(2, '0')}:00Z`,
    source: 'backend',
    metadata: '',
  };
}

const csvCell = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

export function generateCsv(o: GenerateOptions): GeneratedFile {
  const lines: string[] = [CSV_HEADER];
  const valid: string[] = [];
  const invalid: GeneratedFile['invalid'] = [];
  let line = 2;
  const from = o.from ?? 0;
  for (let i = from; i < from + o.rows; i++) {
    const row = baseRow(o.run, i);
    const bad = o.invalidEvery && i % o.invalidEvery === o.invalidEvery - 1 ? INVALID_KINDS[Math.floor(i / o.invalidEvery) % INVALID_KINDS.length]! : undefined;
    if (bad) Object.assign(row, baseRow(o.run, i), { event_type: 'deposit_made', amount_minor: '1500', currency: 'USD' }, bad.patch);
    if (!bad && o.trickyEvery && i % o.trickyEvery === 0) row.metadata = JSON.stringify({ note: `said "hi", then\nleft`, product: 'fund-a' });
    const text = Object.values(row).map(csvCell).join(',');
    lines.push(text);
    if (bad) invalid.push({ line, reason: bad.reason, eventId: row.event_id! });
    else valid.push(row.event_id!);
    line += text.split('\n').length;
  }
  return { text: `${o.bom ? '\uFEFF' : ''}${lines.join('\n')}\n`, valid, invalid };
}

export function generateJsonl(o: GenerateOptions): GeneratedFile {
  const lines: string[] = [];
  const valid: string[] = [];
  const invalid: GeneratedFile['invalid'] = [];
  const from = o.from ?? 0;
  for (let i = from; i < from + o.rows; i++) {
    const row: Record<string, unknown> = Object.fromEntries(Object.entries(baseRow(o.run, i)).filter(([, v]) => v !== ''));
    const bad = o.invalidEvery && i % o.invalidEvery === o.invalidEvery - 1 ? INVALID_KINDS[Math.floor(i / o.invalidEvery) % INVALID_KINDS.length]! : undefined;
    if (bad) Object.assign(row, { event_type: 'deposit_made', amount_minor: '1500', currency: 'USD' });
    if (bad) for (const [k, v] of Object.entries(bad.patch)) if (v === '') delete row[k]; else row[k] = v;
    lines.push(JSON.stringify(row));
    if (bad) invalid.push({ line: lines.length, reason: bad.reason, eventId: row.event_id as string });
    else valid.push(row.event_id as string);
  }
  return { text: `${lines.join('\n')}\n`, valid, invalid };
}

export async function put(s3: S3Client, bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString('utf8');
}

export interface LedgerState {
  file_id: string;
  object_key: string;
  object_version: string;
  status: string;
  rows_read: string;
  rows_accepted: string;
  rows_rejected: string;
  rows_duplicate: string;
  committed_rows: string;
  error_reason: string | null;
  first_error: string | null;
  duplicate_of: string | null;
  attempts: number;
  received_at: Date;
  disposition: string | null;
  sha256: string | null;
}

/** The ledger rows of a key, oldest first. */
export async function ledgerRows(pool: pg.Pool, bucket: string, key: string): Promise<LedgerState[]> {
  const { rows } = await pool.query<LedgerState>('SELECT * FROM staging.file_ingestions WHERE bucket = $1 AND object_key = $2 ORDER BY file_id', [bucket, key]);
  return rows;
}

/** Waits until the key has `versions` ledger rows, the last one final, and returns it. */
export async function waitDone(pool: pg.Pool, bucket: string, key: string, timeoutMs = 60_000, versions = 1): Promise<LedgerState> {
  return eventually(
    async () => {
      const rows = await ledgerRows(pool, bucket, key);
      const last = rows[rows.length - 1];
      return rows.length >= versions && last && ['succeeded', 'failed', 'duplicate'].includes(last.status) ? last : undefined;
    },
    timeoutMs,
    `${key} processed`,
  );
}

/** How many of these event ids staging.agent_events holds. */
export async function storedCount(pool: pg.Pool, ids: readonly string[]): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM staging.agent_events WHERE event_id = ANY($1::uuid[])', [ids]);
  return Number(rows[0]!.n);
}

/** Parses the rejects CSV (RFC 4180) into records of its four columns. */
export function parseRejects(text: string): { line: number; reasons: string; message: string; original: string }[] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else field += c;
  }
  const [header, ...rows] = records;
  if (header?.join(',') !== 'line,reasons,message,original') throw new Error(`unexpected rejects header ${header?.join(',')}`);
  return rows.map((r) => ({ line: Number(r[0]), reasons: r[1]!, message: r[2]!, original: r[3]! }));
}

/**
 * The env of a `sluice files` under test: every prefix under `root` (so tests never see
 * each other's files), its own DLQ topic, a short poll.
 */
export function filesEnv(root: string, o: { sources: string; dlqTopic: string; httpPort: string | number; pollMs?: number; batchRows?: number }): Record<string, string> {
  return {
    SLUICE_FILES_SOURCES: o.sources,
    SLUICE_FILES_INCOMING_PREFIX: `${root}incoming/`,
    SLUICE_FILES_PROCESSED_PREFIX: `${root}processed/`,
    SLUICE_FILES_FAILED_PREFIX: `${root}failed/`,
    SLUICE_FILES_REJECTS_PREFIX: `${root}rejects/`,
    SLUICE_FILES_RECEIPTS_PREFIX: `${root}receipts/`,
    SLUICE_FILES_DLQ_TOPIC: o.dlqTopic,
    SLUICE_FILES_POLL_INTERVAL_MS: String(o.pollMs ?? 300),
    ...(o.batchRows !== undefined ? { SLUICE_FILES_BATCH_ROWS: String(o.batchRows) } : {}),
    SLUICE_FILES_HTTP_PORT: String(o.httpPort),
  };
}

/** What every files test talks to: S3, the staging database and Kafka, checked up first. */
export interface FileDropRig {
  s3: S3Client;
  pool: pg.Pool;
  kafka: Kafka;
  /** Deletes the given topics (the test's DLQ) and closes every client. */
  close(topics?: string[]): Promise<void>;
}

export async function openFileDropRig(settings: CoreSettings): Promise<FileDropRig> {
  await requireServer('PostgreSQL', hostPortOf(settings.database.url));
  await requireServer('Kafka broker', settings.kafka.brokers[0]!);
  const s3 = createS3Client(settings.s3);
  const pool = createPool(settings.database.url, { max: 2 });
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  return {
    s3,
    pool,
    kafka,
    async close(topics = []) {
      await pool.end();
      if (topics.length > 0) {
        const admin = kafka.admin();
        await admin
          .connect()
          .then(() => admin.deleteTopics({ topics }).catch(() => undefined))
          .finally(() => admin.disconnect());
      }
      s3.destroy();
    },
  };
}
