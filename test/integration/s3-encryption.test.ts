import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineS3Client } from '../../processors/export/export.js';
import { createLogger } from '../../processors/core/log/logger.js';
import { loadPipeline } from '../../processors/core/pipeline/lint.js';
import { createS3Client, type S3ClientSettings } from '../../processors/core/s3/client.js';
import { uploadDurably, UploadAbandonedError } from '../../processors/core/s3/upload.js';
import { ROOT } from '../support/build.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';
import { SlowProxy } from '../support/slow-proxy.js';

/**
 * Server-side encryption reaches the server on every write path. The local S3 (S3Proxy on a
 * filesystem) implements no SSE: it answers a request carrying an SSE header with 501
 * NotImplemented "Server-side encryption is not supported", which proves the header arrived.
 * A recording proxy in front of it (bytes passed unchanged) shows exactly what was sent.
 */
const settings = testSettings();
const bucket = settings.s3.bucket;
const logger = createLogger({ name: 'test', level: 'silent' });
const MiB = 1024 * 1024;

let proxy: SlowProxy;
let wire = '';

beforeAll(async () => {
  await requireServer('S3 server', hostPortOf(settings.s3.endpoint!));
  const target = new URL(settings.s3.endpoint!);
  proxy = await SlowProxy.start({ host: target.hostname, port: Number(target.port) }, 0, (chunk) => void (wire += chunk.toString('latin1')));
});
afterAll(async () => proxy?.close());

/** The request heads (request line and headers) sent since `from`, lower-cased. */
function headsSince(from: number): string[] {
  return wire
    .slice(from)
    .split(/\r\n\r\n/)
    .map((h) => h.slice(Math.max(0, h.search(/(PUT|POST|GET|HEAD|DELETE) \//))))
    .filter((h) => /^(PUT|POST|GET|HEAD|DELETE) \//.test(h))
    .map((h) => h.toLowerCase());
}

const viaProxy = (sse: Partial<S3ClientSettings>) => createS3Client({ ...settings.s3, endpoint: proxy.endpoint, forcePathStyle: true, ...sse });

/** One attempt of the export's durable upload; the server's answer to it. */
async function uploadOnce(sse: Partial<S3ClientSettings>, key: string, body: Uint8Array): Promise<unknown> {
  let failure: unknown;
  const done = uploadDurably(viaProxy(sse), {
    bucket,
    key,
    body,
    contentType: 'application/vnd.apache.parquet',
    partSize: 5 * MiB,
    partConcurrency: 2,
    logger,
    onFailure: (error) => void (failure = error),
    stillWanted: () => failure === undefined,
  });
  await expect(done).rejects.toBeInstanceOf(UploadAbandonedError);
  return failure;
}

const refusedForSse = { name: 'NotImplemented', message: 'Server-side encryption is not supported.', $metadata: { httpStatusCode: 501 } };

describe('server-side encryption on every object Sluice writes', () => {
  it("SSE-S3: the export's single PUT carries x-amz-server-side-encryption: AES256 to the server", async () => {
    const from = wire.length;
    const key = `test/sse/${randomUUID()}.parquet`;
    expect(await uploadOnce({ serverSideEncryption: 'AES256' }, key, randomBytes(1000))).toMatchObject(refusedForSse);
    const put = headsSince(from).find((h) => h.startsWith(`put /${bucket}/${key}`));
    expect(put).toContain('x-amz-server-side-encryption: aes256');
    expect(put).not.toContain('x-amz-server-side-encryption-aws-kms-key-id');
  });

  it("SSE-KMS with a key: the export's multipart upload starts with aws:kms and the key id", async () => {
    const from = wire.length;
    const key = `test/sse/${randomUUID()}.parquet`;
    expect(await uploadOnce({ kmsKeyId: 'alias/sluice-lake' }, key, randomBytes(6 * MiB))).toMatchObject(refusedForSse);
    const create = headsSince(from).find((h) => h.startsWith(`post /${bucket}/${key}?uploads`));
    expect(create).toContain('x-amz-server-side-encryption: aws:kms');
    expect(create).toContain('x-amz-server-side-encryption-aws-kms-key-id: alias/sluice-lake');
  });

  it("a pipeline's s3 output (SLUICE_S3_SERVER_SIDE_ENCRYPTION) writes with it", async () => {
    const pipeline = loadPipeline(join(ROOT, 'connectors/exports/lake.yaml'), { ...process.env, SLUICE_S3_ENDPOINT: proxy.endpoint, SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'aws:kms' }, { expressions: null });
    expect(pipeline.output.config).toMatchObject({ server_side_encryption: 'aws:kms', kms_key_id: undefined });
    const from = wire.length;
    const key = `test/sse/${randomUUID()}.parquet`;
    await expect(pipelineS3Client(pipeline).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }))).rejects.toMatchObject(refusedForSse);
    expect(headsSince(from).find((h) => h.startsWith(`put /${bucket}/${key}`))).toContain('x-amz-server-side-encryption: aws:kms');
  });

  it('unset: no SSE header, and the same upload lands', async () => {
    const from = wire.length;
    const key = `test/sse/${randomUUID()}.parquet`;
    await uploadDurably(viaProxy({}), { bucket, key, body: randomBytes(1000), contentType: 'application/octet-stream', partSize: 5 * MiB, partConcurrency: 1, logger });
    const heads = headsSince(from);
    expect(heads.some((h) => h.startsWith(`put /${bucket}/${key}`))).toBe(true);
    expect(heads.join('\n')).not.toContain('x-amz-server-side-encryption');
  });
});
