import { DLQ_REASONS, missingField } from '../core/dlq/reasons.js';
import { isoToMicros, type CdcRecord, type CdcRow } from './cdc.js';

/**
 * docs/domain.md's rules for a change of staging.agent_events, as pure functions: what a valid
 * row is, the reason code of an invalid one, and what each kind of change becomes.
 */

export const EVENT_TYPES = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const MONEY_TYPES: ReadonlySet<EventType> = new Set(['deposit_made', 'withdrawal_made', 'investment_made']);

export const isEventType = (v: unknown): v is EventType => typeof v === 'string' && (EVENT_TYPES as readonly string[]).includes(v);

/** The dead-letter reason codes of a change (docs/domain.md's, plus the two for records that are not rows at all); defined in core/dlq/reasons.ts. */
export const REASONS = {
  unknownEventType: DLQ_REASONS.unknownEventType,
  missingField,
  invalidAmount: DLQ_REASONS.invalidAmount,
  currencyMismatch: DLQ_REASONS.currencyMismatch,
  invalidTimestamp: DLQ_REASONS.invalidTimestamp,
  immutableEventMutated: DLQ_REASONS.immutableEventMutated,
  unparseableRecord: DLQ_REASONS.unparseableRecord,
  schemaViolation: DLQ_REASONS.schemaViolation,
} as const;

/** occurred_at may be at most this far after received_at (24 h, in microseconds). */
export const MAX_OCCURRED_AFTER_RECEIVED_MICROS = 24 * 60 * 60 * 1_000_000;

const INT64_MAX = 2n ** 63n - 1n;

export interface RuleOptions {
  /** ISO 4217 code every money event must carry (docs/domain.md: default USD). */
  baseCurrency: string;
}

/** A row that passed every rule, with its values in the types the envelope needs. */
export interface ValidEvent {
  eventId: string;
  eventType: EventType;
  agentId: string;
  customerId: string;
  /** Exact minor units; null for customer_onboarded. */
  amountMinor: bigint | null;
  currency: string | null;
  occurredAtMicros: number;
  receivedAtMicros: number;
  source: string | null;
  sessionId: string | null;
  correlationId: string | null;
  /** The jsonb column as JSON text, unchanged. */
  metadata: string | null;
}

export type Verdict = { ok: true; event: ValidEvent } | { ok: false; reason: string; error: string };

export type IgnoredKind = 'delete' | 'tombstone' | 'heartbeat' | 'truncate' | 'message';

/** What one CDC record becomes. */
export type Decision =
  | { action: 'event'; event: ValidEvent }
  | { action: 'dead-letter'; reason: string; error: string }
  | { action: 'ignore'; kind: IgnoredKind };

/**
 * INSERT (c) and snapshot read (r): an event when valid, else a dead letter with the
 * reason. UPDATE (u): a dead letter (immutable_event_mutated); the original event
 * stands. DELETE (d, pruning), tombstones, heartbeats, TRUNCATE and messages: ignored.
 */
export function decide(record: CdcRecord, options: RuleOptions): Decision {
  switch (record.kind) {
    case 'unparseable':
      return { action: 'dead-letter', reason: REASONS.unparseableRecord, error: `not a Debezium change event: ${record.error}` };
    case 'tombstone':
    case 'heartbeat':
    case 'truncate':
    case 'message':
      return { action: 'ignore', kind: record.kind };
    case 'change':
      break;
  }
  switch (record.op) {
    case 'd':
      return { action: 'ignore', kind: 'delete' };
    case 'u':
      return { action: 'dead-letter', reason: REASONS.immutableEventMutated, error: describeUpdate(record.before, record.after) };
    case 'c':
    case 'r': {
      const verdict = validateRow(record.after ?? {}, options);
      return verdict.ok ? { action: 'event', event: verdict.event } : { action: 'dead-letter', ...verdict };
    }
  }
}

type Text = { value: string } | { problem: string };

function text(row: CdcRow, column: string): Text {
  const v = row[column];
  if (v === null || v === undefined) return { problem: `${column} is missing` };
  if (typeof v !== 'string') return { problem: `${column} is not text (${typeof v})` };
  if (v.trim() === '') return { problem: `${column} is empty` };
  return { value: v };
}

const optionalText = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * Checks a row against docs/domain.md and reports the first problem, in column order: the
 * event's identity, its type, the fields its type requires, then the values.
 */
