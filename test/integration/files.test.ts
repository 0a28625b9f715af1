import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS, readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { startFiles, type RunningFiles } from '../../processors/files/files.js';
import { CSV_HEADER, fileEventId, filesEnv, generateCsv, generateJsonl, getText, ledgerRows, openFileDropRig, parseRejects, put, storedCount, waitDone, type FileDropRig, type LedgerState } from '../support/file-drops.js';
import { collect } from '../support/kafka.js';
import { startSmtpCapture, startWebhookCapture, type SmtpCapture, type WebhookCapture } from '../support/reports-notify.js';
import { testSettings } from '../support/servers.js';

/**
 * `sluice files` against the real stack: files dropped into S3 become rows of
 * staging.agent_events once, and every bad input of issue 16 ends with its reason in the
 * receipt, the rejects file and the DLQ, the file moved, and a notification when it failed.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const root = `files-test-${run}/`;
const dlqTopic = `files-test-${run}.dlq`;
const bucket = settings.s3.bucket;
let s3: S3Client;
let pool: pg.Pool;
let kafka: Kafka;
let rig: FileDropRig;
let files: RunningFiles;
let smtp: SmtpCapture;
let webhook: WebhookCapture;

const incoming = (source: string, name: string) => `${root}incoming/${source}/${name}`;
const today = (row: LedgerState) => row.received_at.toISOString().slice(0, 10);
const receiptOf = async (source: string, name: string, row: LedgerState) => JSON.parse(await getText(s3, bucket, `${root}receipts/${source}/${today(row)}/${name}.json`)) as Record<string, any>;
const rejectsOf = async (source: string, name: string, row: LedgerState) => parseRejects(await getText(s3, bucket, `${root}rejects/${source}/${today(row)}/${name}.rejects.csv`));
const exists = async (key: string) =>
  s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    () => false,
  );

/** The DLQ records of a file (key file@version:line), once the expected number is there. */
async function deadLetters(key: string, count: number): Promise<KafkaMessage[]> {
  const mine = (ms: KafkaMessage[]) => ms.filter((m) => m.headers?.['sluice.file.key']?.toString() === key);
  return mine(await collect(kafka, dlqTopic, (ms) => mine(ms).length >= count, 30_000));
}

beforeAll(async () => {
  rig = await openFileDropRig(settings);
  ({ s3, pool, kafka } = rig);
  smtp = await startSmtpCapture();
  webhook = await startWebhookCapture(`/hooks/${randomBytes(8).toString('hex')}`);
  files = await startFiles({
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: 'warn',
      ...filesEnv(root, { sources: 'partner-csv:csv,partner-jsonl:jsonl,partner-semi:csv:;', dlqTopic, httpPort: 0, batchRows: 2000 }),
      SLUICE_FILES_NOTIFY_EMAIL: 'ops@example.com',
      SLUICE_FILES_SMTP_URL: smtp.url,
      SLUICE_FILES_NOTIFY_WEBHOOK: webhook.url,
      SLUICE_FILES_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      SLUICE_FILES_WEBHOOK_ALLOWED_NETWORKS: '127.0.0.1/32',
      SLUICE_FILES_REJECT_RATE_ALERT: '0.5',
    },
  });
}, 120_000);

afterAll(async () => {
  await files?.stop();
  await smtp?.close();
  await webhook?.close();
  await rig?.close([dlqTopic]);
});

