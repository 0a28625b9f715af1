import type pg from 'pg';
import type { MonthEvent } from './reports-lake.js';

/**
 * The report tests' generated month (reports-lake.ts generateMonth) as rows of
 * staging.agent_events, for the tests that start at Postgres (Debezium -> normalizer ->
 * live). The staging table is shared by every test on the stack, so a run's events are
 * moved to a year no other test uses (2100-2249, from the run id; the normalizer keeps
 * times as safe-integer microseconds, so years up to 2255). The events happen and arrive
 * between September and December, months of the same lengths every year, so moving them
 * by the time between 1 September 2026 and 1 September of that year keeps every month
 * boundary where it was; `monthsOf` names the months reconcile must check.
 */
const SEPTEMBER_2026 = Date.UTC(2026, 8, 1);
const JANUARY_2027 = Date.UTC(2027, 0, 1);

/** The year a run's events move to. */
export function yearShift(run: string): number {
  return 2100 + (Number.parseInt(run.slice(0, 8), 16) % 150);
}

export function shiftEvents(events: readonly MonthEvent[], year: number): MonthEvent[] {
  const from = BigInt(SEPTEMBER_2026) * 1000n;
  const to = BigInt(JANUARY_2027) * 1000n;
  const outside = events.find((e) => [e.occurredAtMicros, e.receivedAtMicros].some((t) => t < from || t >= to));
  if (outside) throw new Error(`event ${outside.eventId} is not between September and December 2026: moving it to ${year} would move month boundaries`);
  const d = new Date(0);
  d.setUTCFullYear(year, 8, 1);
  const by = (BigInt(d.getTime()) - BigInt(SEPTEMBER_2026)) * 1000n;
  return events.map((e) => ({ ...e, occurredAtMicros: e.occurredAtMicros + by, receivedAtMicros: e.receivedAtMicros + by }));
}

/** The UTC months (YYYY-MM) the events' occurred_at fall in, sorted. */
export function monthsOf(events: readonly MonthEvent[]): string[] {
  return [...new Set(events.map((e) => isoMicros(e.occurredAtMicros).slice(0, 7)))].sort();
}

/** ISO-8601 UTC text to the microsecond (timestamptz keeps microseconds). */
export function isoMicros(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const micro = ((us % 1000n) + 1000n) % 1000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 23)}${String(micro).padStart(3, '0')}Z`;
}

/** Inserts the events as staging rows in one statement (one transaction: one Debezium batch of changes). */
export async function insertStaging(pool: pg.Pool, events: readonly MonthEvent[]): Promise<void> {
  if (events.length === 0) return;
  const money = (e: MonthEvent) => e.type !== 'customer_onboarded';
  await pool.query(
    `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, received_at, source)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::char(3)[], $7::timestamptz[], $8::timestamptz[], $9::text[])`,
    [
      events.map((e) => e.eventId),
      events.map((e) => e.type),
      events.map((e) => e.agentId),
      events.map((e) => e.customerId),
      events.map((e) => (money(e) ? e.amount!.toString() : null)),
      events.map((e) => (money(e) ? 'USD' : null)),
      events.map((e) => isoMicros(e.occurredAtMicros)),
      events.map((e) => isoMicros(e.receivedAtMicros)),
      events.map((e) => e.source ?? 'agent_app'),
    ],
  );
}

/** Deletes the staging rows of these months (rows an earlier run of the same shift left). */
export async function deleteMonths(pool: pg.Pool, months: readonly string[]): Promise<number> {
  let n = 0;
  for (const m of months) {
    const [y, mm] = m.split('-').map(Number) as [number, number];
    const from = `${String(y).padStart(4, '0')}-${String(mm).padStart(2, '0')}-01T00:00:00Z`;
    const to = mm === 12 ? `${String(y + 1).padStart(4, '0')}-01-01T00:00:00Z` : `${String(y).padStart(4, '0')}-${String(mm + 1).padStart(2, '0')}-01T00:00:00Z`;
    n += (await pool.query('DELETE FROM staging.agent_events WHERE occurred_at >= $1 AND occurred_at < $2', [from, to])).rowCount ?? 0;
  }
  return n;
}
