import { stringify } from 'lossless-json';
import { describeJsonType, isJsonObject, isNumberLiteral } from './body.js';
import type { FieldError, FieldErrorCode } from './responses.js';
import { MICROS_PER_HOUR, parseTimestamp } from './timestamp.js';

/**
 * docs/domain.md's rules for one incoming event, as pure functions: the API rejects what it
 * can know is wrong before anything reaches staging.agent_events. Each problem names
 * the event's index and the field; every field of every event is checked, so a client
 * sees all of its mistakes at once.
 */

export const EVENT_TYPES = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const MONEY_TYPES: ReadonlySet<EventType> = new Set(['deposit_made', 'withdrawal_made', 'investment_made']);

/** The source channels docs/domain.md names. */
export const CHANNELS = ['web', 'mobile', 'agent_app', 'backend'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Every field an event may carry; anything else is an unknown field (extra context goes in metadata). */
export const EVENT_FIELDS = [
  'event_id',
  'event_type',
  'agent_id',
  'customer_id',
  'amount_minor',
  'currency',
  'occurred_at',
  'source',
  'session_id',
  'correlation_id',
  'metadata',
] as const;

/** Longest agent, customer, session or correlation id. */
export const MAX_ID_LENGTH = 256;
/** Deepest nesting of metadata objects and arrays. */
export const MAX_METADATA_DEPTH = 32;
/** amount_minor is a PostgreSQL bigint. */
export const INT64_MAX = 2n ** 63n - 1n;
/** occurred_at may lie at most this far after received_at (docs/domain.md: 24 h). */
export const MAX_OCCURRED_AFTER_RECEIVED_MICROS = 24n * MICROS_PER_HOUR;

/** Hyphenated hex UUID, any version, either case. */
export const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export interface ValidationOptions {
  /** ISO 4217 code every money event must carry. */
  baseCurrency: string;
  /** Server time the request was received, in µs since the epoch. */
  receivedAtMicros: bigint;
}

/** An event that passed every rule; agent_id may still need resolving from the customer. */
export interface ValidEvent {
  /** Canonical lower-case UUID. */
  eventId: string;
  eventType: EventType;
  /** null: credit the customer's assigned agent. */
  agentId: string | null;
  customerId: string;
  /** Exact minor units; null for customer_onboarded. */
  amountMinor: bigint | null;
  currency: string | null;
  /** Canonical UTC timestamp, µs precision. */
  occurredAt: string;
  source: Channel | null;
  sessionId: string | null;
  correlationId: string | null;
  /** The metadata object as JSON text, numbers exactly as sent. */
  metadata: string | null;
}

export type EventVerdict = { ok: true; event: ValidEvent } | { ok: false; errors: FieldError[] };

type Check<T> = { value: T } | { code: FieldErrorCode; message: string };
const bad = (code: FieldErrorCode, message: string): { code: FieldErrorCode; message: string } => ({ code, message });

export function validateEvent(raw: Record<string, unknown>, index: number, options: ValidationOptions): EventVerdict {
  const errors: FieldError[] = [];
  const take = <T>(field: string, check: Check<T>): T | undefined => {
    if ('value' in check) return check.value;
    errors.push({ index, field, code: check.code, message: check.message });
    return undefined;
  };
  const present = (field: string): boolean => raw[field] !== undefined && raw[field] !== null;

  for (const field of Object.keys(raw)) {
    if ((EVENT_FIELDS as readonly string[]).includes(field)) continue;
    errors.push(
      field === 'received_at'
        ? { index, field, code: 'unknown_field', message: 'received_at is set by the server from its own clock; leave it out' }
        : { index, field, code: 'unknown_field', message: `unknown field; the fields are ${EVENT_FIELDS.join(', ')} (put extra context in metadata)` },
    );
  }

  const eventId = take('event_id', present('event_id') ? uuid(raw.event_id) : bad('missing_field', 'event_id is required: a UUID the client chooses, its idempotency key'));
  const eventType = take('event_type', present('event_type') ? knownEventType(raw.event_type) : bad('missing_field', `event_type is required: one of ${EVENT_TYPES.join(', ')}`));
  const agentId = present('agent_id') ? take('agent_id', identifier(raw.agent_id, 'agent_id')) : null;
  const customerId = take(
    'customer_id',
    present('customer_id') ? identifier(raw.customer_id, 'customer_id') : bad('missing_field', `customer_id is required${eventType ? ` for ${eventType}` : ''}`),
  );

  let amountMinor: bigint | null = null;
  let currency: string | null = null;
  if (eventType !== undefined) {
    if (MONEY_TYPES.has(eventType)) {
      amountMinor = take('amount_minor', present('amount_minor') ? amount(raw.amount_minor) : bad('missing_field', `amount_minor is required for ${eventType}`)) ?? null;
      currency =
        take('currency', present('currency') ? currencyCode(raw.currency, options.baseCurrency) : bad('missing_field', `currency is required for ${eventType} (${options.baseCurrency})`)) ?? null;
    } else {
      for (const field of ['amount_minor', 'currency'] as const) {
        if (present(field)) errors.push({ index, field, code: 'not_allowed', message: `${eventType} carries no ${field}; only money events (${[...MONEY_TYPES].join(', ')}) do` });
      }
    }
  }

  const occurredAt = take('occurred_at', present('occurred_at') ? occurred(raw.occurred_at, options.receivedAtMicros) : bad('missing_field', 'occurred_at is required: when it happened, e.g. 2026-11-01T10:00:00Z'));
  const source = present('source') ? take('source', channel(raw.source, 'source')) : null;
  const sessionId = present('session_id') ? take('session_id', identifier(raw.session_id, 'session_id')) : null;
  const correlationId = present('correlation_id') ? take('correlation_id', identifier(raw.correlation_id, 'correlation_id')) : null;
  const metadata = present('metadata') ? take('metadata', metadataText(raw.metadata, eventType)) : null;

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    event: {
      eventId: eventId!,
      eventType: eventType!,
      agentId: agentId ?? null,
      customerId: customerId!,
      amountMinor,
      currency,
      occurredAt: occurredAt!,
      source: source ?? null,
      sessionId: sessionId ?? null,
      correlationId: correlationId ?? null,
      metadata: metadata ?? null,
    },
  };
}

