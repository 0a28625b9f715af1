import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { isRetriable } from '../errors/errors.js';
import { BLOCKING_RETRY, withRetry, type RetryPolicy } from '../errors/retry.js';
import type { Logger } from '../log/logger.js';

/** The upload was given up because the caller no longer owns the data (rebalance, shutdown). */
export class UploadAbandonedError extends Error {}

export interface DurableUploadOptions {
  bucket: string;
  key: string;
  /** The bytes, or a local file streamed from disk (each attempt reads it again; memory holds at most partSize x partConcurrency of it). */
  body: Uint8Array | { file: string };
  contentType: string;
  /** User metadata (x-amz-meta-*) stored with the object. */
  metadata?: Record<string, string> | undefined;
  /** Bodies above this go as a multipart upload in parts of this size. */
  partSize: number;
  partConcurrency: number;
  logger: Logger;
  /** Checked before every attempt: false abandons the upload (UploadAbandonedError). */
  stillWanted?: () => boolean;
  /** Aborts the request in flight (client side: a body not fully sent never becomes an object) and the upload. */
  signal?: AbortSignal | undefined;
  /** Called while waiting between attempts (e.g. a consumer heartbeat); its error abandons the upload. */
  whileWaiting?: () => Promise<void>;
  /** Called after each failed attempt (metrics). */
  onFailure?: (error: unknown, attempt: number) => void;
  policy?: Partial<RetryPolicy>;
}

/**
 * Writes one object and blocks until it is durably written, retrying every failure with
 * backoff, forever: a sink that gives up drops data, so an unavailable or throttling S3
 * (or a missing bucket or credentials that an operator will fix) holds the pipeline
 * where it is, with an error log per attempt, until it succeeds. Only the caller can stop
 * it, through `stillWanted` / `whileWaiting`. Writing the same key again writes the same
 * bytes, so a retry after an ambiguous failure is harmless.
 */
export async function uploadDurably(s3: S3Client, o: DurableUploadOptions): Promise<void> {
  let attempts = 0;
  await withRetry(
    async () => {
      attempts++;
      await uploadOnce(s3, o);
    },
    {
      policy: { ...BLOCKING_RETRY, ...o.policy },
      minDelayMs: 100,
      // Every failure is retried: a refusal (a missing bucket, credentials) is logged as an error until an operator fixes it.
      retriable: () => true,
      signal: o.signal,
      ...(o.stillWanted ? { stillWanted: o.stillWanted } : {}),
      ...(o.whileWaiting ? { whileWaiting: o.whileWaiting } : {}),
      abandoned: (cause) => new UploadAbandonedError(`upload of s3://${o.bucket}/${o.key} abandoned${cause ? ' in flight' : ''}`, { cause }),
      onRetry: (error, attempt, delay) => {
        o.onFailure?.(error, attempt);
        const transient = isRetriable(error) || isServerFault(error);
        o.logger[transient ? 'warn' : 'error'](
          { bucket: o.bucket, key: o.key, attempt, retryInMs: delay, err: describe(error) },
          transient ? 'S3 upload failed, retrying (the pipeline waits; nothing is dropped)' : 'S3 upload refused, retrying until fixed (check the bucket, its policy and the credentials)',
        );
      },
    },
  );
  if (attempts > 1) o.logger.info({ bucket: o.bucket, key: o.key, attempts }, 'S3 upload succeeded after retries');
}

async function uploadOnce(s3: S3Client, o: DurableUploadOptions): Promise<void> {
  if (o.body instanceof Uint8Array && o.body.byteLength <= o.partSize) {
    await s3.send(new PutObjectCommand({ Bucket: o.bucket, Key: o.key, Body: o.body, ContentType: o.contentType, ContentLength: o.body.byteLength, Metadata: o.metadata }), o.signal ? { abortSignal: o.signal } : {});
    return;
  }
  // A file goes through lib-storage, which reads the stream a part at a time: one PutObject when it fits in a part, else a multipart upload.
  const body = o.body instanceof Uint8Array ? o.body : createReadStream(o.body.file);
  const upload = new Upload({
    client: s3,
    params: { Bucket: o.bucket, Key: o.key, Body: body, ContentType: o.contentType, Metadata: o.metadata },
    partSize: o.partSize,
    queueSize: o.partConcurrency,
    leavePartsOnError: false, // abort the multipart upload so no parts linger
  });
  const abort = () => void upload.abort().catch(() => undefined);
  o.signal?.addEventListener('abort', abort, { once: true });
  try {
    await upload.done();
  } finally {
    o.signal?.removeEventListener('abort', abort);
    if (!(body instanceof Uint8Array)) body.destroy();
  }
}

function isServerFault(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}${status ? ` (HTTP ${status})` : ''}: ${e?.message ?? String(error)}`;
}
