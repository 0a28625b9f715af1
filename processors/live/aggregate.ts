import { commission, type CommissionRow, type CommissionRules } from '../reports/commission.js';
import type { StateTransaction } from '../core/state/state-stores.js';
import { dedupeKey } from '../normalizer/dedupe.js';
import { CustomerIndex, customerKey, customerKeyAt } from './customers.js';
import type { LiveEvent } from './event.js';
import { closesAt, hourKey, hourOf, isOpen, monthOfMicros, oldestOpenMonth } from './months.js';

export { hourKey };

/**
 * The live state of one events partition (core/state, a StateTransaction per Kafka
 * transaction) and how an event changes it. Keys:
 *   - `i\0<hour><id>`: the event was counted (each event_id counts once, however often it comes); `<id>`
 *     is the normalizer's dedupe key of the event_id (its 16 bytes in base64url, 22 characters),
 *     `<hour>` the UTC hour of its occurred_at (6 hex digits, sortable). The hour first keeps the
 *     keys of the events that arrive together (events come roughly in time order) on the same few
 *     pages: with the bare random event id every insert and lookup touched a random page of the
 *     whole B-tree (with LMDB, earlier, each stayed resident; with SQLite each insert would
 *     rewrite a random page: BENCHMARKS.md "Live: memory"). Every copy of an event carries the same occurred_at (rows are
 *     immutable: an UPDATE is a dead letter at the normalizer, DOMAIN.md), so its copies
 *     meet the same key. Stores written before this held `e\0<id>` (legacyEventKey): those
 *     are looked up too while a store still holds any (they expire with their month);
 *   - `C\0<hour><agent>\0<month>\0<customer>`: the customer was onboarded by the agent in the month (N counts
 *     distinct ones), found through the partition's CustomerIndex (customers.ts: why, and the keys of older stores);
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
export const eventKey = (eventId: string, occurredAtMicros: bigint): string => `i${SEP}${hourKey(occurredAtMicros)}${dedupeKey(eventId)}`;
/** Where the key of a counted event was before the hour led it: `e\0<id>`. */
export const LEGACY_EVENT_PREFIX = `e${SEP}`;
export const legacyEventKey = (eventId: string): string => `${LEGACY_EVENT_PREFIX}${dedupeKey(eventId)}`;
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
  const months = new MonthCache(o);
  const customers = state.index;
  if (!(customers instanceof CustomerIndex)) throw new Error('the live state stores need their customer index (StateStoresOptions.index: () => new CustomerIndex())');
  customers.dropMonthsBefore(oldestOpenMonth(o.nowMs, o.openMonths));
  // Counted events of a store written before the hour-led keys: looked up under their old key too, until they expire.
  const legacy = state.storeHasKeysFrom(LEGACY_EVENT_PREFIX);
  for (const e of events) {
    const m = months.of(e.occurredAtMicros);
    const month = m.month;
    if (!m.open) {
      result.late.push(e);
      continue;
    }
    const idKey = eventKey(e.eventId, e.occurredAtMicros);
    if (state.has(idKey) || (legacy && state.has(legacyEventKey(e.eventId)))) {
      result.duplicates++;
      continue;
    }
    const expiresAt = m.closesAt;
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
      if (!onboarded(state, customers, e.agentId, month, e.customerId)) {
        state.put(customerKey(hourOf(e.occurredAtMicros), e.agentId, month, e.customerId), EMPTY, expiresAt);
        t.customersOnboarded++;
      }
    } else if (e.type === 'deposit_made') t.depositsMinor += e.amountMinor ?? 0n;
    else if (e.type === 'withdrawal_made') t.withdrawalsMinor += e.amountMinor ?? 0n;
    else t.investmentsMinor += e.amountMinor ?? 0n;
    result.counted++;
  }
  for (const [key, { agentId, month, t }] of totals) {
    state.put(key, encodeTotals(t), months.closesAt(month));
    result.changed.set(key, { ...commission({ agentId, ...t }, o.rules), month });
  }
  return result;
}

/** Whether the agent onboarded the customer in the month before, as `state` sees it: the index's candidates, each read exactly. */
function onboarded(state: StateTransaction, customers: CustomerIndex, agentId: string, month: string, customerId: string): boolean {
  for (const locator of customers.locators(agentId, month, customerId)) if (state.has(customerKeyAt(locator, agentId, month, customerId))) return true;
  return false;
}

interface MonthInfo {
  month: string;
  open: boolean;
  closesAt: number;
  /** The month's first and next month's first instant, µs since the epoch. */
  from: bigint;
  to: bigint;
}

/** The month of an event time, its place in the window and its expiry: worked out once per month a transaction meets (events of a partition mostly share one). */
class MonthCache {
  private last: MonthInfo | undefined;
  private readonly byMonth = new Map<string, MonthInfo>();

  constructor(private readonly o: ApplyOptions) {}

  of(micros: bigint): MonthInfo {
    const l = this.last;
    if (l && micros >= l.from && micros < l.to) return l;
    const month = monthOfMicros(micros);
    let m = this.byMonth.get(month);
    if (!m) {
      const [y, mm] = month.split('-').map(Number) as [number, number];
      m = { month, open: isOpen(month, this.o.nowMs, this.o.openMonths), closesAt: closesAt(month, this.o.openMonths), from: firstOfMonthMicros(y, mm - 1), to: firstOfMonthMicros(y, mm) };
      this.byMonth.set(month, m);
    }
    return (this.last = m);
  }

  closesAt(month: string): number {
    return this.byMonth.get(month)?.closesAt ?? closesAt(month, this.o.openMonths);
  }
}

/** 00:00 UTC of the first day of month `m0` (0-based, may be 12) of year `y`, µs (setUTCFullYear: years below 100 too). */
function firstOfMonthMicros(y: number, m0: number): bigint {
  const d = new Date(0);
  d.setUTCFullYear(y, m0, 1);
  return BigInt(d.getTime()) * 1000n;
}
