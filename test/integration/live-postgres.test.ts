import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { changelogTopicName } from '../../processors/core/state/changelog.js';
import { buildDist } from '../support/build.js';
import { ensureCdcConnector, ensureCdcTopics } from '../support/cdc.js';
import { freePort, waitDrained } from '../support/export-harness.js';
import { collect } from '../support/kafka.js';
import { deleteMonths, insertStaging, monthsOf, shiftEvents, yearShift } from '../support/live-postgres.js';
import { cli } from '../support/ops-lake.js';
import { exportUntilCommitted, generateMonth, type MonthEvent } from '../support/reports-lake.js';
import { eventually, testSettings } from '../support/servers.js';
import { SluiceProcess } from '../support/sluice-process.js';

/**
 * `sluice live` from the Postgres commit (issue 14 step 5): the report tests' generated
 * month (duplicates, late events, month boundaries in several zones, sums past 2^53 and
 * 2^63, half-even ties, the tier edge) inserted into staging.agent_events, streamed by the
 * shipped Debezium connector, normalized by `sluice normalizer` (its durable dedupe off, so
 * every re-inserted copy reaches live) and counted by two `sluice live` instances, one of
 * which is SIGKILLed three times while the rows stream, the other joining mid-stream (a
 * rebalance moves partitions and their state). The generator's repeats are re-inserts
 * after a prune (the row deleted, then inserted again with the same event_id); one row is
 * UPDATEd (the normalizer dead-letters it; its counted values stand). Then the real export
 * writes the lake and `sluice reconcile --month` must find no difference, against the
 * batch report and against the staging table's own sums, for every month of the events.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const base = `test.livepg.${run}`;
const eventsTopic = `${base}.events`;
const outputTopic = `${base}.out`;
const normalizerGroup = `test-livepg-norm-${run}`;
const liveGroup = `test-livepg-live-${run}`;
const CDC_TOPIC = 'sluice.staging.agent_events';
const API_KEY = `live-pg-test-key-${run}-0123456789`;
const kafka: Kafka = createKafka(settings.kafka, { region: settings.s3.region });
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-live-pg-'));
const pool = createPool(settings.database.url, { max: 2 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const processes: SluiceProcess[] = [];
const events = (() => {
  const m = generateMonth(run, 600);
  return { all: shiftEvents([...m.phase1, ...m.phase2], yearShift(run)) };
})();
const months = monthsOf(events.all);
let admin: Admin;
/** Records on the CDC topic when the test began (its sum of partition ends). */
let cdcStart = 0n;

function normalizer(port: number): SluiceProcess {
  const p = new SluiceProcess(`livepg-${run}-normalizer`, ['normalizer'], {
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_NORMALIZER_GROUP_ID: normalizerGroup,
    SLUICE_NORMALIZER_INSTANCE_ID: 'n0',
    SLUICE_NORMALIZER_CDC_TOPIC: CDC_TOPIC,
    SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
    SLUICE_NORMALIZER_DLQ_TOPIC: `${base}.normalizer-dlq`,
    SLUICE_NORMALIZER_DEDUPE: 'false',
    SLUICE_NORMALIZER_STATE_DIR: join(stateDir, 'normalizer'),
    SLUICE_NORMALIZER_HTTP_PORT: String(port),
  }, port);
  processes.push(p);
  return p;
}

function live(instance: string, port: number): SluiceProcess {
  const p = new SluiceProcess(`livepg-${run}-${instance}`, ['live'], {
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_LIVE_EVENTS_TOPIC: eventsTopic,
    SLUICE_LIVE_OUTPUT_TOPIC: outputTopic,
    SLUICE_LIVE_DLQ_TOPIC: `${base}.live-dlq`,
    SLUICE_LIVE_GROUP_ID: liveGroup,
    SLUICE_LIVE_INSTANCE_ID: instance,
    SLUICE_LIVE_STATE_DIR: stateDir,
    SLUICE_LIVE_HTTP_PORT: String(port),
    SLUICE_LIVE_API_KEY: API_KEY,
    SLUICE_LIVE_SESSION_TIMEOUT_MS: '6000',
    SLUICE_LIVE_MAX_BATCH_RECORDS: '100',
    // The events are centuries ahead (years ahead, see live-postgres.ts): a window wide enough for them.
    SLUICE_LIVE_OPEN_MONTHS: '1200',
  }, port);
  processes.push(p);
  return p;
}

async function ready(p: SluiceProcess, timeoutMs = 90_000): Promise<void> {
  await eventually(async () => {
    if (p.exitCode !== null) throw new Error(`${p.name} exited ${p.exitCode}; see ${p.log}`);
    return (await p.readiness())?.status === 200 ? true : undefined;
  }, timeoutMs, `${p.name} ready`);
}

/** Inserts the chunk: first copies as new rows; a copy of an event already in staging is a re-insert after a prune. */
const inserted = new Set<string>();
let reinserts = 0;
async function commitChunk(chunk: readonly MonthEvent[]): Promise<void> {
  const fresh: MonthEvent[] = [];
  const again: MonthEvent[] = [];
  for (const e of chunk) {
    if (inserted.has(e.eventId)) again.push(e);
    else {
      inserted.add(e.eventId);
      fresh.push(e);
    }
  }
  await insertStaging(pool, fresh);
  const pruned = [...new Map(again.map((e) => [e.eventId, e])).values()];
  if (pruned.length === 0) return;
  await pool.query('DELETE FROM staging.agent_events WHERE event_id = ANY($1::uuid[])', [pruned.map((e) => e.eventId)]);
  await insertStaging(pool, pruned);
  reinserts += pruned.length;
}