export function validateRow(row: CdcRow, options: RuleOptions): Verdict {
  const missing = (column: string, problem: string): Verdict => ({ ok: false, reason: REASONS.missingField(column), error: problem });

  const eventId = text(row, 'event_id');
  if ('problem' in eventId) return missing('event_id', eventId.problem);
  const eventType = text(row, 'event_type');
  if ('problem' in eventType) return missing('event_type', eventType.problem);
  if (!isEventType(eventType.value)) {
    return { ok: false, reason: REASONS.unknownEventType, error: `event_type ${JSON.stringify(eventType.value)} is not one of ${EVENT_TYPES.join(', ')}` };
  }
  const type = eventType.value;
  const money = MONEY_TYPES.has(type);

  const agentId = text(row, 'agent_id');
  if ('problem' in agentId) return missing('agent_id', agentId.problem);
  const customerId = text(row, 'customer_id');
  if ('problem' in customerId) return missing('customer_id', `${customerId.problem}; ${type} requires it`);
  if (money && (row.amount_minor === null || row.amount_minor === undefined)) return missing('amount_minor', `amount_minor is missing; ${type} requires it`);
  const currency = text(row, 'currency');
  if (money && 'problem' in currency) return missing('currency', `${currency.problem}; ${type} requires it`);
  if (row.occurred_at === null || row.occurred_at === undefined) return missing('occurred_at', 'occurred_at is missing');
  if (row.received_at === null || row.received_at === undefined) return missing('received_at', 'received_at is missing');

  let amountMinor: bigint | null = null;
  if (money) {
    const amount = exactInteger(row.amount_minor);
    if (amount === undefined) return { ok: false, reason: REASONS.invalidAmount, error: `amount_minor ${show(row.amount_minor)} is not an integer number of minor units` };
    if (amount <= 0n) return { ok: false, reason: REASONS.invalidAmount, error: `amount_minor ${amount} must be greater than 0` };
    if (amount > INT64_MAX) return { ok: false, reason: REASONS.invalidAmount, error: `amount_minor ${amount} does not fit in 64 bits` };
    amountMinor = amount;
    const code = (currency as { value: string }).value;
    if (code !== options.baseCurrency) {
      return { ok: false, reason: REASONS.currencyMismatch, error: `currency ${JSON.stringify(code)} is not the deployment's base currency ${options.baseCurrency}` };
    }
  }

  const occurred = isoToMicros(row.occurred_at);
  if (occurred === undefined) return { ok: false, reason: REASONS.invalidTimestamp, error: `occurred_at ${show(row.occurred_at)} is not an ISO-8601 timestamp in range` };
  const received = isoToMicros(row.received_at);
  if (received === undefined) return { ok: false, reason: REASONS.invalidTimestamp, error: `received_at ${show(row.received_at)} is not an ISO-8601 timestamp in range` };
  if (occurred - received > MAX_OCCURRED_AFTER_RECEIVED_MICROS) {
    return { ok: false, reason: REASONS.invalidTimestamp, error: `occurred_at ${String(row.occurred_at)} is more than 24 h after received_at ${String(row.received_at)}` };
  }

  return {
    ok: true,
    event: {
      eventId: eventId.value,
      eventType: type,
      agentId: agentId.value,
      customerId: customerId.value,
      amountMinor,
      currency: money ? (currency as { value: string }).value : null,
      occurredAtMicros: occurred,
      receivedAtMicros: received,
      source: optionalText(row.source),
      sessionId: optionalText(row.session_id),
      correlationId: optionalText(row.correlation_id),
      metadata: metadataText(row.metadata),
    },
  };
}

/** An integer as bigint: lossless-json gives bigints; a digits-only string is accepted too. */
function exactInteger(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return undefined;
}

/** Debezium sends jsonb as JSON text; another converter might send the object itself. */
function metadataText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return stringify(v);
}

function describeUpdate(before: CdcRow | null, after: CdcRow | null): string {
  const id = optionalText(after?.event_id) ?? optionalText(before?.event_id) ?? '(unknown)';
  if (!before) return `event ${id} was updated; rows are immutable facts, so the original event stands (no before image: is REPLICA IDENTITY FULL set?)`;
  const changed = Object.keys({ ...before, ...after }).filter((k) => stringify(before[k]) !== stringify(after?.[k]));
  return `event ${id} was updated (changed: ${changed.length > 0 ? changed.join(', ') : 'no column'}); rows are immutable facts, so the original event stands`;
}

const stringify = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'undefined';
const show = (v: unknown): string => stringify(v);
