import { GetBucketLifecycleConfigurationCommand, PutBucketLifecycleConfigurationCommand, type LifecycleRule, type S3Client, type TransitionStorageClass } from '@aws-sdk/client-s3';
import { PermanentError } from '../core/errors/errors.js';

/**
 * The data lifecycle of the bucket: lake objects move to a cold storage class after a
 * while (12 months by default), report files expire after a configured time. Applied as
 * one bucket lifecycle configuration (S3 replaces the whole configuration on every put, so
 * the command owns it: rules it does not know are reported before they are replaced).
 */

export interface LifecycleOptions {
  lakePrefix: string;
  coldAfterDays: number;
  coldStorageClass: TransitionStorageClass;
  reportsPrefix: string;
  expireReportsAfterDays: number;
  /** Abort multipart uploads left incomplete this long (a crashed upload's parts cost money). */
  abortIncompleteUploadsAfterDays: number;
}

export const DEFAULT_LIFECYCLE: LifecycleOptions = {
  lakePrefix: 'lake/',
  coldAfterDays: 365,
  coldStorageClass: 'GLACIER_IR',
  reportsPrefix: 'reports/',
  expireReportsAfterDays: 90,
  abortIncompleteUploadsAfterDays: 7,
};

export const RULE_IDS = { lakeCold: 'sluice-lake-to-cold', reportsExpire: 'sluice-reports-expire', abortUploads: 'sluice-abort-incomplete-uploads' } as const;

export function lifecycleRules(o: LifecycleOptions): LifecycleRule[] {
  return [
    { ID: RULE_IDS.lakeCold, Status: 'Enabled', Filter: { Prefix: o.lakePrefix }, Transitions: [{ Days: o.coldAfterDays, StorageClass: o.coldStorageClass }] },
    { ID: RULE_IDS.reportsExpire, Status: 'Enabled', Filter: { Prefix: o.reportsPrefix }, Expiration: { Days: o.expireReportsAfterDays } },
    { ID: RULE_IDS.abortUploads, Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: o.abortIncompleteUploadsAfterDays } },
  ];
}

/** The server answered that it does not implement bucket lifecycle configuration. */
export class LifecycleUnsupportedError extends PermanentError {}

export interface ApplyResult {
  /** Rules that were on the bucket and are replaced (ids). */
  replaced: string[];
  /** The configuration read back after the put. */
  readBack: LifecycleRule[];
}

export async function applyLifecycle(s3: S3Client, bucket: string, rules: LifecycleRule[], endpoint: string): Promise<ApplyResult> {
  const unsupported = (error: unknown) => {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    return e.name === 'NotImplemented' || e.$metadata?.httpStatusCode === 501;
  };
  const explain = () =>
    new LifecycleUnsupportedError(
      `the S3 server at ${endpoint} does not implement bucket lifecycle configuration (S3Proxy's filesystem backend does not; AWS S3 and MinIO do). Nothing was changed. The rules this command applies there:\n${JSON.stringify(rules, null, 2)}`,
    );
  let existing: LifecycleRule[] = [];
  try {
    existing = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
  } catch (error) {
    if (unsupported(error)) throw explain();
    if ((error as { name?: string }).name !== 'NoSuchLifecycleConfiguration') throw error;
  }
  try {
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: rules } }));
  } catch (error) {
    if (unsupported(error)) throw explain();
    throw error;
  }
  const readBack = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
  const ours = new Set(rules.map((r) => r.ID));
  return { replaced: existing.map((r) => r.ID ?? '(no id)').filter((id) => !ours.has(id)), readBack };
}
