import type { IncomingHttpHeaders } from 'node:http';
import type { FieldError } from './responses.js';
import { timestampOfDate, type Timestamp } from './timestamp.js';
import { channel, identifier, type Channel, type ValidEvent } from './validation.js';

/**
 * What the server adds to a valid event: received_at from its own clock, and from the
 * request, the source channel, session and correlation ids an event does not carry
 * itself (a field in the event wins over the header). Then the agent a customer is
 * assigned to, for an event that names none.
 */

export const HEADERS = {
  channel: 'x-sluice-channel',
  sessionId: 'x-session-id',
  correlationId: 'x-correlation-id',
  traceparent: 'traceparent',
} as const;

/** The request-wide values every event of the request may inherit. */
export interface RequestContext {
  receivedAt: Timestamp;
  source: Channel | null;
  sessionId: string | null;
  correlationId: string | null;
}

/** A valid event with the request's values applied; agent_id may still be unresolved. */
export interface EnrichedEvent extends ValidEvent {
  /** Position in the request. */
  index: number;
  receivedAt: string;
}

/** An event ready for staging.agent_events. */
export interface StagedEvent extends EnrichedEvent {
  agentId: string;
}

const headerValue = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s === undefined || s === '' ? undefined : s;
};

/** The request context; a bad X-Sluice-Channel, X-Session-Id or X-Correlation-Id is a field error. */
export function requestContext(headers: IncomingHttpHeaders, receivedAt: Date): { context: RequestContext; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const fromHeader = <T>(name: string, display: string, check: (v: string) => { value: T } | { code: FieldError['code']; message: string }): T | null => {
    const raw = headerValue(headers, name);
    if (raw === undefined) return null;
    const result = check(raw);
    if ('value' in result) return result.value;
    errors.push({ field: display, code: result.code, message: result.message });
    return null;
  };
  const source = fromHeader(HEADERS.channel, 'X-Sluice-Channel', (v) => channel(v, 'X-Sluice-Channel'));
  const sessionId = fromHeader(HEADERS.sessionId, 'X-Session-Id', (v) => identifier(v, 'X-Session-Id'));
  const correlationId =
    fromHeader(HEADERS.correlationId, 'X-Correlation-Id', (v) => identifier(v, 'X-Correlation-Id')) ?? traceIdOf(headerValue(headers, HEADERS.traceparent));
  return { context: { receivedAt: timestampOfDate(receivedAt), source, sessionId, correlationId }, errors };
}

/**
 * The trace id of a W3C traceparent (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`);
 * undefined -> null. An invalid traceparent is ignored, as the W3C spec asks of receivers.
 */
export function traceIdOf(traceparent: string | undefined): string | null {
  if (traceparent === undefined) return null;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/.exec(traceparent.trim());
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[4] !== undefined)) return null;
  if (/^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return null;
  return m[2]!;
}

export function enrich(event: ValidEvent, index: number, context: RequestContext): EnrichedEvent {
  // Spelled out rather than spread: one object shape for every event, cheaper on a
  // file's million rows (the key order is the spread's, which fingerprint() relies on).
  return {
    eventId: event.eventId,
    eventType: event.eventType,
    agentId: event.agentId,
    customerId: event.customerId,
    amountMinor: event.amountMinor,
    currency: event.currency,
    occurredAt: event.occurredAt,
    source: event.source ?? context.source,
    sessionId: event.sessionId ?? context.sessionId,
    correlationId: event.correlationId ?? context.correlationId,
    metadata: event.metadata,
    index,
    receivedAt: context.receivedAt.iso,
  };
}

/** Everything that makes up the stored row, to tell two copies of one event_id apart. */
export function fingerprint(event: EnrichedEvent): string {
  const { index: _index, ...row } = event;
  return JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The customers whose assigned agent is needed: those of events that name no agent. */
export function customersToResolve(events: readonly EnrichedEvent[]): string[] {
  return [...new Set(events.filter((e) => e.agentId === null).map((e) => e.customerId))];
}

/** Credits each event that names no agent to its customer's assigned agent. */
export function resolveAgents(events: readonly EnrichedEvent[], assignments: ReadonlyMap<string, string>): { events: StagedEvent[]; errors: FieldError[] } {
  const resolved: StagedEvent[] = [];
  const errors: FieldError[] = [];
  for (const e of events) {
    const agentId = e.agentId ?? assignments.get(e.customerId);
    if (agentId === undefined) {
      errors.push({
        index: e.index,
        field: 'agent_id',
        code: 'unknown_customer',
        message: `agent_id is missing and customer ${JSON.stringify(e.customerId)} has no assigned agent; send agent_id, or assign one with PUT /customers/{customer_id}`,
      });
    } else {
      resolved.push({ ...e, agentId });
    }
  }
  return { events: resolved, errors };
}
