import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { CoreSettings } from '../config/core-settings.js';
import { ConfigError } from '../errors/errors.js';

export type S3Settings = CoreSettings['s3'];

/** What a client needs of the s3 settings: the region, and the rest when set. */
export type S3ClientSettings = Pick<S3Settings, 'region'> & Partial<Omit<S3Settings, 'region'>>;

/** The server-side encryption asked of every object written: SSE-S3 or SSE-KMS (with its key). */
export interface S3Encryption {
  ServerSideEncryption: 'AES256' | 'aws:kms';
  SSEKMSKeyId?: string;
}

/** The commands that create an object: each one gets the encryption headers. */
const OBJECT_WRITES = new Set(['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand']);

/**
 * The endpoint the client will use when one is configured: the setting, else the standard
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (which the SDK reads itself, unless
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true). Undefined means AWS S3.
 */
export function configuredEndpoint(settings: S3ClientSettings, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (settings.endpoint) return settings.endpoint;
  if (/^(true|1)$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '')) return undefined;
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}

/** The encryption settings as request parameters; undefined leaves it to the bucket's default encryption. */
export function s3Encryption(settings: Pick<S3ClientSettings, 'serverSideEncryption' | 'kmsKeyId'>): S3Encryption | undefined {
  const { serverSideEncryption: mode, kmsKeyId } = settings;
  if (kmsKeyId && mode === 'AES256') {
    throw new ConfigError([
      {
        source: 'settings',
        setting: 's3.kmsKeyId',
        message: 'a KMS key is set while s3.serverSideEncryption is AES256 (SSE-S3 takes no key)',
        fix: 'set SLUICE_S3_SERVER_SIDE_ENCRYPTION=aws:kms to encrypt with that key, or unset SLUICE_S3_KMS_KEY_ID for SSE-S3',
      },
    ]);
  }
  if (kmsKeyId) return { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: kmsKeyId };
  return mode ? { ServerSideEncryption: mode } : undefined;
}

/**
 * The S3Client configuration of the settings. Unset, they mean AWS S3: no endpoint (or the
 * standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), virtual-hosted addressing, and the SDK's
 * default credential chain (env, shared config and SSO profiles, web identity/IRSA, ECS task
 * and instance roles). Path-style only when an endpoint is set, or when configured.
 * Checksums are only sent when an operation requires them: newer SDKs default to CRC32
 * trailers with aws-chunked bodies, which several S3-compatible servers reject.
 */
export function s3ClientConfig(settings: S3ClientSettings, env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const endpoint = configuredEndpoint(settings, env);
  return {
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle ?? endpoint !== undefined,
    // On AWS a bucket outside the configured region answers with a redirect the SDK can follow.
    followRegionRedirects: endpoint === undefined,
    ...(settings.accessKeyId && settings.secretAccessKey
      ? {
          credentials: {
            accessKeyId: settings.accessKeyId,
            secretAccessKey: settings.secretAccessKey,
            ...(settings.sessionToken ? { sessionToken: settings.sessionToken } : {}),
          },
        }
      : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 5,
  };
}

/**
 * An S3 client for AWS or an S3-compatible server (S3Proxy, MinIO). Every object it writes
 * (PutObject, multipart uploads, copies) carries the configured server-side encryption, so no
 * write path can forget it.
 */
export function createS3Client(settings: S3ClientSettings, env: NodeJS.ProcessEnv = process.env): S3Client {
  const encryption = s3Encryption(settings);
  const client = new S3Client(s3ClientConfig(settings, env));
  if (encryption) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (!OBJECT_WRITES.has(context.commandName ?? '')) return next(args);
        const input = args.input as { ServerSideEncryption?: string; SSEKMSKeyId?: string };
        const withEncryption = {
          ...input,
          ServerSideEncryption: input.ServerSideEncryption ?? encryption.ServerSideEncryption,
          ...(encryption.SSEKMSKeyId && !input.SSEKMSKeyId ? { SSEKMSKeyId: encryption.SSEKMSKeyId } : {}),
        };
        return next({ ...args, input: withEncryption as typeof args.input });
      },
      { step: 'initialize', name: 'sluiceServerSideEncryption', override: true },
    );
  }
  return client;
}
