import { EVENT_TYPES, type EventType } from '../normalizer/rules.js';

/**
 * An agent event as live needs it, read from the decoded Avro envelope of the agent-event
 * contract (schemas/agent-event): `id` is the event_id, `subject` the agent, `time` the
 * occurred_at in UTC microseconds, `data` the typed payload (a union: one branch).
 */
export interface LiveEvent {
  eventId: string;
  type: EventType;
  agentId: string;
  customerId: string;
  /** Money types only; exact. */
  amountMinor: bigint | null;
  occurredAtMicros: bigint;
}

const TYPE_PREFIX = 'io.sluice.agent.';
const TYPES = new Set<string>(EVENT_TYPES);

/** Why a decoded value is not a usable event: the DLQ reason and the explanation. */
export interface NotAnEvent {
  reason: 'not_an_agent_event';
  error: string;
}

const int = (v: unknown): bigint | undefined => (typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : undefined);

export function toLiveEvent(value: unknown): LiveEvent | NotAnEvent {
  const bad = (error: string): NotAnEvent => ({ reason: 'not_an_agent_event', error });
  if (!value || typeof value !== 'object') return bad('the value is not a record');
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || v.id === '') return bad('no id (event_id)');
  if (typeof v.subject !== 'string' || v.subject === '') return bad('no subject (agent_id)');
  const type = typeof v.type === 'string' && v.type.startsWith(TYPE_PREFIX) ? v.type.slice(TYPE_PREFIX.length) : undefined;
  if (!type || !TYPES.has(type)) return bad(`unknown type ${JSON.stringify(v.type)}`);
  const time = int(v.time);
  if (time === undefined) return bad('no time (occurred_at)');
  // wrapUnions: the union is an object with one key, the branch's full name.
  const wrapped = v.data && typeof v.data === 'object' ? Object.values(v.data as Record<string, unknown>) : [];
  const data = (wrapped.length === 1 && wrapped[0] && typeof wrapped[0] === 'object' ? wrapped[0] : v.data) as Record<string, unknown> | undefined;
  if (!data || typeof data.customer_id !== 'string') return bad('no data.customer_id');
  let amountMinor: bigint | null = null;
  if (type !== 'customer_onboarded') {
    const amount = int(data.amount_minor);
    if (amount === undefined) return bad('no data.amount_minor');
    amountMinor = amount;
  }
  return { eventId: v.id, type: type as EventType, agentId: v.subject, customerId: data.customer_id, amountMinor, occurredAtMicros: time };
}
