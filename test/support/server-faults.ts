import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import type pg from 'pg';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { createPool } from '../../processors/core/db/pool.js';
import { sleep } from '../../processors/core/errors/retry.js';
import { startReports } from '../../processors/reports/reports.js';
import type { AgentEvent } from './agent-events.js';
import { ensureCdcConnector, ensureCdcTopics } from './cdc.js';
import { collectUntilQuiet, startGroupAtEnd } from './consume.js';
import { freePort, LakeCopy, stack, testPipeline, verifyLake, waitDrained } from './export-harness.js';
import { lakeEvent } from './export-faults.js';
import { waitForTopic } from './kafka.js';
import { registryReader } from './registry-reader.js';
import { commissionReportSql, parseCsv, REPORT_HEADER, reportRows } from './reports-lake.js';
import { eventually } from './servers.js';
import { SluiceProcess } from './sluice-process.js';

/**
 * The servers' fault suite: a steady flow of rows INSERTed into staging.agent_events goes
 * through the whole pipeline (Debezium -> CDC topic -> `sluice normalizer` -> events topic
 * -> `sluice run` lake.yaml -> Parquet on S3) while each server is faulted in turn (the
 * broker and Kafka Connect SIGKILLed and restarted, PostgreSQL restarted, the registry
 * stopped), each optionally combined with an export runner SIGKILLed and restarted while
 * the server is away. After each fault the flow pauses and every row inserted so far is
 * checked: each valid event_id exactly once on the events topic (read_committed, values
 * decoded through the registry) and in the lake (DuckDB), none of the invalid ones, and
 * the commission report (the real report processor) equal to DuckDB's over the lake.
 * Sized by the caller: CI-sized in test/integration, larger in test/soak.
 */

export type ServerFault = 'broker-kill' | 'connect-kill' | 'postgres-restart' | 'registry-stop';

export const CDC_TOPIC = 'sluice.staging.agent_events';
/** The month whose commission report is compared (lakeEvent spreads events over six months). */
export const REPORT_MONTH = '2026-10';
const API_KEY = 'server-faults-test-key-0123456789';
const BRANCH: Record<AgentEvent['type'], string> = {
  customer_onboarded: 'io.sluice.events.CustomerOnboarded',
  deposit_made: 'io.sluice.events.DepositMade',
  withdrawal_made: 'io.sluice.events.WithdrawalMade',
  investment_made: 'io.sluice.events.InvestmentMade',
};

export interface SuiteOptions {
  settings: CoreSettings;
  kafka: Kafka;
  admin: Admin;
  /** Rows a second into staging.agent_events while the flow runs. */
  rate: number;
  /** Seconds of flow before each fault and after the server is back. */
  flowSeconds: number;
  log: (line: string) => void;
}

/** What one fault left behind, counted over every row inserted so far (this run's only). */
export interface FaultOutcome {
  fault: string;
  rows: number;
  valid: number;
  eventsTopic: { records: number; distinct: number; duplicates: number; missing: number; invalid: number };
  lake: { rows: number; distinct: number; duplicates: number; missing: number };
  /** Duplicate copies of this run's rows on the CDC topic (Debezium is at least once). */
  cdcDuplicates: number;
  seconds: number;
}

/** Row i of a run: lakeEvent's values (six months, 2^53+, late events) with this run's agents; every 50th is invalid (currency EUR). */
export function stagingEvent(run: string, i: number): { event: AgentEvent; invalid: boolean } {
  const e = lakeEvent(run, i);
  const invalid = i % 50 === 25 && e.amount !== null;
  return { event: { ...e, agentId: `${run}-agent-${i % 23}` }, invalid };
}

