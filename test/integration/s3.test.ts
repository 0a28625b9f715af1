import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../processors/core/s3/client.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

const settings = testSettings();
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;

describe('S3-compatible server', () => {
  beforeAll(async () => {
    await requireServer('S3 server', hostPortOf(settings.s3.endpoint!));
  });

  it('takes a 20 MiB multipart upload, lists it and serves it through a presigned URL', async () => {
    const prefix = `test/${randomUUID()}/`;
    const key = `${prefix}big.bin`;
    const body = randomBytes(20 * 1024 * 1024);
    const parts: number[] = [];
    const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: body }, partSize: 5 * 1024 * 1024, queueSize: 2 });
    upload.on('httpUploadProgress', (p) => p.part && parts.push(p.part));
    await upload.done();
    expect(new Set(parts).size).toBe(4);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(body.length);
    // A multipart ETag is md5-of-part-md5s followed by the part count.
    expect(head.ETag).toMatch(/-4"?$/);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    expect(listed.Contents?.map((o) => [o.Key, o.Size])).toEqual([[key, body.length]]);

    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 120 });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
  });

  it('pages ListObjectsV2 with continuation tokens', async () => {
    const prefix = `test/${randomUUID()}/`;
    const keys = ['a', 'b', 'c'].map((k) => `${prefix}${k}.txt`);
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }));
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 2, ContinuationToken: token }));
      seen.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(seen).toEqual(keys);
  });

  it('refuses an expired presigned URL', async () => {
    const key = `test/${randomUUID()}/short.txt`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 2500));
    const res = await fetch(url);
    expect(res.status).toBe(403);
  });
});
