import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import type pg from 'pg';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { changelogTopicName } from '../../processors/core/state/changelog.js';
import { buildDist } from './build.js';
import { ensureCdcConnector, ensureCdcTopics } from './cdc.js';
import { freePort, waitDrained } from './export-harness.js';
import { collect } from './kafka.js';
import { deleteMonths, insertStaging, monthsOf, shiftEvents, yearShift } from './live-postgres.js';
import { cli, type CliResult } from './ops-lake.js';
import { exportUntilCommitted, generateMonth, type MonthEvent } from './reports-lake.js';
import { eventually } from './servers.js';
import { SluiceProcess } from './sluice-process.js';

/**
 * `sluice live` from the Postgres commit under faults (issue 14 step 5), shared by the CI
 * run (test/integration/live-postgres.test.ts, a few thousand events) and the soak
 * (test/soak/live-soak.test.ts, a million): the report tests' generated month (duplicates,
 * late events, month boundaries in several zones, sums past 2^53 and 2^63, half-even ties,
 * the tier edge) inserted into staging.agent_events, streamed by the shipped Debezium
 * connector, normalized by `sluice normalizer` (its durable dedupe off, so every
 * re-inserted copy reaches live) and counted by two `sluice live` instances, one of which
 * is SIGKILLed three times while the rows stream, the other joining mid-stream (a rebalance
 * moves partitions and their state). The generator's repeats are re-inserts after a prune
 * (the row deleted, then inserted again with the same event_id); one row is UPDATEd (the
 * normalizer dead-letters it; its counted values stand). Then the real export writes the
 * lake and `sluice reconcile --month` runs for every month of the events.
 */
export interface LiveFaultRunOptions {
  /** Run id (8+ hex characters): names topics and groups, seeds the generator, picks the year. */
  run: string;
  /** Names of topics, groups and process logs, e.g. `livepg`. */
  label: string;
  /** The generator's bulk events (reports-lake generateMonth). */
  bulk: number;
  /** Most rows in one INSERT (one Postgres transaction, one Debezium batch of changes). */
  rowsPerInsert?: number;
  /** Multiplies every wait for the pipeline (the soak's million rows take longer). */
  waitScale?: number;
  /** Progress lines (the soak runs for many minutes). */
  log?: (line: string) => void;
}

