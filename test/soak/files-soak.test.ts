import type { S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from '../support/build.js';
import { fileEventId, filesEnv, generateCsv, ledgerRows, openFileDropRig, put, storedCount, waitDone, type FileDropRig } from '../support/file-drops.js';
import { eventually, testSettings } from '../support/servers.js';
import { SluiceProcess } from '../support/sluice-process.js';

/**
 * Issue 16's big acceptance: a 1,000,000-row gzipped CSV through `sluice files` with three
 * SIGKILLs mid-file: every valid row in staging exactly once, the ledger's counts those of
 * an uninterrupted run; and peak RSS flat: the process that reads 1M rows peaks within
 * 20 MB of the one that reads 100k.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const root = `files-soak-${run}/`;
const bucket = settings.s3.bucket;
let s3: S3Client;
let pool: pg.Pool;
const env = { SLUICE_LOG_LEVEL: 'info', ...filesEnv(root, { sources: 'partner:csv', dlqTopic: `files-soak-${run}.dlq`, httpPort: 26572, pollMs: 500 }) };
let rig: FileDropRig;

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Runs one file through a fresh process and returns its peak RSS, read before it exits. */
async function ingestAlone(name: string, rows: number, from: number): Promise<{ peak: number; valid: string[] }> {
  const file = generateCsv({ run, rows, from, invalidEvery: 1000 });
  const key = `${root}incoming/partner/${name}`;
  await put(s3, bucket, key, gzipSync(file.text));
  const proc = new SluiceProcess(`files-soak-${run}-${name}`, ['files'], env, 26572).start();
  try {
    const row = await waitDone(pool, bucket, key, 3_000_000);
    expect(row.status, row.first_error ?? '').toBe('succeeded');
    expect(Number(row.rows_accepted)).toBe(file.valid.length);
    return { peak: peakRss(proc.pid), valid: file.valid };
  } finally {
    await proc.kill('SIGTERM');
  }
}

beforeAll(async () => {
  rig = await openFileDropRig(settings);
  ({ s3, pool } = rig);
  buildDist('processors/cli/main.js');
});

afterAll(async () => {
  await rig?.close([`files-soak-${run}.dlq`]);
});

describe('sluice files, 1M rows', () => {
  it('peaks at the same RSS (+-20 MB) for 100k and 1M rows', async () => {
    const small = await ingestAlone('rows-100k.csv.gz', 100_000, 0);
    const big = await ingestAlone('rows-1m.csv.gz', 1_000_000, 1_000_000);
    expect(await storedCount(pool, big.valid.slice(0, 1000))).toBe(1000);
    console.log(`peak RSS: 100k rows ${(small.peak / 2 ** 20).toFixed(1)} MiB, 1M rows ${(big.peak / 2 ** 20).toFixed(1)} MiB`);
    expect(Math.abs(big.peak - small.peak)).toBeLessThanOrEqual(20 * 2 ** 20);
  });

  it('three SIGKILLs mid-file change nothing', async () => {
    const file = generateCsv({ run, rows: 1_000_000, from: 3_000_000, invalidEvery: 1000 });
    const key = `${root}incoming/partner/crash-1m.csv.gz`;
    await put(s3, bucket, key, gzipSync(file.text));
    let last = 0;
    for (let kill = 1; kill <= 3; kill++) {
      const proc = new SluiceProcess(`files-soak-${run}-kill-${kill}`, ['files'], env, 26572).start();
      try {
        last = await eventually(async () => {
          const n = Number((await ledgerRows(pool, bucket, key))[0]?.committed_rows ?? 0);
          return n >= last + 100_000 ? n : undefined;
        }, 1_200_000, `kill ${kill}`);
      } finally {
        await proc.kill('SIGKILL');
      }
    }
    const proc = new SluiceProcess(`files-soak-${run}-final`, ['files'], env, 26572).start();
    try {
      const row = await waitDone(pool, bucket, key, 3_000_000);
      expect(row.status).toBe('succeeded');
      expect(row.attempts).toBe(4);
      expect(Number(row.rows_accepted)).toBe(file.valid.length);
      expect(Number(row.rows_duplicate)).toBe(0);
      expect(Number(row.rows_rejected)).toBe(file.invalid.length);
      expect(await storedCount(pool, file.valid)).toBe(file.valid.length);
      expect(await storedCount(pool, [fileEventId(run, 3_000_999)])).toBe(0);
    } finally {
      await proc.kill('SIGTERM');
    }
  });
});
