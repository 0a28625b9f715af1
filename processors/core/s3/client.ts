import { S3Client } from '@aws-sdk/client-s3';
import type { CoreSettings } from '../config/core-settings.js';

export type S3Settings = CoreSettings['s3'];

/**
 * An S3 client for AWS or an S3-compatible server (S3Proxy, MinIO). Checksums are only
 * sent when an operation requires them: newer SDKs default to CRC32 trailers with
 * aws-chunked bodies, which several S3-compatible servers reject.
 */
export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.accessKeyId && settings.secretAccessKey
      ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
      : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 5,
  });
}
