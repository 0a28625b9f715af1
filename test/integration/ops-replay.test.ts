import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../processors/core/s3/client.js';
import { deletePrefix, listObjects } from '../../processors/core/s3/objects.js';
import { startExport, type RunningExport } from '../../processors/export/export.js';
import { generateReport } from '../../processors/reports/generate.js';
import { loadRules } from '../../processors/reports/rules.js';
import {
  AgentEventProducer,
  cli,
  committedOffsets,
  endOffsets,
  connectLakeStack,
  expectedLakeValues,
  lakePipelineFile,
  opsEvent,
  readLake,
  waitCaughtUp,
  type LakeContents,
} from '../support/ops-lake.js';
import type { ParquetReader } from '../support/parquet-reader.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 6, replay by offset reset, end to end on the real stack: the real export runner
 * fills a lake prefix of the test's own from a topic of its own; `sluice replay` (the CLI, as
 * an operator runs it) shows the plan without changing anything, is refused while a runner
 * is a member, and after the reset and a re-export the lake holds the same set of
 * (event_id, values) once each and the month's report is byte for byte the same. A
 * mid-stream --to-offset replay on some partitions leaves the lake exact too, and
 * --to-sink-prefix fills a shadow prefix with the same set while the live one stays as it was.
 */

const settings = testSettings();
const id = randomUUID().slice(0, 8);
const topic = `test.ops-replay.${id}`;
const dlq = `${topic}.dlq`;
const root = `test-ops-replay-${id}/`;
const prefix = `${root}agent_events/`;
const group = `test-ops-replay-${id}`;
const N = 3000;
const env = { ...process.env, SLUICE_LAKE_CONSUMER_GROUP: group, SLUICE_EXPORT_HTTP_PORT: '0', SLUICE_LOG_LEVEL: 'warn' };
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const events = Array.from({ length: N }, (_, i) => opsEvent(id, i));
const expected = new Map(events.map((e) => [e.eventId, expectedLakeValues(e)]));

let kafka: Kafka;
let admin: Admin;
let reader: ParquetReader;
let running: RunningExport | undefined;
let file: string;
/** When each wave of the first export was produced (ms). */
const waveStarts: number[] = [];

async function exportToEnd(files: string[], groupId: string): Promise<void> {
  running = await startExport({ files, env });
  try {
    await waitCaughtUp(admin, groupId, topic, 60_000);
  } finally {
    await running.stop();
    running = undefined;
  }
}

async function monthReport(tag: string): Promise<string> {
  const result = await generateReport(
    { request_id: `ops-replay-${id}-${tag}`, report_type: 'agent_commissions', month: '2026-10', format: 'csv', requested_at: new Date().toISOString() },
    { s3, bucket, lakePrefix: prefix, reportsPrefix: `${root}reports/`, currency: 'USD', rules: loadRules() },
  );
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: result.key }));
  return object.Body!.transformToString('utf8');
}

function expectExact(lake: LakeContents): void {
  expect(lake.duplicates).toEqual([]);
  expect(lake.rows).toBe(N);
  expect(lake.values.size).toBe(N);
  let mismatches = 0;
  for (const [eventId, values] of expected) if (lake.values.get(eventId) !== values) mismatches++;
  expect(mismatches).toBe(0);
}

/** The plan lines of `sluice replay`: partition -> { committed, target }. */
function planOf(stdout: string): Map<number, { committed: string; target: bigint; movedBack: boolean }> {
  const plan = new Map<number, { committed: string; target: bigint; movedBack: boolean }>();
  for (const line of stdout.split('\n')) {
    const m = /^\s+(\d+)\s+(\S+)\s+(\d+)\s+(-?\d+)(.*)$/.exec(line);
    if (m) plan.set(Number(m[1]), { committed: m[2]!, target: BigInt(m[3]!), movedBack: /moved back/.test(m[5]!) });
  }
  return plan;
}

const replay = (args: string[]) => cli(['replay', '--group', group, '--topic', topic, '--pipeline', file, ...args], env, 90_000);

