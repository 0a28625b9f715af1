import type { EventType, ValidEvent } from './rules.js';

/**
 * A valid row mapped to the agent-event envelope as schemas/agent-event/v1.avsc documents
 * it (CloudEvents-style: id, type, source, time, subject + the typed `data`). The value is
 * in avsc's shape: `data` is a wrapped union ({ "<full record name>": {...} }), longs
 * that may exceed 2^53 are bigints. Fields a later version adds with a default are
 * simply absent here and written with their default.
 */
export interface AgentEventEnvelope {
  specversion: '1.0';
  id: string;
  type: string;
  source: string;
  time: number;
  subject: string;
  schema_version: number;
  received_at: number;
  correlation_id: string | null;
  session_id: string | null;
  data: Record<string, Record<string, unknown>>;
}

/** The contract version being written and its `data` union branch per event type. */
export interface EnvelopeContract {
  version: number;
  branches: Record<EventType, string>;
}

export const EVENT_TYPE_PREFIX = 'io.sluice.agent.';

export function toEnvelope(event: ValidEvent, contract: EnvelopeContract): AgentEventEnvelope {
  return {
    specversion: '1.0',
    id: event.eventId,
    type: `${EVENT_TYPE_PREFIX}${event.eventType}`,
    source: `/channels/${event.source && event.source.trim() !== '' ? encodeURIComponent(event.source) : 'unknown'}`,
    time: event.occurredAtMicros,
    subject: event.agentId,
    schema_version: contract.version,
    received_at: event.receivedAtMicros,
    correlation_id: event.correlationId,
    session_id: event.sessionId,
    data: { [contract.branches[event.eventType]]: payload(event) },
  };
}

function payload(event: ValidEvent): Record<string, unknown> {
  switch (event.eventType) {
    case 'customer_onboarded':
      return { customer_id: event.customerId, metadata: event.metadata };
    case 'deposit_made':
    case 'withdrawal_made':
      return { customer_id: event.customerId, amount_minor: event.amountMinor, currency: event.currency, metadata: event.metadata };
    case 'investment_made':
      return { customer_id: event.customerId, amount_minor: event.amountMinor, currency: event.currency, product: productOf(event.metadata), metadata: event.metadata };
  }
}

/** metadata.product when the metadata is a JSON object whose product is text; else null. */
export function productOf(metadata: string | null): string | null {
  if (metadata === null) return null;
  try {
    const parsed = JSON.parse(metadata) as unknown;
    const product = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { product?: unknown }).product : undefined;
    return typeof product === 'string' ? product : null;
  } catch {
    return null;
  }
}
