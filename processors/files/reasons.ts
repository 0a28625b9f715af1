import type { FieldError } from '../ingest-api/responses.js';

/**
 * The reason codes of `sluice files`, defined once: for a whole file (it fails, the
 * receipt says why) and for one row (a line of the rejects file and a DLQ record). Row
 * validation codes are the ingest API's own (validation.ts), written `code:field` where the
 * field matters (`missing_field:customer_id`, as docs/domain.md writes it).
 */
export const FILE_FAILURE_REASONS = {
  empty_file: 'the object has no bytes (or no header line)',
  invalid_gzip: 'starts like gzip but is not a valid gzip stream',
  truncated_gzip: 'the gzip stream ends before its end marker (an upload cut short?)',
  invalid_encoding: 'not UTF-8 text',
  missing_columns: 'the CSV header lacks columns every row needs',
  unknown_columns: 'the CSV header has columns that are not event fields',
  duplicate_columns: 'the CSV header names a column twice',
  record_too_large: 'a CSV record is longer than files.maxRecordBytes',
  object_changed: 'the object was replaced while it was read (it is processed again as its new version)',
} as const;
export type FileFailureReason = keyof typeof FILE_FAILURE_REASONS;

/** Row-level codes beside the validation ones. */
export const ROW_REASONS = {
  malformed_csv: 'the CSV record cannot be parsed (a stray or unclosed quote)',
  column_count_mismatch: 'the record has more or fewer fields than the header',
  malformed_json: 'the line is not valid JSON',
  not_an_object: 'the line is JSON but not an object',
  record_too_large: 'the line is longer than files.maxRecordBytes (its first 64 KiB are kept)',
} as const;
export type RowReason = keyof typeof ROW_REASONS;

/** Why an S3 event notification (files.notificationsTopic) went to the DLQ instead of naming a file. */
export const NOTIFICATION_REASONS = {
  malformed_notification: 'the record is not JSON, or a key is not valid URL encoding',
  not_an_s3_event: 'JSON, but not an S3 event notification (no Records list)',
  missing_field: 'an ObjectCreated record without its bucket name, key or event name',
  other_bucket: 'the notification names a bucket this instance does not watch',
  outside_incoming: "the key is not under any source's incoming prefix",
} as const;
export type NotificationReason = keyof typeof NOTIFICATION_REASONS;

/** A failure that ends a file: it is recorded as failed with this reason; rows already committed stay. */
export class FileFormatError extends Error {
  override readonly name = 'FileFormatError';
  constructor(
    readonly reason: FileFailureReason,
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

/** The validation codes that docs/domain.md names alone (the field is implied). */
const STANDALONE = new Set(['unknown_event_type', 'invalid_amount', 'currency_mismatch', 'invalid_timestamp', 'unknown_customer', 'conflicting_duplicate']);

/** `missing_field:customer_id`, `invalid_amount`: one reason code per field error. */
export function reasonOf(error: Pick<FieldError, 'code' | 'field'>): string {
  return STANDALONE.has(error.code) ? error.code : `${error.code}:${error.field}`;
}