beforeAll(async () => {
  await ensureCdcTopics(kafka, settings);
  await ensureCdcConnector(settings);
  buildDist('processors/cli/main.js');
  admin = kafka.admin();
  await admin.connect();
  // Rows an earlier run with the same shift left; then this run's normalizer starts at the
  // CDC topic's end (it only sees this run's changes).
  await deleteMonths(pool, months);
  await sleep(1000);
  const ends = await admin.fetchTopicOffsets(CDC_TOPIC);
  cdcStart = ends.reduce((n, e) => n + BigInt(e.high), 0n);
  await admin.setOffsets({ groupId: normalizerGroup, topic: CDC_TOPIC, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) });
});

afterAll(async () => {
  for (const p of processes) await p.kill('SIGKILL');
  await deleteMonths(pool, months).catch(() => undefined);
  await pool.end();
  const topics = [eventsTopic, outputTopic, `${base}.normalizer-dlq`, `${base}.live-dlq`, `${base}.export-dlq`, changelogTopicName(liveGroup, 'live'), changelogTopicName(normalizerGroup, 'dedupe')];
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.deleteGroups([normalizerGroup, liveGroup]).catch(() => undefined);
  await admin.disconnect();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('sluice live from Postgres', () => {
  it('counts the generated month from staging exactly once through three SIGKILLs and a rebalance: reconcile finds no difference in any month', async () => {
    expect(months.length).toBeGreaterThanOrEqual(3); // the month and both neighbours (boundary events)
    const n = normalizer(await freePort()).start();
    await ready(n);
    const chunks = 6;
    const all = events.all;
    const chunk = (k: number) => all.slice(Math.floor((all.length * k) / chunks), Math.floor((all.length * (k + 1)) / chunks));

    const a = live('a', await freePort()).start();
    await ready(a);
    await commitChunk(chunk(0));
    await sleep(2500);
    expect(await a.kill('SIGKILL')).toBe(128); // 1st SIGKILL, while rows stream
    a.start();
    await commitChunk(chunk(1));
    await ready(a);
    const b = live('b', await freePort()).start(); // the rebalance: partitions move to b with their state
    await commitChunk(chunk(2));
    await ready(b);
    await sleep(1500);
    expect(await a.kill('SIGKILL')).toBe(128); // 2nd
    await commitChunk(chunk(3));
    // An UPDATE of a streamed row: rows are immutable facts; the normalizer dead-letters it.
    const updated = chunk(0)[0]!;
    await pool.query(`UPDATE staging.agent_events SET metadata = '{"edited": true}' WHERE event_id = $1`, [updated.eventId]);
    a.start();
    await sleep(2500);
    expect(await b.kill('SIGKILL')).toBe(128); // 3rd
    await commitChunk(chunk(4));
    b.start();
    await commitChunk(chunk(5));
    await ready(a);
    await ready(b);
    expect(reinserts).toBeGreaterThan(50);

    // Every change reached the CDC topic (an insert each, a delete and an insert each
    // re-insert, the update), the normalizer and live committed all of it.
    const changes = BigInt(inserted.size + 2 * reinserts + 1);
    await eventually(async () => ((await admin.fetchTopicOffsets(CDC_TOPIC)).reduce((n, e) => n + BigInt(e.high), 0n) - cdcStart >= changes ? true : undefined), 180_000, `Debezium streamed the ${changes} changes`);
    await waitDrained(admin, normalizerGroup, CDC_TOPIC, 120_000);
    await waitDrained(admin, liveGroup, eventsTopic, 120_000);
    const dead = await collect(kafka, `${base}.normalizer-dlq`, (ms) => ms.some((m) => m.headers?.['sluice.dlq.reason']?.toString() === 'immutable_event_mutated'), 30_000);
    // Only the UPDATE is dead-lettered: every inserted row is a valid event.
    expect(dead.map((m) => `${m.headers?.['sluice.dlq.reason']?.toString()}: ${m.headers?.['sluice.dlq.error']?.toString().slice(0, 160)}`).slice(0, 5)).toEqual([expect.stringMatching(/^immutable_event_mutated: /)]);

    // The batch path: the real export writes the lake; reconcile compares live, the batch
    // report and staging, cell by cell, for every month the events fall in.
    const prefix = `test-live-pg/${run}/`;
    await exportUntilCommitted(kafka, { topic: eventsTopic, dlqTopic: `${base}.export-dlq`, prefix, group: `${liveGroup}-export` }, 120_000);
    const env = { SLUICE_LIVE_OUTPUT_TOPIC: outputTopic, SLUICE_REPORTS_LAKE_PREFIX: prefix, SLUICE_LOG_LEVEL: 'warn' };
    for (const month of months) {
      const reconciled = await cli(['reconcile', '--month', month], env, 120_000);
      expect(reconciled.stdout + reconciled.stderr, month).toContain('no difference');
      expect(reconciled.code, month).toBe(0);
      expect(reconciled.stdout).toMatch(new RegExp(`reconcile ${month}: live [1-9]\\d* agents, batch report [1-9]\\d* agents, staging [1-9]\\d* agents`));
    }
  }, 600_000);
});
