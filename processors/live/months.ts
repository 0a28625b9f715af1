/**
 * UTC months of occurred_at, and the window of open months: with `open` = 3 the current
 * UTC month and the previous two are open (later months too: an event may be stamped a
 * little ahead of the clock). A month closes at the start of the month `open` after it.
 */

/** `YYYY-MM` of a UTC instant in microseconds since the epoch. */
export function monthOfMicros(micros: bigint): string {
  const ms = Number(micros / 1000n - (micros % 1000n < 0n ? 1n : 0n));
  const d = new Date(ms);
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

const index = (month: string): number => {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return y * 12 + (m - 1);
};
const fromIndex = (i: number): string => `${String(Math.floor(i / 12)).padStart(4, '0')}-${String((i % 12) + 1).padStart(2, '0')}`;

export const MONTH_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The oldest open month at `nowMs`. */
export function oldestOpenMonth(nowMs: number, open: number): string {
  const d = new Date(nowMs);
  return fromIndex(d.getUTCFullYear() * 12 + d.getUTCMonth() - (open - 1));
}

export function isOpen(month: string, nowMs: number, open: number): boolean {
  return month >= oldestOpenMonth(nowMs, open);
}

/** When `month` leaves the window (ms since the epoch): what its state expires at. */
export function closesAt(month: string, open: number): number {
  const i = index(month) + open;
  return Date.UTC(Math.floor(i / 12), i % 12, 1);
}

const HOUR_US = 3_600_000_000n;
const HOUR_OFFSET = 0x800000;
/** The UTC hour of a time (µs since the epoch), counted from ~957 years before 1970 (0 to 0xffffff, clamped). */
export function hourOf(micros: bigint): number {
  return Math.min(Math.max(Number(micros / HOUR_US) + HOUR_OFFSET, 0), 0xffffff);
}
/** hourOf as 6 sortable hex digits. */
export const hourHex = (hour: number): string => hour.toString(16).padStart(6, '0');
/** The UTC hour of a time (µs since the epoch) as 6 sortable hex digits (±957 years around 1970). */
export const hourKey = (micros: bigint): string => hourHex(hourOf(micros));