/** Epoch microseconds as ISO 8601 with six fraction digits (what timestamptz keeps). */
function isoMicros(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 19)}.${(us % 1_000_000n).toString().padStart(6, '0')}Z`;
}

/**
 * INSERTs rows at a steady rate, a small batch every 100 ms, each batch retried until
 * PostgreSQL takes it (ON CONFLICT DO NOTHING: a batch whose commit was lost with the
 * connection is not inserted twice). `pause` returns once the batch in hand is in.
 */
class StagingWriter {
  next = 0;
  private paused = true;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private idle: (() => void) | undefined;
  failures = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly run: string,
    private readonly rate: number,
  ) {}

  resume(): void {
    this.paused = false;
    this.loop ??= this.work();
  }

  async pause(): Promise<void> {
    this.paused = true;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      if (!this.loop) resolve();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.paused = true;
    await this.loop;
  }

  private async work(): Promise<void> {
    const perTick = Math.max(1, Math.round(this.rate / 10));
    while (!this.stopped) {
      if (this.paused) {
        this.idle?.();
        this.idle = undefined;
        await sleep(50);
        continue;
      }
      const started = Date.now();
      const batch = Array.from({ length: perTick }, (_, k) => stagingEvent(this.run, this.next + k));
      for (;;) {
        try {
          await this.insert(batch);
          break;
        } catch {
          this.failures++;
          await sleep(500); // PostgreSQL away: the same batch again
        }
      }
      this.next += perTick;
      await sleep(Math.max(0, 100 - (Date.now() - started)));
    }
    this.idle?.();
  }

  private async insert(batch: { event: AgentEvent; invalid: boolean }[]): Promise<void> {
    const col = <T>(f: (x: { event: AgentEvent; invalid: boolean }) => T) => batch.map(f);
    await this.pool.query(
      `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, received_at, source)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[])
       ON CONFLICT (event_id) DO NOTHING`,
      [
        col((x) => x.event.eventId),
        col((x) => x.event.type),
        col((x) => x.event.agentId),
        col((x) => x.event.customerId),
        col((x) => (x.event.amount === null ? null : x.event.amount.toString())),
        col((x) => (x.event.amount === null ? null : x.invalid ? 'EUR' : 'USD')),
        col((x) => isoMicros(x.event.occurredAtMicros)),
        col((x) => isoMicros(x.event.receivedAtMicros)),
        col(() => 'backend'),
      ],
    );
  }
}

/** The pipeline under test, running for the whole suite. */
export class ServerFaultSuite {
  private constructor(
    private readonly o: SuiteOptions,
    readonly run: string,
    readonly topics: { events: string; dlq: string },
    readonly group: string,
    readonly exportGroup: string,
    readonly prefix: string,
    private readonly pipelineFile: string,
    private readonly pool: pg.Pool,
    private readonly writer: StagingWriter,
    private normalizer: SluiceProcess,
    private runner: SluiceProcess,
    private generation: number,
    private readonly cdcStart: { partition: number; offset: string }[],
  ) {}

  /** Starts the pipeline of a run (dist/ built: connectExportStack does it) and waits until it consumes. */
  static async start(o: SuiteOptions, run: string): Promise<ServerFaultSuite> {
    await ensureCdcConnector(o.settings);
    // Debezium's topic; made now (as Connect's topic creation would) when no change was streamed yet.
    // On a fresh cluster the CDC topic appears with Debezium's first change: create it as Connect would.
    await ensureCdcTopics(o.kafka, o.settings);
    await waitForTopic(o.kafka, CDC_TOPIC, 60_000);
    const topics = { events: `test.server-faults.${run}.events`, dlq: `test.server-faults.${run}.dlq` };
    const group = `test-server-faults-${run}`;
    const exportGroup = `test-server-faults-export-${run}`;
    const prefix = `test-server-faults-${run}/`;
    // The CDC topic is shared and keeps growing: this run's normalizer starts at its end.
    await startGroupAtEnd(o.kafka, group, CDC_TOPIC);
    const cdcStart = (await o.admin.fetchTopicOffsets(CDC_TOPIC)).map((p) => ({ partition: p.partition, offset: p.high }));
    const pool = createPool(o.settings.database.url);
    pool.on('error', () => undefined); // idle connections break when PostgreSQL restarts: the writer retries
    const pipelineFile = testPipeline({ topic: topics.events, dlq: `${topics.events}.export-dlq`, prefix, group: exportGroup, period: '3s' });
    const suite = new ServerFaultSuite(o, run, topics, group, exportGroup, prefix, pipelineFile, pool, new StagingWriter(pool, run, o.rate), undefined as never, undefined as never, 0, cdcStart);
    suite.normalizer = await suite.startNormalizer();
    suite.runner = await suite.startRunner();
    await eventually(async () => ((await suite.normalizer.readiness())?.status === 200 ? true : undefined), 90_000, `the normalizer ready (${suite.normalizer.log})`);
    await eventually(async () => ((await suite.runner.readiness())?.status === 200 ? true : undefined), 90_000, `the export runner ready (${suite.runner.log})`);
    return suite;
  }

  private async startNormalizer(): Promise<SluiceProcess> {
    const port = await freePort();
    return new SluiceProcess(`server-faults-${this.run}-normalizer`, ['normalizer'], {
      SLUICE_LOG_LEVEL: 'info',
      SLUICE_NORMALIZER_GROUP_ID: this.group,
      SLUICE_NORMALIZER_INSTANCE_ID: `server-faults-${this.run}`,
      SLUICE_NORMALIZER_EVENTS_TOPIC: this.topics.events,
      SLUICE_NORMALIZER_DLQ_TOPIC: this.topics.dlq,
      SLUICE_NORMALIZER_SUBJECT: `test.server-faults.${this.run}.events-value`,
      SLUICE_NORMALIZER_HTTP_PORT: String(port),
      SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: '10000',
    }, port).start();
  }

  private async startRunner(): Promise<SluiceProcess> {
    const port = await freePort();
    return new SluiceProcess(`server-faults-${this.run}-export-${++this.generation}`, ['run', this.pipelineFile], { SLUICE_EXPORT_HTTP_PORT: String(port), SLUICE_LOG_LEVEL: 'info' }, port).start();
  }

  private log(line: string): void {
    this.o.log(`[server-faults ${this.run}] ${line}`);
  }

  /** Faults one server during the flow (and SIGKILLs + restarts the export runner while it is away), then checks everything so far. */
  async fault(fault: ServerFault, options: { restartRunner: boolean; registryDownMs?: number }): Promise<FaultOutcome> {
    const started = Date.now();
    const name = `${fault}${options.restartRunner ? ' + export runner restart' : ''}`;
    this.writer.resume();
    await sleep(this.o.flowSeconds * 1000);
    this.log(`${name}: ${this.writer.next} rows so far`);
    const restartRunner = async () => {
      if (!options.restartRunner) return;
      await this.runner.kill('SIGKILL');
      this.runner = await this.startRunner(); // it starts while the server is away: it must wait for it
    };
    switch (fault) {
      case 'broker-kill':
        stack('kill', 'kafka');
        await sleep(2000);
        await restartRunner();
        await sleep(2000);
        stack('up', 'kafka');
        break;
      case 'connect-kill':
        stack('kill', 'connect');
        await restartRunner();
        await sleep(3000);
        stack('up', 'connect');
        break;
      case 'postgres-restart':
        stack('down', 'postgres');
        await restartRunner();
        await sleep(3000);
        stack('up', 'postgres');
        break;
      case 'registry-stop': {
        stack('down', 'registry');
        const down = Date.now();
        await restartRunner();
        await sleep(Math.max(0, down + (options.registryDownMs ?? 60_000) - Date.now()));
        stack('up', 'registry');
        break;
      }
    }
    this.log(`${name}: server back after ${((Date.now() - started) / 1000 - this.o.flowSeconds).toFixed(1)} s`);
    await sleep(this.o.flowSeconds * 1000);
    await this.writer.pause();
    for (const p of [this.normalizer, this.runner]) if (p.exitCode !== null) throw new Error(`${p.name} exited (${p.exitCode}) during ${name}; it must wait and retry: see ${p.log}`);
    const outcome = await this.check(name);
    outcome.seconds = (Date.now() - started) / 1000;
    this.log(`${name}: ${JSON.stringify(outcome)}`);
    return outcome;
  }

  /** Every row so far: the events topic and the lake hold each valid event_id once with its values; the report equals DuckDB's. */
  private async check(name: string): Promise<FaultOutcome> {
    const rows = Array.from({ length: this.writer.next }, (_, i) => stagingEvent(this.run, i));
    const valid = rows.filter((r) => !r.invalid).map((r) => r.event);
    const byId = new Map(valid.map((e) => [e.eventId, e]));
    const invalidIds = new Set(rows.filter((r) => r.invalid).map((r) => r.event.eventId));
    const ours = (id: string) => id.startsWith(this.run);

    // The events topic, read_committed, until every valid row is there and nothing more comes.
    const reader = registryReader(this.o.settings.registry.url);
    const counts = new Map<string, number>();
    let invalid = 0;
    let records = 0;
    const mismatches: string[] = [];
    for (const message of await collectUntilQuiet(this.o.kafka, this.topics.events, (ms) => ms.length >= valid.length, { timeoutMs: 120_000, returnOnTimeout: true })) {
      const v = (await reader.decode(message.value!)) as { id: string; type: string; subject: string; time: bigint; data: Record<string, { customer_id: string; amount_minor?: bigint }> };
      if (!ours(v.id)) continue;
      records++;
      if (invalidIds.has(v.id)) invalid++;
      counts.set(v.id, (counts.get(v.id) ?? 0) + 1);
      const e = byId.get(v.id);
      if (!e) continue;
      const data = v.data[BRANCH[e.type]];
      const same = v.type === `io.sluice.agent.${e.type}` && v.subject === e.agentId && BigInt(v.time) === e.occurredAtMicros && data?.customer_id === e.customerId && (e.amount === null || data.amount_minor === e.amount);
      if (!same && mismatches.length < 3) mismatches.push(`${v.id}: ${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))}`);
    }
    if (mismatches.length > 0) throw new Error(`${name}: events differ from their rows: ${mismatches.join('; ')}`);
    const eventsTopic = {
      records,
      distinct: counts.size - invalid,
      duplicates: [...counts.values()].reduce((n, c) => n + c - 1, 0),
      missing: valid.filter((e) => !counts.has(e.eventId)).length,
      invalid,
    };

    // The CDC topic's copies of this run's rows (Debezium's at-least-once, for the record), from where the run started.
    const cdcCopies = new Map<string, number>();
    for (const message of await readRange(this.o.kafka, this.o.admin, CDC_TOPIC, this.cdcStart)) {
      const id = (JSON.parse(message.key?.toString() ?? '{}') as { event_id?: string }).event_id ?? '';
      if (ours(id)) cdcCopies.set(id, (cdcCopies.get(id) ?? 0) + 1);
    }
    const cdcDuplicates = [...cdcCopies.values()].reduce((n, c) => n + c - 1, 0);

    // The lake, once the export has committed the whole events topic.
    await waitDrained(this.o.admin, this.exportGroup, this.topics.events, 180_000);
    const lake = (await LakeCopy.download(this.o.settings, this.prefix)).where(`starts_with(event_id, '${this.run}')`);
    let lakeCounts: FaultOutcome['lake'];
    try {
      const [t] = await lake.query('SELECT count(*)::VARCHAR AS n, count(DISTINCT event_id)::VARCHAR AS d FROM LAKE');
      const present = new Set((await lake.query('SELECT DISTINCT event_id FROM LAKE')).map((r) => String(r.event_id)));
      lakeCounts = { rows: Number(t!.n), distinct: Number(t!.d), duplicates: Number(t!.n) - Number(t!.d), missing: valid.filter((e) => !present.has(e.eventId)).length };
      const outcome: FaultOutcome = { fault: name, rows: rows.length, valid: valid.length, eventsTopic, lake: lakeCounts, cdcDuplicates, seconds: 0 };
      if (eventsTopic.duplicates > 0 || eventsTopic.missing > 0 || eventsTopic.invalid > 0 || lakeCounts.duplicates > 0 || lakeCounts.missing > 0) {
        throw Object.assign(new Error(`${name}: not exactly once: ${JSON.stringify(outcome)}`), { outcome });
      }
      await verifyLake(lake, valid);
      // The report of the real processor over this lake equals DuckDB's.
      const agents = [...new Set(valid.map((e) => e.agentId))].sort();
      const expected = reportRows(await lake.query(commissionReportSql('LAKE', REPORT_MONTH, agents)), REPORT_MONTH);
      const actual = await this.report(name, agents);
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        throw new Error(`${name}: the report differs from DuckDB over the lake:\nreport ${JSON.stringify(actual)}\nduckdb ${JSON.stringify(expected)}`);
      }
      if (expected.length === 0) throw new Error(`${name}: no agent has an event in ${REPORT_MONTH}: the report comparison proves nothing`);
      return outcome;
    } finally {
      lake.close();
    }
  }

  /** The month's report for these agents from the real report processor (REST shim, CSV), as its cells. */
  private async report(name: string, agents: string[]): Promise<string[][]> {
    const t = `test.server-faults.${this.run}.reports`;
    const reports = await startReports({
      env: {
        ...process.env,
        SLUICE_LOG_LEVEL: 'fatal',
        SLUICE_REPORTS_API_KEY: API_KEY,
        SLUICE_REPORTS_REQUESTS_TOPIC: `${t}.requests`,
        SLUICE_REPORTS_STATUS_TOPIC: `${t}.status`,
        SLUICE_REPORTS_DLQ_TOPIC: `${t}.dlq`,
        SLUICE_REPORTS_GROUP_ID: `test-server-faults-reports-${this.run}`,
        SLUICE_REPORTS_LAKE_PREFIX: this.prefix,
        SLUICE_REPORTS_REPORTS_PREFIX: `${this.prefix}reports/`,
        SLUICE_REPORTS_HTTP_PORT: '0',
      },
    });
    try {
      const id = `server-faults-${this.run}-${name.replace(/[^a-z0-9]+/g, '-')}`;
      const headers = { 'content-type': 'application/json', 'x-api-key': API_KEY };
      const post = await fetch(`${reports.url}/reports/generate`, { method: 'POST', headers, body: JSON.stringify({ request_id: id, report_type: 'agent_commissions', month: REPORT_MONTH, agent_ids: agents, format: 'csv' }) });
      if (post.status !== 202) throw new Error(`${name}: POST /reports/generate answered ${post.status}: ${await post.text()}`);
      const status = await eventually(async () => {
        const s = (await (await fetch(`${reports.url}/reports/${id}`, { headers })).json()) as { state: string; download?: { url: string }; error?: unknown };
        return s.state === 'succeeded' || s.state === 'failed' ? s : undefined;
      }, 120_000, `report ${id}`);
      if (status.state !== 'succeeded' || !status.download) throw new Error(`${name}: report ${id} failed: ${JSON.stringify(status.error)}`);
      const [header, ...cells] = parseCsv(await (await fetch(status.download.url)).text());
      if (JSON.stringify(header) !== JSON.stringify(REPORT_HEADER)) throw new Error(`${name}: report header ${JSON.stringify(header)}`);
      return cells;
    } finally {
      await reports.stop();
    }
  }

  async close(): Promise<void> {
    await this.writer.stop();
    await this.pool.end().catch(() => undefined);
    const code = await this.normalizer.kill('SIGTERM');
    await this.runner.kill('SIGTERM');
    if (code !== 0 && code !== null) this.log(`the normalizer exited ${code} on SIGTERM; see ${this.normalizer.log}`);
  }

  /** SIGKILLs what is still running (after a failure). */
  async abort(): Promise<void> {
    await this.writer.stop().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
    await this.normalizer?.kill('SIGKILL');
    await this.runner?.kill('SIGKILL');
  }
}

/** The records of a (non-transactional) topic from `from` up to its end offsets now. */
async function readRange(kafka: Kafka, admin: Admin, topic: string, from: { partition: number; offset: string }[]): Promise<KafkaMessage[]> {
  const ends = await admin.fetchTopicOffsets(topic);
  const left = new Map<number, bigint>();
  for (const e of ends) {
    const start = BigInt(from.find((f) => f.partition === e.partition)?.offset ?? e.low);
    if (BigInt(e.high) > start) left.set(e.partition, BigInt(e.high));
  }
  if (left.size === 0) return [];
  const groupId = `test-read-${randomUUID()}`;
  await admin.setOffsets({ groupId, topic, partitions: from });
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250 });
  const seen: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${topic}: not read to its end within 120 s (${seen.length} records)`)), 120_000);
      void consumer
        .run({
          eachBatch: async ({ batch }) => {
            seen.push(...batch.messages);
            const end = left.get(batch.partition);
            if (end !== undefined && BigInt(batch.lastOffset()) + 1n >= end) left.delete(batch.partition);
            if (left.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    return seen;
  } finally {
    await consumer.disconnect();
  }
}