describe('sluice files', () => {
  it('ingests a gzipped CSV (BOM, quotes and line breaks in fields, every docs/domain.md error) once: rows in staging, rejects file, DLQ, receipt, moved', async () => {
    const file = generateCsv({ run, rows: 20_000, invalidEvery: 50, trickyEvery: 7, bom: true });
    const name = 'drops/2026-11-01/batch.csv.gz';
    const key = incoming('partner-csv', name);
    await put(s3, bucket, key, gzipSync(file.text));
    const row = await waitDone(pool, bucket, key, 120_000);

    expect(row.status, row.first_error ?? '').toBe('succeeded');
    expect(Number(row.rows_read)).toBe(20_000);
    expect(Number(row.rows_accepted)).toBe(file.valid.length);
    expect(Number(row.rows_rejected)).toBe(file.invalid.length);
    expect(Number(row.rows_duplicate)).toBe(0);
    expect(await storedCount(pool, file.valid)).toBe(file.valid.length);
    expect(await storedCount(pool, file.invalid.map((r) => r.eventId))).toBe(0);
    // The parsing thread's own heap, in /metrics (its last report, at the end of the file).
    const exposed = await files.metrics.metrics();
    for (const kind of ['used', 'total', 'new_space']) {
      const m = new RegExp(`^sluice_files_parse_thread_heap_bytes\\{kind="${kind}"[^}]*\\} (\\d+)`, 'm').exec(exposed);
      expect(Number(m?.[1]), `${kind} in\n${exposed.slice(0, 300)}`).toBeGreaterThan(0);
    }
    // A metadata cell with a quote, a comma and a line break arrives whole.
    const { rows: tricky } = await pool.query<{ metadata: { note: string } }>('SELECT metadata FROM staging.agent_events WHERE event_id = $1', [fileEventId(run, 7)]);
    expect(tricky[0]!.metadata.note).toBe('said "hi", then\nleft');

    const receipt = await receiptOf('partner-csv', name, row);
    expect(receipt).toMatchObject({ status: 'succeeded', rows: { read: 20_000, accepted: file.valid.length, rejected: file.invalid.length, duplicate: 0 }, error: null });
    expect(receipt.file.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(receipt.rules_version).toBeTruthy();
    const expectedReasons: Record<string, number> = {};
    for (const r of file.invalid) expectedReasons[r.reason] = (expectedReasons[r.reason] ?? 0) + 1;
    expect(receipt.reject_reasons).toEqual(expectedReasons);
    expect(Object.keys(expectedReasons).sort()).toEqual(['currency_mismatch', 'invalid_amount', 'invalid_timestamp', 'missing_field:customer_id', 'unknown_event_type']);

    const rejects = await rejectsOf('partner-csv', name, row);
    expect(rejects.map((r) => [r.line, r.reasons])).toEqual(file.invalid.map((r) => [r.line, r.reason]));
    expect(rejects.every((r, i) => r.original.startsWith(file.invalid[i]!.eventId))).toBe(true);

    const dlq = await deadLetters(key, file.invalid.length);
    expect(dlq).toHaveLength(file.invalid.length);
    const first = readDeadLetterHeaders(dlq[0]!.headers)!;
    expect(first.processor).toBe('files');
    expect(first.topic).toBe(`s3://${bucket}/${key}`);
    expect(new Set(dlq.map((m) => m.headers![DLQ_HEADERS.reason]!.toString()))).toEqual(new Set(Object.keys(expectedReasons)));
    expect(dlq.map((m) => m.value!.toString().slice(0, 36)).sort()).toEqual(file.invalid.map((r) => r.eventId).sort());

    expect(await exists(key)).toBe(false);
    expect(await exists(`${root}processed/partner-csv/${name}`)).toBe(true);
    expect(row.disposition).toBe(`${root}processed/partner-csv/${name}`);
  }, 180_000);

  it('takes JSON lines and semicolon CSV, rejects a 10 MB line (record_too_large) and goes on, and rejects malformed JSON', async () => {
    const file = generateJsonl({ run, rows: 300, from: 100_000 });
    const huge = JSON.stringify({ event_id: randomUUID(), event_type: 'customer_onboarded', customer_id: 'c', occurred_at: '2026-10-01T00:00:00Z', agent_id: 'a', metadata: { blob: 'x'.repeat(10 * 1024 * 1024) } });
    const lines = file.text.trimEnd().split('\n');
    lines.splice(100, 0, huge, '{"event_id": oops}');
    const key = incoming('partner-jsonl', 'big-line.jsonl');
    await put(s3, bucket, key, `${lines.join('\n')}\n`);
    const semi = generateCsv({ run, rows: 40, from: 200_000 });
    const semiKey = incoming('partner-semi', 'semi.csv');
    await put(s3, bucket, semiKey, semi.text.replace(/,/g, ';'));

    const row = await waitDone(pool, bucket, key, 90_000);
    expect(row.status).toBe('succeeded');
    expect(Number(row.rows_accepted)).toBe(300);
    expect(await storedCount(pool, file.valid)).toBe(300);
    const rejects = await rejectsOf('partner-jsonl', 'big-line.jsonl', row);
    expect(rejects.map((r) => [r.line, r.reasons])).toEqual([
      [101, 'record_too_large'],
      [102, 'malformed_json'],
    ]);
    expect(rejects[0]!.original.length).toBeLessThan(70 * 1024);
    const semiRow = await waitDone(pool, bucket, semiKey, 60_000);
    expect(semiRow.status, semiRow.first_error ?? '').toBe('succeeded');
    expect(await storedCount(pool, semi.valid)).toBe(40);
  }, 120_000);

  it('fails a wrong header, non-UTF-8, a truncated gzip and a zero-byte file, each with its reason, moved to failed/, with webhook and email notifications', async () => {
    const good = generateCsv({ run, rows: 30, from: 300_000 });
    const cases = [
      { name: 'wrong-header.csv', body: Buffer.from('id,type,agent\n1,deposit_made,a\n'), reason: 'missing_columns' },
      { name: 'latin1.csv', body: Buffer.concat([Buffer.from(`${CSV_HEADER}\n`), Buffer.from('caf\xe9', 'latin1'), Buffer.from('\n')]), reason: 'invalid_encoding' },
      { name: 'truncated.csv.gz', body: gzipSync(good.text).subarray(0, 200), reason: 'truncated_gzip' },
      { name: 'empty.csv', body: Buffer.alloc(0), reason: 'empty_file' },
    ];
    for (const c of cases) await put(s3, bucket, incoming('partner-csv', c.name), c.body);
    for (const c of cases) {
      const key = incoming('partner-csv', c.name);
      const row = await waitDone(pool, bucket, key, 60_000);
      expect(row.status, c.name).toBe('failed');
      expect(row.error_reason, c.name).toBe(c.reason);
      const receipt = await receiptOf('partner-csv', c.name, row);
      expect(receipt.status).toBe('failed');
      expect(receipt.error.reason).toBe(c.reason);
      expect(receipt.error.message.length).toBeGreaterThan(10);
      expect(await exists(`${root}failed/partner-csv/${c.name}`), c.name).toBe(true);
      expect(await exists(key)).toBe(false);
    }
    const wrong = await ledgerRows(pool, bucket, incoming('partner-csv', 'wrong-header.csv'));
    expect(wrong[0]!.first_error).toContain('event_id');

    // One webhook call and one email per failed file (the outbound guard allows the loopback receiver here).
    const text = () => webhook.calls.map((c) => (JSON.parse(c.body) as { text: string }).text).join('\n');
    await waitFor(() => cases.every((c) => text().includes(c.name)) && cases.every((c) => smtp.mails.some((m) => m.mail.subject?.includes(c.name))), 30_000);
    const call = webhook.calls.find((c) => c.body.includes('truncated.csv.gz'))!;
    expect(call.contentType).toBe('application/json');
    expect(JSON.parse(call.body)).toMatchObject({ status: 'failed', error: { reason: 'truncated_gzip' } });
    const mail = smtp.mails.find((m) => m.mail.subject?.includes('wrong-header.csv'))!;
    expect(mail.envelopeTo).toEqual(['ops@example.com']);
    expect(mail.mail.text).toContain('missing_columns');
  }, 120_000);

  it('recognises the same bytes under another key as a duplicate (no row twice), and a replaced object as a new version', async () => {
    const file = generateCsv({ run, rows: 500, from: 400_000 });
    const bytes = gzipSync(file.text);
    const a = incoming('partner-csv', 'dup-a.csv.gz');
    await put(s3, bucket, a, bytes);
    const first = await waitDone(pool, bucket, a, 60_000);
    expect(first.status).toBe('succeeded');
    const b = incoming('partner-csv', 'resent/dup-b.csv.gz');
    await put(s3, bucket, b, bytes);
    const second = await waitDone(pool, bucket, b, 60_000);
    expect(second.status).toBe('duplicate');
    expect(second.duplicate_of).toBe(first.file_id);
    expect(Number(second.rows_read)).toBe(0);
    expect((await receiptOf('partner-csv', 'resent/dup-b.csv.gz', second)).duplicate_of).toEqual({ file_id: Number(first.file_id), key: a });
    expect(await storedCount(pool, file.valid)).toBe(500);

    // Other bytes holding 200 of the same events (stored by the first file) and 100 new ones:
    // the batch's straight COPY meets stored event_ids and falls back to ON CONFLICT DO NOTHING.
    const overlap = generateCsv({ run, rows: 300, from: 400_300 });
    const c = incoming('partner-csv', 'overlap.csv.gz');
    await put(s3, bucket, c, gzipSync(overlap.text));
    const third = await waitDone(pool, bucket, c, 60_000);
    expect(third.status, third.first_error ?? '').toBe('succeeded');
    expect(Number(third.rows_accepted)).toBe(100);
    expect(Number(third.rows_duplicate)).toBe(200);
    expect(await storedCount(pool, overlap.valid)).toBe(300);
    const { rows: receivedAt } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM staging.agent_events WHERE event_id = ANY($1::uuid[]) AND received_at = $2', [overlap.valid.slice(200), third.received_at]);
    expect(Number(receivedAt[0]!.n)).toBe(100);

    // The same key again, other content: a new version, processed on its own.
    const next = generateCsv({ run, rows: 200, from: 500_000 });
    await put(s3, bucket, a, next.text);
    const replaced = await waitDone(pool, bucket, a, 60_000, 2);
    expect(replaced.status).toBe('succeeded');
    expect(replaced.file_id).not.toBe(first.file_id);
    expect(replaced.object_version).not.toBe(first.object_version);
    expect(Number(replaced.rows_accepted)).toBe(200);
    expect(await storedCount(pool, next.valid)).toBe(200);
  }, 120_000);

  it('neutralises a formula in the rejects file, and leaves nothing under incoming/', async () => {
    const key = incoming('partner-csv', 'formula.csv');
    await put(s3, bucket, key, `${CSV_HEADER}\n=1+2,deposit_made,a,c-${run},100,USD,2026-10-01T00:00:00Z,web,\n`);
    const row = await waitDone(pool, bucket, key, 60_000);
    const text = await getText(s3, bucket, `${root}rejects/partner-csv/${today(row)}/formula.csv.rejects.csv`);
    expect(text).toContain(`"'=1+2,deposit_made,a,c`);
    expect(parseRejects(text)[0]!.reasons).toBe('invalid_value:event_id');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${root}incoming/` }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([]);
  }, 60_000);
});

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}
