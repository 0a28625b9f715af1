import type { S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from '../support/build.js';
import { filesEnv, generateCsv, getText, ledgerRows, openFileDropRig, parseRejects, put, storedCount, waitDone, type FileDropRig } from '../support/file-drops.js';
import { collect } from '../support/kafka.js';
import { cli } from '../support/ops-lake.js';
import { eventually, testSettings } from '../support/servers.js';
import { SluiceProcess } from '../support/sluice-process.js';

/**
 * `sluice files` as an operator runs it, killed with SIGKILL three times in the middle of a
 * gzipped CSV: the ledger's offset is committed with the rows, so the file resumes where it
 * stopped and the result is the one of an uninterrupted run (every valid row once, every
 * reject once, no duplicate). Then `files status` and `files retry` on the same ledger.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const root = `files-crash-${run}/`;
const dlqTopic = `files-crash-${run}.dlq`;
const bucket = settings.s3.bucket;
let s3: S3Client;
let pool: pg.Pool;
let kafka: Kafka;
let rig: FileDropRig;
const env = { SLUICE_LOG_LEVEL: 'info', ...filesEnv(root, { sources: 'partner:csv', dlqTopic, httpPort: 26571, batchRows: 500 }) };

beforeAll(async () => {
  rig = await openFileDropRig(settings);
  ({ s3, pool, kafka } = rig);
  buildDist('processors/cli/main.js');
}, 300_000);

afterAll(async () => {
  await rig?.close([dlqTopic]);
});

describe('sluice files under SIGKILL', () => {
  it('resumes a file after its last committed batch: three kills change nothing', async () => {
    const file = generateCsv({ run, rows: 40_000, invalidEvery: 100, trickyEvery: 11 });
    const key = `${root}incoming/partner/crash.csv.gz`;
    await put(s3, bucket, key, gzipSync(file.text));
    const committed = async () => Number((await ledgerRows(pool, bucket, key))[0]?.committed_rows ?? 0);
    let last = 0;
    for (let kill = 1; kill <= 3; kill++) {
      const proc = new SluiceProcess(`files-crash-${run}-${kill}`, ['files'], env, 26571).start();
      try {
        // Killed once it has committed more batches than before, mid-file.
        last = await eventually(async () => {
          const n = await committed();
          return n >= last + 1500 ? n : undefined;
        }, 90_000, `kill ${kill}: the file's offset past ${last + 1500}`);
        await proc.kill('SIGKILL');
      } finally {
        if (proc.running) await proc.kill('SIGKILL');
      }
      const after = (await ledgerRows(pool, bucket, key))[0]!;
      expect(after.status, `kill ${kill} came too late`).toBe('processing');
      expect(Number(after.committed_rows)).toBeLessThan(40_000);
      // What is committed is consistent: accepted + rejected rows are exactly the rows up to the offset.
      expect(Number(after.rows_accepted) + Number(after.rows_rejected)).toBe(Number(after.committed_rows));
      expect(await storedCount(pool, file.valid)).toBe(Number(after.rows_accepted));
    }
    const proc = new SluiceProcess(`files-crash-${run}-final`, ['files'], env, 26571).start();
    try {
      const row = await waitDone(pool, bucket, key, 120_000);
      expect(row.status, row.first_error ?? '').toBe('succeeded');
      expect(row.attempts).toBe(4);
      expect(Number(row.rows_read)).toBe(40_000);
      expect(Number(row.rows_accepted)).toBe(file.valid.length);
      expect(Number(row.rows_duplicate)).toBe(0);
      expect(Number(row.rows_rejected)).toBe(file.invalid.length);
      expect(await storedCount(pool, file.valid)).toBe(file.valid.length);
      const rejects = parseRejects(await getText(s3, bucket, `${root}rejects/partner/${row.received_at.toISOString().slice(0, 10)}/crash.csv.gz.rejects.csv`));
      expect(rejects.map((r) => [r.line, r.reasons])).toEqual(file.invalid.map((r) => [r.line, r.reason]));
      const mine = (ms: KafkaMessage[]) => ms.filter((m) => m.headers?.['sluice.file.key']?.toString() === key);
      const dlq = mine(await collect(kafka, dlqTopic, (ms) => mine(ms).length >= file.invalid.length, 30_000));
      expect(new Set(dlq.map((m) => m.key!.toString())).size).toBe(file.invalid.length);
      expect(proc.logLines().some((l) => l.msg === 'resuming the file after its last committed row'), 'the last run resumed').toBe(true);

      // `files status` lists it with its counts; `files retry` runs a failed file again.
      const status = await cli(['files', 'status', '--source', 'partner', '--json'], env);
      expect(status.code, status.stderr).toBe(0);
      const listed = status.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; status: string; rows: { accepted: number } });
      expect(listed.find((l) => l.key === key)).toMatchObject({ status: 'succeeded', rows: { accepted: file.valid.length } });

      const broken = `${root}incoming/partner/broken.csv.gz`;
      await put(s3, bucket, broken, gzipSync(file.text).subarray(0, 500));
      const failed = await waitDone(pool, bucket, broken, 60_000);
      expect(failed.error_reason).toBe('truncated_gzip');
      const retried = await cli(['files', 'retry', broken], env);
      expect(retried.code, retried.stderr).toBe(0);
      expect(retried.stdout).toContain('moved back from');
      const again = await eventually(async () => {
        const rows = await ledgerRows(pool, bucket, broken);
        const r = rows[rows.length - 1]!;
        // The same ledger row run a second time, or (when the copy back got another ETag) a new one.
        return r.status === 'failed' && (r.attempts === 2 || rows.length === 2) ? r : undefined;
      }, 60_000, 'the retried file processed again');
      expect(again.error_reason).toBe('truncated_gzip');
      const help = await cli(['files', 'retry', '--help'], env);
      expect(help.stdout).toContain('runs a failed file again');
    } finally {
      await proc.kill('SIGTERM');
    }
  }, 400_000);
});