const CDC_TOPIC = 'sluice.staging.agent_events';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LiveFaultRun {
  readonly events: MonthEvent[];
  readonly months: string[];
  readonly eventsTopic: string;
  readonly outputTopic: string;
  readonly normalizerDlq: string;
  private readonly base: string;
  private readonly normalizerGroup: string;
  private readonly liveGroup: string;
  private readonly apiKey: string;
  private readonly kafka: Kafka;
  private readonly pool: pg.Pool;
  private readonly stateDir: string;
  private readonly processes: SluiceProcess[] = [];
  private readonly inserted = new Set<string>();
  private readonly scale: number;
  private readonly log: (line: string) => void;
  private admin: Admin | undefined;
  /** Records on the CDC topic when the run began (its sum of partition ends). */
  private cdcStart = 0n;
  /** Rows deleted and inserted again (a re-insert after a prune). */
  reinserts = 0;

  constructor(
    private readonly settings: CoreSettings,
    private readonly o: LiveFaultRunOptions,
  ) {
    const { run, label } = o;
    this.base = `test.${label}.${run}`;
    this.eventsTopic = `${this.base}.events`;
    this.outputTopic = `${this.base}.out`;
    this.normalizerDlq = `${this.base}.normalizer-dlq`;
    this.normalizerGroup = `test-${label}-norm-${run}`;
    this.liveGroup = `test-${label}-live-${run}`;
    this.apiKey = `${label}-test-key-${run}-0123456789`;
    this.kafka = createKafka(settings.kafka, { region: settings.s3.region });
    this.pool = createPool(settings.database.url, { max: 2 });
    this.stateDir = mkdtempSync(join(tmpdir(), `sluice-${label}-`));
    this.scale = o.waitScale ?? 1;
    this.log = o.log ?? (() => undefined);
    const m = generateMonth(run, o.bulk);
    this.events = shiftEvents([...m.phase1, ...m.phase2], yearShift(run));
    this.months = monthsOf(this.events);
  }

  /** The CDC connector and topics, the processors' build, and a normalizer group at the CDC topic's end. */
  async setUp(): Promise<void> {
    await ensureCdcTopics(this.kafka, this.settings);
    await ensureCdcConnector(this.settings);
    buildDist('processors/cli/main.js');
    this.admin = this.kafka.admin();
    await this.admin.connect();
    // Rows an earlier run with the same shift left; then this run's normalizer starts at the
    // CDC topic's end (it only sees this run's changes).
    await deleteMonths(this.pool, this.months);
    await sleep(1000);
    const ends = await this.admin.fetchTopicOffsets(CDC_TOPIC);
    this.cdcStart = ends.reduce((n, e) => n + BigInt(e.high), 0n);
    await this.admin.setOffsets({ groupId: this.normalizerGroup, topic: CDC_TOPIC, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) });
  }

  async tearDown(): Promise<void> {
    for (const p of this.processes) await p.kill('SIGKILL');
    await deleteMonths(this.pool, this.months).catch(() => undefined);
    await this.pool.end();
    const b = this.base;
    const topics = [this.eventsTopic, this.outputTopic, this.normalizerDlq, `${b}.live-dlq`, `${b}.export-dlq`, changelogTopicName(this.liveGroup, 'live'), changelogTopicName(this.normalizerGroup, 'dedupe')];
    if (this.admin) {
      await this.admin.deleteTopics({ topics }).catch(() => undefined);
      await this.admin.deleteGroups([this.normalizerGroup, this.liveGroup]).catch(() => undefined);
      await this.admin.disconnect();
    }
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  private normalizer(port: number): SluiceProcess {
    const p = new SluiceProcess(`${this.o.label}-${this.o.run}-normalizer`, ['normalizer'], {
      SLUICE_LOG_LEVEL: 'info',
      SLUICE_NORMALIZER_GROUP_ID: this.normalizerGroup,
      SLUICE_NORMALIZER_INSTANCE_ID: 'n0',
      SLUICE_NORMALIZER_CDC_TOPIC: CDC_TOPIC,
      SLUICE_NORMALIZER_EVENTS_TOPIC: this.eventsTopic,
      SLUICE_NORMALIZER_DLQ_TOPIC: this.normalizerDlq,
      SLUICE_NORMALIZER_DEDUPE: 'false',
      SLUICE_NORMALIZER_STATE_DIR: join(this.stateDir, 'normalizer'),
      SLUICE_NORMALIZER_HTTP_PORT: String(port),
    }, port);
    this.processes.push(p);
    return p;
  }

  private live(instance: string, port: number): SluiceProcess {
    const p = new SluiceProcess(`${this.o.label}-${this.o.run}-${instance}`, ['live'], {
      SLUICE_LOG_LEVEL: 'info',
      SLUICE_LIVE_EVENTS_TOPIC: this.eventsTopic,
      SLUICE_LIVE_OUTPUT_TOPIC: this.outputTopic,
      SLUICE_LIVE_DLQ_TOPIC: `${this.base}.live-dlq`,
      SLUICE_LIVE_GROUP_ID: this.liveGroup,
      SLUICE_LIVE_INSTANCE_ID: instance,
      SLUICE_LIVE_STATE_DIR: this.stateDir,
      SLUICE_LIVE_HTTP_PORT: String(port),
      SLUICE_LIVE_API_KEY: this.apiKey,
      SLUICE_LIVE_SESSION_TIMEOUT_MS: '6000',
      SLUICE_LIVE_MAX_BATCH_RECORDS: '100',
      // The events are centuries ahead (years ahead, see live-postgres.ts): a window wide enough for them.
      SLUICE_LIVE_OPEN_MONTHS: '1200',
    }, port);
    this.processes.push(p);
    return p;
  }

  private async ready(p: SluiceProcess, timeoutMs = 90_000): Promise<void> {
    await eventually(async () => {
      if (p.exitCode !== null) throw new Error(`${p.name} exited ${p.exitCode}; see ${p.log}`);
      return (await p.readiness())?.status === 200 ? true : undefined;
    }, timeoutMs * this.scale, `${p.name} ready`);
  }

  private async sigkill(p: SluiceProcess): Promise<void> {
    const code = await p.kill('SIGKILL');
    if (code !== 128) throw new Error(`${p.name} was to be SIGKILLed (exit 128), exited ${code}`);
  }

  /** Inserts the chunk: first copies as new rows; a copy of an event already in staging is a re-insert after a prune. */
  private async commitChunk(chunk: readonly MonthEvent[]): Promise<void> {
    const fresh: MonthEvent[] = [];
    const again: MonthEvent[] = [];
    for (const e of chunk) {
      if (this.inserted.has(e.eventId)) again.push(e);
      else {
        this.inserted.add(e.eventId);
        fresh.push(e);
      }
    }
    const size = this.o.rowsPerInsert ?? Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < fresh.length; i += size) await insertStaging(this.pool, fresh.slice(i, i + size));
    const pruned = [...new Map(again.map((e) => [e.eventId, e])).values()];
    if (pruned.length === 0) return;
    await this.pool.query('DELETE FROM staging.agent_events WHERE event_id = ANY($1::uuid[])', [pruned.map((e) => e.eventId)]);
    await insertStaging(this.pool, pruned);
    this.reinserts += pruned.length;
  }

  /**
   * The rows in six chunks while the faults happen: live `a` SIGKILLed after the first,
   * `b` joining (a rebalance), `a` SIGKILLed again, an UPDATE, `b` SIGKILLed; then both
   * running. Resolves once every chunk is committed and both instances are ready.
   */
  async streamWithFaults(): Promise<void> {
    const n = this.normalizer(await freePort()).start();
    await this.ready(n);
    const chunks = 6;
    const all = this.events;
    const chunk = (k: number) => all.slice(Math.floor((all.length * k) / chunks), Math.floor((all.length * (k + 1)) / chunks));
    const step = async (k: number) => {
      await this.commitChunk(chunk(k));
      this.log(`chunk ${k + 1}/${chunks} committed (${this.inserted.size} rows, ${this.reinserts} re-inserts)`);
    };

    const a = this.live('a', await freePort()).start();
    await this.ready(a);
    await step(0);
    await sleep(2500);
    await this.sigkill(a); // 1st SIGKILL, while rows stream
    a.start();
    await step(1);
    await this.ready(a);
    const b = this.live('b', await freePort()).start(); // the rebalance: partitions move to b with their state
    await step(2);
    await this.ready(b);
    await sleep(1500);
    await this.sigkill(a); // 2nd
    await step(3);
    // An UPDATE of a streamed row: rows are immutable facts; the normalizer dead-letters it.
    const updated = chunk(0)[0]!;
    await this.pool.query(`UPDATE staging.agent_events SET metadata = '{"edited": true}' WHERE event_id = $1`, [updated.eventId]);
    a.start();
    await sleep(2500);
    await this.sigkill(b); // 3rd
    await step(4);
    b.start();
    await step(5);
    await this.ready(a);
    await this.ready(b);
  }

  /**
   * Every change reached the CDC topic (an insert each, a delete and an insert each
   * re-insert, the update), the normalizer and live committed all of it. Resolves with the
   * normalizer's dead letters (reason: error, the first five) once the UPDATE's is there.
   */
  async drained(): Promise<string[]> {
    const admin = this.admin!;
    const changes = BigInt(this.inserted.size + 2 * this.reinserts + 1);
    await eventually(async () => ((await admin.fetchTopicOffsets(CDC_TOPIC)).reduce((n, e) => n + BigInt(e.high), 0n) - this.cdcStart >= changes ? true : undefined), 180_000 * this.scale, `Debezium streamed the ${changes} changes`);
    this.log(`Debezium streamed the ${changes} changes`);
    await waitDrained(admin, this.normalizerGroup, CDC_TOPIC, 120_000 * this.scale);
    this.log('the normalizer committed the CDC topic end');
    await waitDrained(admin, this.liveGroup, this.eventsTopic, 120_000 * this.scale);
    this.log('live committed the events topic end');
    const dead = await collect(this.kafka, this.normalizerDlq, (ms) => ms.some((m) => m.headers?.['sluice.dlq.reason']?.toString() === 'immutable_event_mutated'), 30_000 * this.scale);
    return dead.map((m) => `${m.headers?.['sluice.dlq.reason']?.toString()}: ${m.headers?.['sluice.dlq.error']?.toString().slice(0, 160)}`).slice(0, 5);
  }

  /**
   * After `streamWithFaults`: drains, exports and reconciles, and lists what is wrong (empty:
   * the generator re-inserted rows after a prune, only the UPDATE was dead-lettered, and
   * `sluice reconcile` found no difference in any month, each side with agents).
   */
  async problems(): Promise<string[]> {
    const out: string[] = [];
    if (this.reinserts <= 50) out.push(`only ${this.reinserts} re-inserts after a prune (the run needs more than 50)`);
    const dead = await this.drained();
    if (dead.length !== 1 || !dead[0]!.startsWith('immutable_event_mutated: ')) out.push(`dead letters other than the UPDATE's: ${JSON.stringify(dead)}`);
    for (const { month, result } of await this.reconcile()) {
      const summary = new RegExp(`reconcile ${month}: live [1-9]\\d* agents, batch report [1-9]\\d* agents, staging [1-9]\\d* agents`);
      if (result.code !== 0 || !result.stdout.includes('no difference') || !summary.test(result.stdout)) out.push(`reconcile ${month} exited ${result.code}:\n${result.stdout}${result.stderr}`);
    }
    return out;
  }

  /**
   * The batch path: the real export writes the lake; `sluice reconcile` compares live, the
   * batch report and staging, cell by cell, for every month the events fall in.
   */
  async reconcile(): Promise<{ month: string; result: CliResult }[]> {
    const prefix = `test-live-pg/${this.o.run}/`;
    await exportUntilCommitted(this.kafka, { topic: this.eventsTopic, dlqTopic: `${this.base}.export-dlq`, prefix, group: `${this.liveGroup}-export` }, 120_000 * this.scale);
    this.log('the export committed the events topic end');
    const env = { SLUICE_LIVE_OUTPUT_TOPIC: this.outputTopic, SLUICE_REPORTS_LAKE_PREFIX: prefix, SLUICE_LOG_LEVEL: 'warn' };
    const out: { month: string; result: CliResult }[] = [];
    for (const month of this.months) {
      out.push({ month, result: await cli(['reconcile', '--month', month], env, 120_000 * this.scale) });
      this.log(`reconcile ${month}: exit ${out[out.length - 1]!.result.code}`);
    }
    return out;
  }
}
