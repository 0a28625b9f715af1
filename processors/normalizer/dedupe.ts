import type { StateTransaction } from '../core/state/state-stores.js';

/**
 * Durable dedupe by event_id. Debezium is at least once (a Connect crash re-sends what
 * it had not flushed, a re-snapshot re-reads every row), so the same row may reach the
 * normalizer again; the CDC topic is keyed by event_id, so every copy of an event lands
 * in the same partition, and that partition's state (core/state, written in the same
 * transaction as the events) says whether the event was already emitted.
 *
 * The rules:
 *   - an event_id is remembered from the transaction that emitted it until `windowMs`
 *     after that (processing time), then forgotten (a tombstone in the changelog), so
 *     the state is bounded by the events of one window;
 *   - an INSERT or snapshot read of a remembered event_id is a duplicate: not emitted,
 *     counted by kind (insert, snapshot);
 *   - a copy arriving after its id was forgotten cannot be told from a new event, except
 *     by age: an event not remembered whose received_at (set once, when the row entered
 *     staging, and carried by every copy) is older than the window is counted as
 *     `beyondWindow` and emitted. Its first copy, if there was one, was emitted at least
 *     a window ago; `sluice compact` removes such copies from the lake. With the window
 *     longer than the staging retention a re-snapshot never produces one.
 */
export interface DedupeOptions {
  windowMs: number;
}

export type CopyKind = 'insert' | 'snapshot';

/** Nothing but the id and its expiry is needed: the entry's value is empty. */
const SEEN = Buffer.alloc(0);

/** Whether the event_id was already emitted within the window (this transaction's own events included). */
export function isDuplicate(state: StateTransaction, eventId: string): boolean {
  return state.get(eventId) !== undefined;
}

/**
 * Remembers an event being emitted in this transaction; says whether it is older than
 * the window (a possible copy of one the state has forgotten).
 */
export function remember(state: StateTransaction, eventId: string, receivedAtMicros: number, now: number, options: DedupeOptions): 'new' | 'beyond-window' {
  state.put(eventId, SEEN, now + options.windowMs);
  return receivedAtMicros / 1000 < now - options.windowMs ? 'beyond-window' : 'new';
}

/** Removes ids whose window has passed (a bounded sweep step, now and then) in this transaction. */
export function expireWindow(state: StateTransaction, now: number): number {
  return state.expireDue(now);
}

export const copyKind = (op: 'c' | 'r' | 'u' | 'd'): CopyKind => (op === 'r' ? 'snapshot' : 'insert');
