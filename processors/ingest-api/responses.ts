/**
 * The bodies the API answers with: per-event results, field-level validation errors
 * and the one error shape of every other failure. The OpenAPI document describes these.
 */

/** Machine-readable kinds of field problem (docs/domain.md's reason codes where one fits). */
export const FIELD_ERROR_CODES = [
  'missing_field',
  'unknown_event_type',
  'invalid_amount',
  'currency_mismatch',
  'invalid_timestamp',
  /** Wrong JSON type, bad format, too long, not one of the allowed values. */
  'invalid_value',
  /** A field the API does not accept (a typo, or received_at, which the server sets). */
  'unknown_field',
  /** A field the event's type must not carry (an amount on customer_onboarded). */
  'not_allowed',
  /** No agent_id and the customer has no assigned agent. */
  'unknown_customer',
  /** The same event_id twice in one batch with different content. */
  'conflicting_duplicate',
] as const;
export type FieldErrorCode = (typeof FIELD_ERROR_CODES)[number];

export interface FieldError {
  /** Position of the event in the batch (0 for a single event); absent for a header. */
  index?: number;
  /** The event field, or the header name (e.g. X-Sluice-Channel). */
  field: string;
  code: FieldErrorCode;
  message: string;
}

/** Most field errors listed in one 422; `error_count` still counts them all. */
export const MAX_LISTED_ERRORS = 100;

export const ERROR_KINDS = [
  'malformed_json',
  'invalid_shape',
  /** Another malformed request (e.g. a Content-Length that does not match the body). */
  'bad_request',
  'unauthorized',
  'not_found',
  'payload_too_large',
  'unsupported_media_type',
  'validation_failed',
  'unavailable',
  'internal',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface ErrorBody {
  error: ErrorKind;
  message: string;
  /** Only on validation_failed (422). */
  errors?: FieldError[];
  error_count?: number;
}

export function errorBody(error: ErrorKind, message: string): ErrorBody {
  return { error, message };
}

export function validationFailed(errors: readonly FieldError[]): ErrorBody {
  const listed = errors.slice(0, MAX_LISTED_ERRORS);
  return {
    error: 'validation_failed',
    message:
      `${errors.length} problem${errors.length === 1 ? '' : 's'} in the request; nothing was stored (a batch is all-or-nothing)` +
      (errors.length > listed.length ? `; the first ${listed.length} are listed` : ''),
    errors: listed,
    error_count: errors.length,
  };
}

export type EventStatus = 'inserted' | 'duplicate';

export interface EventResult {
  event_id: string;
  status: EventStatus;
  /** The agent the stored row credits (for a duplicate: the row stored first). */
  agent_id: string;
}

export interface IngestResponse {
  /** One per event, in request order. */
  results: EventResult[];
  inserted: number;
  duplicates: number;
  /** The server time stamped on the inserted rows. */
  received_at: string;
}

export interface CustomerBody {
  customer_id: string;
  agent_id: string;
  created_at: string;
  updated_at: string;
}
