import { commission, type CommissionRow, type CommissionRules } from '../reports/commission.js';
import type { StateTransaction } from '../core/state/state-stores.js';
import type { LiveEvent } from './event.js';
import { closesAt, isOpen, monthOfMicros } from './months.js';

/**
 * The live state of one events partition (core/state, a StateTransaction per Kafka
 * transaction) and how an event changes it. Keys:
 *   - `e\0<event_id>`: the event was counted (each event_id counts once, however often it comes);
 *   - `c\0<agent>\0<month>\0<customer>`: the customer was onboarded by the agent in the month (N counts distinct ones);
 *   - `a\0<agent>\0<month>`: the agent-month's totals (events, N, D, W, I; exact decimal text).
 * Every entry expires when its month leaves the window of open months (closesAt): after
 * that an event of the month is late_outside_window and never counted, so nothing needs
 * them. The events topic is keyed by agent_id, so an event's copies, an agent's customers
 * and its totals all live in one partition.
 * The commission of a row is the report's (reports/commission.ts with the same rules file).
 */

export interface Totals {
  events: number;
  customersOnboarded: number;
  depositsMinor: bigint;
  withdrawalsMinor: bigint;
  investmentsMinor: bigint;
}

export interface LiveRow extends CommissionRow {
  month: string;
}

export interface ApplyOptions {
  nowMs: number;
  openMonths: number;
  rules: CommissionRules;
}

export interface ApplyResult {
  /** The rows changed by the events, last state, by `<agent>\0<month>`. */
  changed: Map<string, LiveRow>;
  counted: number;
  duplicates: number;
  /** Events of a month outside the window: not counted live. */
  late: LiveEvent[];
}

const SEP = '\u0000';
const EMPTY = Buffer.alloc(0);
export const eventKey = (eventId: string): string => `e${SEP}${eventId}`;
export const customerKey = (agentId: string, month: string, customerId: string): string => `c${SEP}${agentId}${SEP}${month}${SEP}${customerId}`;
export const totalsKey = (agentId: string, month: string): string => `a${SEP}${agentId}${SEP}${month}`;

export function encodeTotals(t: Totals): Buffer {
  return Buffer.from(`${t.events},${t.customersOnboarded},${t.depositsMinor},${t.withdrawalsMinor},${t.investmentsMinor}`, 'latin1');
}

export function decodeTotals(b: Buffer): Totals {
  const [events, n, d, w, i] = b.toString('latin1').split(',');
  return { events: Number(events), customersOnboarded: Number(n), depositsMinor: BigInt(d!), withdrawalsMinor: BigInt(w!), investmentsMinor: BigInt(i!) };
}

const ZERO: Totals = { events: 0, customersOnboarded: 0, depositsMinor: 0n, withdrawalsMinor: 0n, investmentsMinor: 0n };

/** Counts each new event into its agent-month, in `state`; returns the rows that changed. */
export function applyEvents(state: StateTransaction, events: readonly LiveEvent[], o: ApplyOptions): ApplyResult {
  const result: ApplyResult = { changed: new Map(), counted: 0, duplicates: 0, late: [] };
  const totals = new Map<string, { agentId: string; month: string; t: Totals }>();
  for (const e of events) {
    const month = monthOfMicros(e.occurredAtMicros);
    if (!isOpen(month, o.nowMs, o.openMonths)) {
      result.late.push(e);
      continue;
    }
    const idKey = eventKey(e.eventId);
    if (state.get(idKey) !== undefined) {
      result.duplicates++;
      continue;
    }
    const expiresAt = closesAt(month, o.openMonths);
    state.put(idKey, EMPTY, expiresAt);
    const key = totalsKey(e.agentId, month);
    let entry = totals.get(key);
    if (!entry) {
      const stored = state.get(key);
      entry = { agentId: e.agentId, month, t: stored ? decodeTotals(stored.value) : { ...ZERO } };
      totals.set(key, entry);
    }
    const t = entry.t;
    t.events++;
    if (e.type === 'customer_onboarded') {
      const ck = customerKey(e.agentId, month, e.customerId);
      if (state.get(ck) === undefined) {
        state.put(ck, EMPTY, expiresAt);
        t.customersOnboarded++;
      }
    } else if (e.type === 'deposit_made') t.depositsMinor += e.amountMinor ?? 0n;
    else if (e.type === 'withdrawal_made') t.withdrawalsMinor += e.amountMinor ?? 0n;
    else t.investmentsMinor += e.amountMinor ?? 0n;
    result.counted++;
  }
  for (const [key, { agentId, month, t }] of totals) {
    state.put(key, encodeTotals(t), closesAt(month, o.openMonths));
    result.changed.set(key, { ...commission({ agentId, ...t }, o.rules), month });
  }
  return result;
}