function uuid(v: unknown): Check<string> {
  if (typeof v !== 'string' || !UUID.test(v)) return bad('invalid_value', `event_id must be a UUID string like 0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c (got ${show(v)})`);
  return { value: v.toLowerCase() };
}

function knownEventType(v: unknown): Check<EventType> {
  if (typeof v === 'string' && (EVENT_TYPES as readonly string[]).includes(v)) return { value: v as EventType };
  return bad('unknown_event_type', `event_type ${show(v)} is not one of ${EVENT_TYPES.join(', ')}`);
}

/** Agent, customer, session and correlation ids: non-empty text a report can group by. */
export function identifier(v: unknown, field: string): Check<string> {
  if (typeof v !== 'string') return bad('invalid_value', `${field} must be a string (got ${describeJsonType(v)})`);
  if (v.trim() === '') return bad('invalid_value', `${field} must not be empty`);
  if (v !== v.trim()) return bad('invalid_value', `${field} must not start or end with white space (got ${show(v)})`);
  if (v.length > MAX_ID_LENGTH) return bad('invalid_value', `${field} is ${v.length} characters long; at most ${MAX_ID_LENGTH}`);
  if (/[\u0000-\u001f\u007f]/.test(v)) return bad('invalid_value', `${field} must not contain control characters`);
  const text = textProblem(v);
  if (text) return bad('invalid_value', `${field} ${text}`);
  return { value: v };
}

/**
 * amount_minor: a positive integer count of minor units that fits PostgreSQL's bigint.
 * A JSON number is taken only up to 2^53 - 1, where every JSON encoder is exact; larger
 * amounts must come as a decimal string, so a client that rounded in a double cannot
 * slip a wrong amount through. `1.00`, `1e3` and `"12.5"` are refused: they are not
 * minor units.
 */
export function amount(v: unknown): Check<bigint> {
  const range = `a positive integer of minor units: a JSON number up to ${Number.MAX_SAFE_INTEGER}, or a decimal string up to "${INT64_MAX}"`;
  let n: bigint;
  if (isNumberLiteral(v)) {
    if (!/^-?\d+$/.test(v.value)) return bad('invalid_amount', `amount_minor ${v.value} is not an integer; it must be ${range}`);
    n = BigInt(v.value);
    if (n > 0n && n > BigInt(Number.MAX_SAFE_INTEGER)) {
      return bad('invalid_amount', `amount_minor ${v.value} is beyond ${Number.MAX_SAFE_INTEGER} as a JSON number, where JSON encoders may round; send it as a decimal string, "${v.value}"`);
    }
  } else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return bad('invalid_amount', `amount_minor ${v} is not ${range}`);
    n = BigInt(v);
  } else if (typeof v === 'string') {
    if (!/^-?\d+$/.test(v)) return bad('invalid_amount', `amount_minor ${show(v)} is not a decimal integer string; it must be ${range}`);
    n = BigInt(v);
  } else {
    return bad('invalid_amount', `amount_minor must be ${range} (got ${describeJsonType(v)})`);
  }
  if (n <= 0n) return bad('invalid_amount', `amount_minor ${n} must be greater than 0`);
  if (n > INT64_MAX) return bad('invalid_amount', `amount_minor ${n} does not fit in 64 bits (at most ${INT64_MAX})`);
  return { value: n };
}

function currencyCode(v: unknown, base: string): Check<string> {
  if (v === base) return { value: base };
  return bad('currency_mismatch', `currency ${show(v)} is not the deployment's base currency ${base}${typeof v === 'string' && v.toUpperCase() === base ? ' (codes are upper case)' : ''}`);
}

