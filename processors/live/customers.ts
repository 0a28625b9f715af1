import { FingerprintTable, fingerprintOf } from '../core/state/fingerprint-table.js';
import type { KeyIndex } from '../core/state/key-index.js';
import { hourHex } from './months.js';

/**
 * The customers an agent onboarded in a month (N counts distinct ones), as live stores them and
 * finds them again without reading its store at random.
 *
 * Keys: `C\0<hour><agent>\0<month>\0<customer>`, `<hour>` the UTC hour of the onboarding's
 * occurred_at (6 hex digits, months.ts hourKey): new customers are written where the events that
 * arrive together are (events come roughly in time order), on a few recent pages. Stores
 * written before held `c\0<agent>\0<month>\0<customer>` (legacyCustomerKey): still honoured until
 * they expire with their month. An id with a NUL in it is not told apart (ids come from Postgres
 * text, which cannot hold one).
 *
 * Whether a customer is already counted is asked of a CustomerIndex first (core/state's KeyIndex,
 * per partition): per open month a FingerprintTable of a 32-bit fingerprint of
 * `<agent>\0<month>\0<customer>` and the hour its key was stored under (LEGACY for the old key).
 * No fingerprint: a new customer, and the store is not read at all (a random key's read is a
 * B-tree descent to a page that is seldom cached: BENCHMARKS.md "Live: memory"). A fingerprint:
 * the keys at its locators are read exactly (a repeat onboarding, or rarely another customer with
 * the same fingerprint), so the count stays exact. ~8-16 bytes of memory a customer (8-byte slots,
 * at most half of them used). A month's table goes when the month leaves the window (its events
 * are late then: never looked up).
 */
export const CUSTOMER_PREFIX = 'C\u0000';
export const LEGACY_CUSTOMER_PREFIX = 'c\u0000';
/** The locator of a customer stored under its old key. */
export const LEGACY = 0xffffffff;

const member = (agentId: string, month: string, customerId: string): string => `${agentId}\u0000${month}\u0000${customerId}`;
export const customerKey = (hour: number, agentId: string, month: string, customerId: string): string => `${CUSTOMER_PREFIX}${hourHex(hour)}${member(agentId, month, customerId)}`;
export const legacyCustomerKey = (agentId: string, month: string, customerId: string): string => `${LEGACY_CUSTOMER_PREFIX}${member(agentId, month, customerId)}`;
/** The key of a customer at a locator (an hour, or LEGACY). */
export const customerKeyAt = (locator: number, agentId: string, month: string, customerId: string): string =>
  locator === LEGACY ? legacyCustomerKey(agentId, month, customerId) : customerKey(locator, agentId, month, customerId);

export class CustomerIndex implements KeyIndex {
  readonly prefixes = [CUSTOMER_PREFIX, LEGACY_CUSTOMER_PREFIX] as const;
  private readonly months = new Map<string, FingerprintTable>();

  /** `fingerprint`: a test seam (a tiny one forces collisions). */
  constructor(private readonly fingerprint: (member: string) => number = fingerprintOf) {}

  /** The month, fingerprint and locator of a customer key; undefined for another key. */
  private parse(key: string): { month: string; fp: number; loc: number } | undefined {
    let loc: number;
    let rest: string;
    if (key.startsWith(CUSTOMER_PREFIX)) {
      loc = parseInt(key.slice(2, 8), 16);
      rest = key.slice(8);
    } else if (key.startsWith(LEGACY_CUSTOMER_PREFIX)) {
      loc = LEGACY;
      rest = key.slice(2);
    } else return undefined;
    const a = rest.indexOf('\u0000');
    if (a < 0 || Number.isNaN(loc)) return undefined;
    return { month: rest.slice(a + 1, a + 8), fp: this.fingerprint(rest), loc };
  }

  add(key: string): boolean {
    const p = this.parse(key);
    if (!p) return false;
    let table = this.months.get(p.month);
    if (!table) this.months.set(p.month, (table = new FingerprintTable()));
    return table.add(p.fp, p.loc);
  }

  remove(key: string): void {
    const p = this.parse(key);
    if (p) this.months.get(p.month)?.remove(p.fp, p.loc);
  }

  clear(): void {
    this.months.clear();
  }

  /** Where the customer may be stored (hours, or LEGACY): read each key exactly to know. */
  locators(agentId: string, month: string, customerId: string): readonly number[] {
    const table = this.months.get(month);
    return table ? table.locators(this.fingerprint(member(agentId, month, customerId))) : [];
  }

  /** Forgets the months before `month` (YYYY-MM): they left the window. */
  dropMonthsBefore(month: string): void {
    for (const m of this.months.keys()) if (m < month) this.months.delete(m);
  }

  /** Customers held, and the table slots (8 bytes each), over every month. */
  get stats(): { customers: number; slots: number; months: number } {
    let customers = 0;
    let slots = 0;
    for (const t of this.months.values()) {
      customers += t.size;
      slots += t.capacity;
    }
    return { customers, slots, months: this.months.size };
  }
}
