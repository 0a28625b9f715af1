import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../processors/core/s3/client.js';
import { buildDist, ROOT } from '../support/build.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

const run = promisify(execFile);
const settings = testSettings();
const bucket = settings.s3.bucket;

/**
 * Runs in a child process whose env holds no SLUICE_S3_* endpoint or key and no
 * AWS_ACCESS_KEY_ID: the settings as production loads them, the client Sluice builds from
 * them, one object written and read back. Prints what it resolved as JSON.
 */
const CHILD = (dist: string) => `
const { loadSettings } = await import(${JSON.stringify(pathToFileURL(join(dist, 'processors/core/config/settings.js')).href)});
const { coreSettings } = await import(${JSON.stringify(pathToFileURL(join(dist, 'processors/core/config/core-settings.js')).href)});
const { createS3Client, s3ClientConfig, configuredEndpoint } = await import(${JSON.stringify(pathToFileURL(join(dist, 'processors/core/s3/client.js')).href)});
const { PutObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3');
const s3 = loadSettings({ s3: coreSettings.s3 }, { file: process.env.SLUICE_CONFIG_FILE }).s3;
const config = s3ClientConfig(s3);
const client = createS3Client(s3);
const key = process.argv[1];
await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'written with the default chain' }));
const body = await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body.transformToString();
const credentials = await client.config.credentials();
console.log(JSON.stringify({ settings: s3, configKeys: Object.keys(config).sort(), forcePathStyle: config.forcePathStyle, endpoint: configuredEndpoint(s3), accessKeyId: credentials.accessKeyId, body }));
`;

describe('S3 through the AWS default credential chain (shared credentials file, AWS_ENDPOINT_URL_S3)', () => {
  let dist: string;
  let home: string;

  beforeAll(async () => {
    await requireServer('S3 server', hostPortOf(settings.s3.endpoint!));
    dist = buildDist('processors/core/s3/client.js').replace(/processors\/core\/s3\/client\.js$/, '');
    home = mkdtempSync(join(tmpdir(), 'sluice-aws-home-'));
    // The local S3's keys, only in a shared credentials file; the default profile holds wrong ones.
    writeFileSync(
      join(home, 'credentials'),
      [
        '[default]',
        'aws_access_key_id = not-the-key',
        'aws_secret_access_key = not-the-secret',
        '[sluice-lake-writer]',
        `aws_access_key_id = ${settings.s3.accessKeyId}`,
        `aws_secret_access_key = ${settings.s3.secretAccessKey}`,
        '[wrong-secret]',
        `aws_access_key_id = ${settings.s3.accessKeyId}`,
        'aws_secret_access_key = wrong-secret-key',
        '',
      ].join('\n'),
    );
    writeFileSync(join(home, 'config'), '');
    writeFileSync(join(home, 'sluice.yaml'), `s3:\n  bucket: ${bucket}\n`);
  });

  /** The child's whole env: no SLUICE_S3_* (the bucket is in a config file), no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, no stack.env. */
  const childEnv = (profile: string) => ({
    PATH: process.env.PATH ?? '',
    HOME: home,
    SLUICE_STACK_ENV: 'off',
    SLUICE_CONFIG_FILE: join(home, 'sluice.yaml'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
    AWS_CONFIG_FILE: join(home, 'config'),
    AWS_PROFILE: profile,
    AWS_ENDPOINT_URL_S3: settings.s3.endpoint!,
    AWS_EC2_METADATA_DISABLED: 'true',
  });

  it('writes and reads an object with the keys only in AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE and the endpoint only in AWS_ENDPOINT_URL_S3', async () => {
    const key = `test/default-chain/${randomUUID()}.txt`;
    const env = childEnv('sluice-lake-writer');
    expect(Object.keys(env).filter((k) => k.startsWith('SLUICE_S3_'))).toEqual([]);
    expect(env).not.toHaveProperty('AWS_ACCESS_KEY_ID');
    const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', CHILD(dist), key], { cwd: ROOT, env });
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    // No endpoint, no keys in the settings: the client has neither, and finds both itself.
    expect(out.settings).toEqual({ bucket, region: 'us-east-1' });
    expect(out.configKeys).not.toContain('endpoint');
    expect(out.configKeys).not.toContain('credentials');
    expect(out.endpoint).toBe(settings.s3.endpoint);
    expect(out.forcePathStyle).toBe(true);
    expect(out.accessKeyId).toBe(settings.s3.accessKeyId);
    expect(out.body).toBe('written with the default chain');

    // The object is in the local S3, where this process (stack.env settings) reads it.
    const s3 = createS3Client(settings.s3);
    const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
    expect(body).toBe('written with the default chain');
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  });

  it('is refused by the server with the profile of a wrong secret (the keys really come from the file)', async () => {
    const failed = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', CHILD(dist), `test/default-chain/${randomUUID()}.txt`], { cwd: ROOT, env: childEnv('wrong-secret') }).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId/);
  });
});
