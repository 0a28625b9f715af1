import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../processors/core/log/logger.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { uploadDurably, UploadAbandonedError } from '../../processors/core/s3/upload.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

/** The sink's upload: single PUT or multipart by size, retried until it lands, abandoned only by its owner. */

const settings = testSettings();
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const logger = createLogger({ name: 'test', level: 'silent' });
const MiB = 1024 * 1024;

describe('durable S3 upload', () => {
  beforeAll(async () => {
    await requireServer('S3 server', hostPortOf(settings.s3.endpoint!));
  });

  it('writes a body above the part size as a multipart upload and one below as a single PUT', async () => {
    const prefix = `test/upload-${randomUUID()}/`;
    const big = randomBytes(12 * MiB);
    const small = randomBytes(1000);
    await uploadDurably(s3, { bucket, key: `${prefix}big.parquet`, body: big, contentType: 'application/vnd.apache.parquet', partSize: 5 * MiB, partConcurrency: 2, logger });
    await uploadDurably(s3, { bucket, key: `${prefix}small.parquet`, body: small, contentType: 'application/vnd.apache.parquet', partSize: 5 * MiB, partConcurrency: 2, logger });
    const bigHead = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}big.parquet` }));
    expect(bigHead.ETag).toMatch(/-3"?$/); // three parts: 5 + 5 + 2 MiB
    const smallHead = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}small.parquet` }));
    expect(smallHead.ETag).not.toMatch(/-\d+"?$/);
    const back = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}big.parquet` }));
    expect(Buffer.from(await back.Body!.transformToByteArray()).equals(big)).toBe(true);
  });

  it('streams a file body from disk: multipart above the part size, one PUT below, the bytes exact', async () => {
    const prefix = `test/upload-${randomUUID()}/`;
    const dir = await mkdtemp(join(tmpdir(), 'sluice-upload-'));
    try {
      const big = randomBytes(11 * MiB);
      const small = randomBytes(3000);
      await writeFile(join(dir, 'big.parquet'), big);
      await writeFile(join(dir, 'small.parquet'), small);
      for (const name of ['big.parquet', 'small.parquet']) {
        await uploadDurably(s3, { bucket, key: `${prefix}${name}`, body: { file: join(dir, name) }, contentType: 'application/vnd.apache.parquet', metadata: { 'sluice-records': '7' }, partSize: 5 * MiB, partConcurrency: 2, logger });
      }
      const bigHead = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}big.parquet` }));
      expect(bigHead.ETag).toMatch(/-3"?$/); // 5 + 5 + 1 MiB
      expect(bigHead.Metadata?.['sluice-records']).toBe('7');
      const smallHead = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}small.parquet` }));
      expect(smallHead.ETag).not.toMatch(/-\d+"?$/);
      expect(smallHead.ContentLength).toBe(3000);
      for (const [name, bytes] of [['big.parquet', big], ['small.parquet', small]] as const) {
        const back = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${name}` }));
        expect(Buffer.from(await back.Body!.transformToByteArray()).equals(bytes)).toBe(true);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps retrying a refused upload until its owner gives it up, and then throws UploadAbandonedError', async () => {
    let attempts = 0;
    let owned = true;
    const failures: unknown[] = [];
    const upload = uploadDurably(s3, {
      bucket: 'sluice-no-such-bucket-' + randomUUID().slice(0, 8),
      key: 'x.parquet',
      body: Buffer.from('x'),
      contentType: 'application/octet-stream',
      partSize: 5 * MiB,
      partConcurrency: 1,
      logger,
      policy: { initialMs: 50, maxMs: 100 },
      stillWanted: () => owned,
      onFailure: (error) => {
        failures.push(error);
        if (++attempts === 3) owned = false;
      },
    });
    await expect(upload).rejects.toBeInstanceOf(UploadAbandonedError);
    expect(attempts).toBe(3);
    expect((failures[0] as { name?: string }).name).toBe('NoSuchBucket');
  });
});