function occurred(v: unknown, receivedAtMicros: bigint): Check<string> {
  const example = 'e.g. 2026-11-01T10:00:00Z or 2026-11-01T12:00:00.250+02:00';
  if (typeof v !== 'string') return bad('invalid_timestamp', `occurred_at must be an ISO-8601 timestamp string with a time zone, ${example} (got ${describeJsonType(v)})`);
  const t = parseTimestamp(v);
  if (!t) return bad('invalid_timestamp', `occurred_at ${show(v)} is not an ISO-8601 date-time with a time zone (Z or ±hh:mm), ${example}`);
  if (t.micros - receivedAtMicros > MAX_OCCURRED_AFTER_RECEIVED_MICROS) {
    return bad('invalid_timestamp', `occurred_at ${v} is more than 24 h after the time the server received it`);
  }
  return { value: t.iso };
}

export function channel(v: unknown, field: string): Check<Channel> {
  if (typeof v === 'string' && (CHANNELS as readonly string[]).includes(v)) return { value: v as Channel };
  return bad('invalid_value', `${field} ${show(v)} is not one of ${CHANNELS.join(', ')}`);
}

/** metadata: a JSON object, stored as jsonb with its numbers as sent. */
function metadataText(v: unknown, eventType: EventType | undefined): Check<string> {
  if (!isJsonObject(v)) return bad('invalid_value', `metadata must be a JSON object (got ${describeJsonType(v)})`);
  const problem = jsonbProblem(v, 'metadata', 0);
  if (problem) return bad('invalid_value', problem);
  if (eventType === 'investment_made' && v.product !== undefined && v.product !== null) {
    if (typeof v.product !== 'string' || v.product.trim() === '') return bad('invalid_value', `metadata.product must be a non-empty string naming the product (got ${show(v.product)})`);
  }
  return { value: stringify(v)! };
}

/** What PostgreSQL's jsonb would refuse (a 500 if it got there), found before it does. */
function jsonbProblem(v: unknown, path: string, depth: number): string | undefined {
  if (typeof v === 'string') {
    const p = textProblem(v);
    return p ? `${path} ${p}` : undefined;
  }
  if (isNumberLiteral(v)) {
    // numeric holds exponents to about ±131072; beyond ±1000 is no metadata anyone means.
    const exponent = /[eE]([+-]?\d+)$/.exec(v.value);
    return exponent && Math.abs(Number(exponent[1])) > 1000 ? `${path} ${v.value} is out of range` : undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  if (depth >= MAX_METADATA_DEPTH) return `${path} is nested deeper than ${MAX_METADATA_DEPTH} levels`;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = jsonbProblem(v[i], `${path}[${i}]`, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  for (const [key, value] of Object.entries(v)) {
    const k = textProblem(key);
    if (k) return `${path} has a key that ${k}`;
    const p = jsonbProblem(value, `${path}.${key}`, depth + 1);
    if (p) return p;
  }
  return undefined;
}

/** PostgreSQL text and jsonb hold neither NUL nor lone UTF-16 surrogates (not Unicode). */
function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character (\\u0000), which PostgreSQL cannot store';
  if (/\p{Cs}/u.test(s)) return 'contains an unpaired UTF-16 surrogate, which is not valid Unicode';
  return undefined;
}

/** A value for an error message: JSON, cut short. */
export function show(v: unknown): string {
  let text: string;
  try {
    text = stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * One event_id twice in a batch: the later copies are duplicates of the first when they
 * say the same thing, and a client bug when they do not (which one would be true?).
 */
export function conflictingDuplicates(events: readonly { index: number; eventId: string; fingerprint: string }[]): FieldError[] {
  const first = new Map<string, { index: number; fingerprint: string }>();
  const errors: FieldError[] = [];
  for (const e of events) {
    const seen = first.get(e.eventId);
    if (!seen) first.set(e.eventId, e);
    else if (seen.fingerprint !== e.fingerprint) {
      errors.push({ index: e.index, field: 'event_id', code: 'conflicting_duplicate', message: `event_id ${e.eventId} is also event ${seen.index} of this batch, with different content` });
    }
  }
  return errors;
}

/** PUT /customers/{customer_id}: the body `{"agent_id": "..."}` and the id from the path. */
export function validateAssignment(customerId: string, body: Record<string, unknown>): { ok: true; customerId: string; agentId: string } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  for (const field of Object.keys(body)) {
    if (field !== 'agent_id') errors.push({ field, code: 'unknown_field', message: 'unknown field; the body is {"agent_id": "..."} (the customer is named in the path)' });
  }
  const id = identifier(customerId, 'customer_id');
  if (!('value' in id)) errors.push({ field: 'customer_id', ...id });
  const agent = body.agent_id === undefined || body.agent_id === null ? bad('missing_field', 'agent_id is required: the agent the customer is assigned to') : identifier(body.agent_id, 'agent_id');
  if (!('value' in agent)) errors.push({ field: 'agent_id', ...agent });
  if (errors.length > 0 || !('value' in id) || !('value' in agent)) return { ok: false, errors };
  return { ok: true, customerId: id.value, agentId: agent.value };
}
