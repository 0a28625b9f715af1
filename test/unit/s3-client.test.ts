import { CreateMultipartUploadCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { coreSettings } from '../../processors/core/config/core-settings.js';
import { loadSettings } from '../../processors/core/config/settings.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { configuredEndpoint, createS3Client, s3ClientConfig } from '../../processors/core/s3/client.js';
import { SERVERS_ENV } from '../support/servers.js';

/** The variables the AWS SDK itself reads; the test suite's stack.env sets some of them. */
const SDK_ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_REGION'];

/** Settings as a process with this env (and nothing else) resolves them. */
const s3With = (env: Record<string, string>) => loadSettings(coreSettings, { env: { ...SERVERS_ENV, ...env } }).s3;

class Captured extends Error {
  constructor(readonly request: { hostname: string; path: string; headers: Record<string, string> }) {
    super('captured');
  }
}

/** The HTTP request a command would send (endpoint resolved, headers built), without sending it. */
async function requestOf(client: S3Client, command: object): Promise<Captured['request']> {
  client.middlewareStack.add(
    () => async (args) => {
      throw new Captured(args.request as Captured['request']);
    },
    { step: 'build', priority: 'low', name: 'captureRequest', override: true },
  );
  try {
    await client.send(command as Parameters<S3Client['send']>[0]);
  } catch (error) {
    if (error instanceof Captured) return error.request;
    throw error;
  }
  throw new Error('the request was sent');
}

beforeEach(() => {
  for (const name of SDK_ENV) vi.stubEnv(name, undefined);
});
afterEach(() => vi.unstubAllEnvs());

describe('S3 settings left unset: AWS S3 with the default chain', () => {
  it('resolve to no endpoint, no credentials, virtual-hosted style and the SDK default chain', async () => {
    const s3 = s3With({});
    expect(s3).toEqual({ bucket: 'sluice-lake', region: 'us-east-1' });
    const config = s3ClientConfig(s3, {});
    expect(config).toEqual({
      region: 'us-east-1',
      forcePathStyle: false,
      followRegionRedirects: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 5,
    });
    expect(config).not.toHaveProperty('endpoint');
    expect(config).not.toHaveProperty('credentials');
    const client = createS3Client(s3, {});
    expect(await client.config.forcePathStyle).toBe(false);
    // Building a request signs nothing yet, but S3's middleware asks the (default) chain: give it env keys.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENV');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'from-env-secret');
    const request = await requestOf(client, new GetObjectCommand({ Bucket: 'sluice-lake', Key: 'a/b.parquet' }));
    expect(request.hostname).toBe('sluice-lake.s3.us-east-1.amazonaws.com');
    expect(request.path).toBe('/a/b.parquet');
  });

  it('take credentials from the default chain: the environment, or a shared credentials file profile', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENV');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'from-env-secret');
    const fromEnv = await createS3Client(s3With({}), {}).config.credentials();
    expect(fromEnv).toMatchObject({ accessKeyId: 'AKIAFROMENV', secretAccessKey: 'from-env-secret' });

    vi.stubEnv('AWS_ACCESS_KEY_ID', undefined);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', undefined);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-aws-'));
    writeFileSync(join(dir, 'credentials'), '[lake-writer]\naws_access_key_id = AKIAFROMFILE\naws_secret_access_key = from-file-secret\n');
    writeFileSync(join(dir, 'config'), '');
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'credentials'));
    vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
    vi.stubEnv('AWS_PROFILE', 'lake-writer');
    const fromFile = await createS3Client(s3With({}), {}).config.credentials();
    expect(fromFile).toMatchObject({ accessKeyId: 'AKIAFROMFILE', secretAccessKey: 'from-file-secret' });
  });

  it('honour AWS_ENDPOINT_URL_S3 (then AWS_ENDPOINT_URL), with path-style because an endpoint is set', async () => {
    const env = { AWS_ENDPOINT_URL_S3: 'http://localhost:22000', AWS_ENDPOINT_URL: 'http://elsewhere:1', AWS_ACCESS_KEY_ID: 'AKIAFROMENV', AWS_SECRET_ACCESS_KEY: 'from-env-secret' };
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    const s3 = s3With(env);
    expect(s3.endpoint).toBeUndefined();
    expect(configuredEndpoint(s3, env)).toBe('http://localhost:22000');
    expect(configuredEndpoint(s3, { AWS_ENDPOINT_URL: 'http://generic:9000' })).toBe('http://generic:9000');
    expect(configuredEndpoint(s3, { ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toBeUndefined();
    const config = s3ClientConfig(s3, env);
    expect(config).toMatchObject({ forcePathStyle: true, followRegionRedirects: false });
    expect(config).not.toHaveProperty('endpoint'); // the SDK reads the variable itself
    const request = await requestOf(createS3Client(s3, env), new GetObjectCommand({ Bucket: 'sluice-lake', Key: 'k' }));
    expect([request.hostname, request.path]).toEqual(['localhost', '/sluice-lake/k']);
  });

  it('use an endpoint setting with path-style, unless path-style is configured off', () => {
    const s3 = s3With({ SLUICE_S3_ENDPOINT: 'http://minio:9000', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 't' });
    expect(s3ClientConfig(s3, {})).toMatchObject({
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
      followRegionRedirects: false,
      credentials: { accessKeyId: 'k', secretAccessKey: 's', sessionToken: 't' },
    });
    expect(s3ClientConfig(s3With({ SLUICE_S3_ENDPOINT: 'http://minio:9000', SLUICE_S3_FORCE_PATH_STYLE: 'false' }), {}).forcePathStyle).toBe(false);
    expect(s3ClientConfig(s3With({ SLUICE_S3_FORCE_PATH_STYLE: 'true' }), {}).forcePathStyle).toBe(true);
  });

  it('count empty strings as unset: an empty env var, and endpoint: "" in YAML', () => {
    const empty = s3With({ SLUICE_S3_ENDPOINT: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', SLUICE_S3_FORCE_PATH_STYLE: '', SLUICE_S3_SERVER_SIDE_ENCRYPTION: '', SLUICE_S3_KMS_KEY_ID: '' });
    expect(empty).toEqual({ bucket: 'sluice-lake', region: 'us-east-1' });
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-')), 'sluice.yaml');
    writeFileSync(file, 's3:\n  endpoint: ""\n  accessKeyId: ""\n  forcePathStyle: ""\n  kmsKeyId: ""\n');
    const fromFile = loadSettings(coreSettings, { env: { ...SERVERS_ENV }, file }).s3;
    expect(fromFile).toEqual({ bucket: 'sluice-lake', region: 'us-east-1' });
    expect(s3ClientConfig(fromFile, {}).forcePathStyle).toBe(false);
  });
});

describe('server-side encryption of every object written', () => {
  const headersOf = async (env: Record<string, string>, command: object) =>
    (await requestOf(createS3Client({ ...s3With(env), accessKeyId: 'k', secretAccessKey: 's' }, {}), command)).headers;
  const put = () => new PutObjectCommand({ Bucket: 'sluice-lake', Key: 'k', Body: 'x' });
  const multipart = () => new CreateMultipartUploadCommand({ Bucket: 'sluice-lake', Key: 'k' });

  it('SSE-S3: AES256 on PutObject and CreateMultipartUpload, nothing on reads', async () => {
    const env = { SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'AES256' };
    expect((await headersOf(env, put()))['x-amz-server-side-encryption']).toBe('AES256');
    expect((await headersOf(env, multipart()))['x-amz-server-side-encryption']).toBe('AES256');
    expect((await headersOf(env, put()))['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    expect((await headersOf(env, new GetObjectCommand({ Bucket: 'sluice-lake', Key: 'k' })))['x-amz-server-side-encryption']).toBeUndefined();
  });

  it('SSE-KMS with a key id (which implies aws:kms), or with the account key', async () => {
    for (const env of [{ SLUICE_S3_KMS_KEY_ID: 'alias/sluice-lake' }, { SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'aws:kms', SLUICE_S3_KMS_KEY_ID: 'alias/sluice-lake' }] as Record<string, string>[]) {
      for (const command of [put(), multipart()]) {
        const headers = await headersOf(env, command);
        expect(headers['x-amz-server-side-encryption']).toBe('aws:kms');
        expect(headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/sluice-lake');
      }
    }
    const accountKey = await headersOf({ SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'aws:kms' }, put());
    expect(accountKey['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(accountKey['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
  });

  it('unset: no encryption headers (the bucket default applies); a KMS key with AES256 is a config error naming both settings', async () => {
    const headers = await headersOf({}, put());
    expect(Object.keys(headers).filter((h) => h.startsWith('x-amz-server-side-encryption'))).toEqual([]);
    expect(() => createS3Client(s3With({ SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'AES256', SLUICE_S3_KMS_KEY_ID: 'alias/x' }), {})).toThrow(ConfigError);
    expect(() => createS3Client(s3With({ SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'AES256', SLUICE_S3_KMS_KEY_ID: 'alias/x' }), {})).toThrow(/SLUICE_S3_SERVER_SIDE_ENCRYPTION=aws:kms.*SLUICE_S3_KMS_KEY_ID/);
    expect(() => s3With({ SLUICE_S3_SERVER_SIDE_ENCRYPTION: 'aes256' })).toThrow(/SLUICE_S3_SERVER_SIDE_ENCRYPTION/);
  });
});