beforeAll(async () => {
  ({ kafka, admin, reader } = await connectLakeStack(settings));
  file = lakePipelineFile({ name: `ops-replay-${id}`, topic, dlq, prefix, period: '300ms', count: 250 });
});

afterAll(async () => {
  await running?.stop();
  await deletePrefix(s3, bucket, root).catch(() => undefined);
  await deletePrefix(s3, bucket, `shadow/${root}`).catch(() => undefined);
  await admin?.deleteTopics({ topics: [topic, dlq, `${dlq}.shadow`] }).catch(() => undefined);
  await admin?.disconnect();
  reader?.close();
});

describe('sluice replay', () => {
  let lakeBefore: LakeContents;
  let reportBefore: string;

  it('replays from earliest: dry run changes nothing, refused with a member, and after the re-export the lake and the report are the same', async () => {
    const producer = new AgentEventProducer(kafka, settings, topic);
    await producer.setUp(3);
    // The first export sees the events arrive in waves, so its files are cut by time; the
    // re-export reads them all at once and cuts every 250 records: other keys, and any object
    // of the first run left beside the new ones would show as duplicate rows.
    running = await startExport({ files: [file], env });
    for (let i = 0; i < N; i += 500) {
      waveStarts.push(Date.now());
      await producer.send(events.slice(i, i + 500).map((e) => producer.message(e)));
      await new Promise((r) => setTimeout(r, 700));
    }
    await waitCaughtUp(admin, group, topic, 60_000);

    lakeBefore = await readLake(s3, bucket, prefix, reader);
    expectExact(lakeBefore);
    reportBefore = await monthReport('before');
    const csv = reportBefore.trim().split('\n');
    expect(csv[0]).toBe('agent_id,month,events,customers_onboarded,deposits_minor,withdrawals_minor,investments_minor,net_inflow_minor,commission_minor,currency');
    expect(csv.length - 1).toBe(23);
    const octoberEvents = events.filter((e) => e.occurredAtMicros < BigInt(Date.UTC(2026, 10, 1)) * 1000n).length;
    expect(csv.slice(1).reduce((n, line) => n + Number(line.split(',')[2]), 0)).toBe(octoberEvents);
    const objectsBefore = await listObjects(s3, bucket, prefix);
    const offsetsBefore = await committedOffsets(admin, group, topic);
    const ends = await endOffsets(admin, topic);
    expect(Object.fromEntries(offsetsBefore)).toEqual(Object.fromEntries(ends));

    // A runner is a member: --execute is refused with a message that says what to do, and nothing changed.
    const refused = await replay(['--to-earliest', '--execute']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`consumer group ${group.replace(/\./g, '\\.')} has 1 active member: stop the pipeline's runners first`));
    expect(await listObjects(s3, bucket, prefix)).toEqual(objectsBefore);
    expect(await committedOffsets(admin, group, topic)).toEqual(offsetsBefore);
    await running.stop();
    running = undefined;
    // The final flush of SIGTERM had nothing left: the lake is what it was.
    expect(await listObjects(s3, bucket, prefix)).toEqual(objectsBefore);

    // The dry run shows the plan per partition and changes nothing.
    const dry = await replay(['--to-earliest', '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    const plan = planOf(dry.stdout);
    expect([...plan.keys()].sort()).toEqual([0, 1, 2]);
    for (const [p, row] of plan) {
      expect(row.committed).toBe(offsetsBefore.get(p));
      expect(row.target).toBe(0n);
    }
    expect(dry.stdout).toContain(`${objectsBefore.length} objects of ${file} hold records at or after the targets`);
    expect(dry.stdout).toContain('dry run: nothing changed');
    expect(await listObjects(s3, bucket, prefix)).toEqual(objectsBefore);
    expect(await committedOffsets(admin, group, topic)).toEqual(offsetsBefore);

    // Without members it runs: the group starts at 0 and the objects it will write again are gone.
    const done = await replay(['--to-earliest', '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toContain(`done: group ${group} now starts at the targets`);
    expect(Object.fromEntries(await committedOffsets(admin, group, topic))).toEqual({ 0: '0', 1: '0', 2: '0' });
    expect(await listObjects(s3, bucket, prefix)).toEqual([]);

    await exportToEnd([file], group);
    const lakeAfter = await readLake(s3, bucket, prefix, reader);
    expectExact(lakeAfter);
    expect(lakeAfter.values).toEqual(lakeBefore.values);
    // The re-export cut its files elsewhere (the test would prove little otherwise).
    expect(lakeAfter.keys).not.toEqual(lakeBefore.keys);
    expect(await monthReport('after-earliest')).toBe(reportBefore);
  }, 180_000);

  it('replays mid-stream --to-offset on some partitions: targets move back to file starts, the lake stays exact', async () => {
    expect(lakeBefore, 'the first test fills the lake').toBeDefined();
    const ends = await endOffsets(admin, topic);
    const objects = await listObjects(s3, bucket, prefix);
    const meta = new Map<string, { partition: number; first: bigint; last: bigint }>();
    for (const o of objects) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: o.key }));
      const partition = Number(/\+(\d+)\+\d+\.parquet$/.exec(o.key)![1]);
      meta.set(o.key, { partition, first: BigInt(head.Metadata!['sluice-first-offset']!), last: BigInt(head.Metadata!['sluice-last-offset']!) });
    }
    // An offset inside a file of partitions 0 and 1: some file starts before it and ends after it.
    const cut = (partition: number) => [...meta.values()].filter((m) => m.partition === partition).sort((a, b) => Number(a.first - b.first)).find((m) => m.first + 2n <= m.last && m.first > 0n);
    const spanning = [cut(0), cut(1)];
    expect(spanning.every((s) => s !== undefined), 'partitions 0 and 1 have a file to cut').toBe(true);
    const offset = spanning.reduce((min, s) => (s!.first + 1n < min ? s!.first + 1n : min), BigInt(Number.MAX_SAFE_INTEGER));
    const offsetsBefore = await committedOffsets(admin, group, topic);

    const done = await replay(['--to-offset', offset.toString(), '--partitions', '0,1', '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    const plan = planOf(done.stdout);
    expect([...plan.keys()].sort()).toEqual([0, 1]);
    const after = await committedOffsets(admin, group, topic);
    expect(after.get(2)).toBe(offsetsBefore.get(2));
    for (const p of [0, 1]) {
      const target = plan.get(p)!.target;
      expect(target <= offset).toBe(true);
      expect(after.get(p)).toBe(target.toString());
    }
    expect([...plan.values()].some((r) => r.movedBack && r.target < offset)).toBe(true);
    // What remains of partitions 0 and 1 ends before the target; partition 2 is untouched.
    const remaining = new Map((await listObjects(s3, bucket, prefix)).map((o) => [o.key, o.etag]));
    for (const o of objects) {
      const m = meta.get(o.key)!;
      if (m.partition === 2 || m.first < plan.get(m.partition)!.target) {
        expect(remaining.get(o.key), o.key).toBe(o.etag);
        if (m.partition !== 2) expect(m.last < plan.get(m.partition)!.target, `${o.key} ends before the target`).toBe(true);
      } else expect(remaining.has(o.key), `${o.key} was deleted`).toBe(false);
    }

    await exportToEnd([file], group);
    const lake = await readLake(s3, bucket, prefix, reader);
    expectExact(lake);
    expect(lake.values).toEqual(lakeBefore.values);
    expect(Object.fromEntries(await committedOffsets(admin, group, topic))).toEqual(Object.fromEntries(ends));
    expect(await monthReport('after-offset')).toBe(reportBefore);
  }, 120_000);

  it('--to-sink-prefix writes a shadow pipeline whose run fills the shadow prefix with the same set, the live lake untouched', async () => {
    expect(lakeBefore, 'the first test fills the lake').toBeDefined();
    const liveObjects = await listObjects(s3, bucket, prefix);
    const liveOffsets = await committedOffsets(admin, group, topic);
    const shadowFile = `${file.replace(/\.yaml$/, '')}.shadow.yaml`;
    const shadowGroup = `${group}.shadow.shadow`;

    const dry = await replay(['--to-earliest', '--to-sink-prefix', 'shadow/', '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(existsSync(shadowFile)).toBe(false);

    const done = await replay(['--to-earliest', '--to-sink-prefix', 'shadow/', '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toContain(`shadow pipeline written to ${shadowFile}`);
    const text = readFileSync(shadowFile, 'utf8');
    expect(text).toContain(`consumer_group: ${shadowGroup}`);
    expect(text).toContain(`path: shadow/${prefix}event_type=`);
    expect(text).toContain(`topic: ${dlq}.shadow`);
    expect(Object.fromEntries(await committedOffsets(admin, shadowGroup, topic))).toEqual({ 0: '0', 1: '0', 2: '0' });

    await exportToEnd([shadowFile], shadowGroup);
    const shadow = await readLake(s3, bucket, `shadow/${prefix}`, reader);
    expectExact(shadow);
    expect(shadow.values).toEqual(lakeBefore.values);
    expect(await listObjects(s3, bucket, prefix)).toEqual(liveObjects);
    expect(await committedOffsets(admin, group, topic)).toEqual(liveOffsets);
  }, 120_000);

  it('plans --to-datetime and --shift-by as the broker answers them, without changing anything', async () => {
    expect(waveStarts.length, 'the first test produced the events').toBeGreaterThan(3);
    const offsets = await committedOffsets(admin, group, topic);
    const at = new Date(waveStarts[3]! - 1);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, at.getTime());
    const dated = await cli(['replay', '--group', group, '--topic', topic, '--to-datetime', at.toISOString()], env);
    expect(dated.code, dated.stderr).toBe(0);
    expect(dated.stdout).toContain('dry run: nothing changed');
    const datedPlan = planOf(dated.stdout);
    expect(Object.fromEntries([...datedPlan].map(([p, r]) => [p, r.target.toString()]))).toEqual(Object.fromEntries(byTime.map((o) => [o.partition, o.offset])));
    // Every target is inside the log, past the first waves.
    for (const r of datedPlan.values()) expect(r.target > 0n).toBe(true);

    const shifted = await cli(['replay', '--group', group, '--topic', topic, '--shift-by', '-100', '--dry-run'], env);
    expect(shifted.code, shifted.stderr).toBe(0);
    const shiftedPlan = planOf(shifted.stdout);
    for (const [p, r] of shiftedPlan) {
      expect(r.committed).toBe(offsets.get(p));
      expect(r.target).toBe(BigInt(offsets.get(p)!) - 100n);
    }
    expect(await committedOffsets(admin, group, topic)).toEqual(offsets);
  }, 60_000);

  it('a replay without a target, or a shadow without its pipeline, is refused saying what is missing', async () => {
    const none = await cli(['replay', '--group', group, '--topic', topic, '--execute'], env);
    expect(none.code).not.toBe(0);
    expect(none.stdout + none.stderr, `exit ${none.code}, output: ${JSON.stringify(none.stdout + none.stderr)}`).toContain('exactly one target');
    const two = await cli(['replay', '--group', group, '--topic', topic, '--to-offset', '5', '--shift-by', '-1', '--execute'], env);
    expect(two.code).not.toBe(0);
    expect(two.stdout + two.stderr, `exit ${two.code}, output: ${JSON.stringify(two.stdout + two.stderr)}`).toContain('exactly one target');
    const shadow = await cli(['replay', '--group', group, '--topic', topic, '--to-earliest', '--to-sink-prefix', 'shadow/', '--execute'], env);
    expect(shadow.code).not.toBe(0);
    expect(shadow.stdout + shadow.stderr, `exit ${shadow.code}, output: ${JSON.stringify(shadow.stdout + shadow.stderr)}`).toContain('--to-sink-prefix needs --pipeline');
    expect(Object.fromEntries(await committedOffsets(admin, group, topic))).toEqual(Object.fromEntries(await endOffsets(admin, topic)));
  }, 30_000);
});
