import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../processors/core/s3/client.js';
import { deletePrefix, download, listKeys, listObjects } from '../../processors/core/s3/objects.js';
import { startExport, type RunningExport } from '../../processors/export/export.js';
import { fileCoordinates, mergedFile } from '../../processors/compact/layout.js';
import { AgentEventProducer, cli, connectLakeStack, expectedLakeValues, lakeMonthReport, lakePipelineFile, localCopies, opsEvent, readLake, startCli, waitCaughtUp, type OpsEvent } from '../support/ops-lake.js';
import type { ParquetReader } from '../support/parquet-reader.js';
import { seededRandom } from '../support/random.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 15, `sluice compact` end to end on the real stack: the real export runner with the
 * shipped lake.yaml (period compressed with time: 250 ms) fills a lake prefix of the test's own from a month of
 * live-shaped traffic compressed in time (a wave a day, each day's events produced together,
 * with late events for days already written); `sluice compact` (the CLI, as an operator runs
 * it) rewrites each closed partition into one sorted file (its two Kafka partitions merged). The lake's rows
 * are the same (DuckDB EXCEPT ALL both ways over the files before and after), the month's
 * report is byte for byte the same, manifests list exactly the partition's files. Then, with
 * the export running and late events arriving, five runs are SIGKILLed at random moments and
 * the next run leaves the lake exact with no journal or orphan; `replay --pipeline` over the
 * compacted lake re-exports it exactly (and refuses to replay one of the partitions a merged
 * file holds without the other).
 */

const settings = testSettings();
const id = randomUUID().slice(0, 8);
const topic = `test.compact.${id}`;
const dlq = `${topic}.dlq`;
const root = `test-compact-${id}/`;
const prefix = `${root}agent_events/`;
const group = `test-compact-${id}`;
const DAYS = 30;
/** Events a day (a multiple of WAVES_A_DAY); the soak (test/soak/lake-compaction-soak.test.ts) sets SLUICE_COMPACT_TEST_PER_DAY for a 1M-event month. */
const PER_DAY = Number(process.env.SLUICE_COMPACT_TEST_PER_DAY ?? 96);
/** Time limits grow with the month's size: 1 with the test's own 96 a day. */
const SCALE = Math.max(1, PER_DAY / 96 / 50);
/** Flushes a day: the period is compressed with time (the shipped 1 s over a day of traffic is 86,400 flushes). */
const WAVES_A_DAY = 3;
const KAFKA_PARTITIONS = 2;
const env = { ...process.env, SLUICE_LAKE_CONSUMER_GROUP: group, SLUICE_EXPORT_HTTP_PORT: '0', SLUICE_LOG_LEVEL: 'warn' };
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const random = seededRandom(Number.parseInt(id, 16));

const events: OpsEvent[] = [];
let next = 0;
function wave(day: number, count: number, lateEvery = 17): OpsEvent[] {
  const out: OpsEvent[] = [];
  for (let k = 0; k < count; k++) {
    const i = next++;
    // Every 17th event is late: it happened 1-3 days before its wave's day.
    const late = k % lateEvery === 3 && day > 3;
    out.push(opsEvent(id, i, late ? day - 1 - (i % 3) : day));
  }
  events.push(...out);
  return out;
}

let kafka: Kafka;
let admin: Admin;
let reader: ParquetReader;
let producer: AgentEventProducer;
let running: RunningExport | undefined;
let file: string;

const monthReport = (tag: string) => lakeMonthReport(s3, bucket, { lakePrefix: prefix, reportsPrefix: `${root}reports/`, requestId: `compact-${id}-${tag}` });

async function expectExact(): Promise<void> {
  const lake = await readLake(s3, bucket, `${prefix}event_type=`, reader);
  expect(lake.duplicates).toEqual([]);
  expect(lake.rows).toBe(events.length);
  let mismatches = 0;
  for (const e of events) if (lake.values.get(e.eventId) !== expectedLakeValues(e)) mismatches++;
  expect(mismatches).toBe(0);
}

/** Data files per partition directory. */
async function filesByPartition(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const key of await listKeys(s3, bucket, `${prefix}event_type=`)) {
    const dir = key.slice(0, key.lastIndexOf('/'));
    out.set(dir, [...(out.get(dir) ?? []), key]);
  }
  return out;
}

/** Nothing of Sluice's own state is left but manifests, and each manifest lists exactly its partition's files. */
async function expectNoJournalAndTrueManifests(): Promise<void> {
  expect(await listKeys(s3, bucket, `${prefix}_sluice/compaction/`)).toEqual([]);
  const partitions = await filesByPartition();
  for (const [dir, keys] of partitions) {
    const relative = dir.slice(prefix.length);
    const manifest = await download(s3, bucket, `${prefix}_sluice/manifests/${relative}/manifest`);
    const listed = Buffer.from(manifest).toString('utf8').trim().split('\n').sort();
    expect(listed, relative).toEqual(keys.map((k) => `s3://${bucket}/${k}`).sort());
  }
}

const compact = (args: string[] = []) => cli(['compact', file, '--grace', '24h', '--concurrency', '8', ...args], env, 120_000 * SCALE);

beforeAll(async () => {
  ({ kafka, admin, reader } = await connectLakeStack(settings));
  // The shipped settings: lake.yaml as it is, the topic, DLQ and prefix the test's, the period compressed with time (1 s -> 250 ms).
  file = lakePipelineFile({ name: `compact-${id}`, topic, dlq, prefix, period: '250ms' });
  producer = new AgentEventProducer(kafka, settings, topic);
  await producer.setUp(KAFKA_PARTITIONS);
});

afterAll(async () => {
  await running?.stop();
  await deletePrefix(s3, bucket, root).catch(() => undefined);
  await admin?.deleteTopics({ topics: [topic, dlq] }).catch(() => undefined);
  await admin?.disconnect();
  reader?.close();
});

describe('sluice compact', () => {
  it('a month of live-shaped traffic: every closed partition drops to one file, rows and report unchanged', { timeout: 600_000 * SCALE }, async () => {
    running = await startExport({ files: [file], env });
    for (let day = 1; day <= DAYS; day++) {
      for (let w = 0; w < WAVES_A_DAY; w++) {
        await producer.send(wave(day, PER_DAY / WAVES_A_DAY).map((e) => producer.message(e)));
        await new Promise((r) => setTimeout(r, 330)); // a flush (period 250ms) a wave, as live traffic writes a day's files
      }
    }
    await waitCaughtUp(admin, group, topic, 60_000 * SCALE);
    const before = await filesByPartition();
    const beforeKeys = [...before.values()].flat();
    const reportBefore = await monthReport('before');
    // The files before, kept by DuckDB for EXCEPT ALL against the files after.
    const beforePaths = await localCopies(s3, bucket, beforeKeys, reader);

    const dry = await compact(['--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect((await filesByPartition()).size).toBe(before.size);
    expect([...(await filesByPartition()).values()].flat().sort()).toEqual([...beforeKeys].sort());

    const run = await compact();
    expect(run.code, run.stderr).toBe(0);
    const after = await filesByPartition();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    let manyBefore = 0;
    let mergedPartitions = 0;
    for (const [dir, keys] of after) {
      // One file a partition (the target is 128 MiB; these are KiB): the files of both Kafka partitions merged, or the only file there was.
      expect(keys.length, dir).toBe(1);
      if (before.get(dir)!.length === 1) expect(keys, dir).toEqual(before.get(dir));
      else expect(mergedFile(keys[0]!), `${dir}: ${keys[0]}`).toEqual({ topic, part: 0 });
      if (before.get(dir)!.length > 1) manyBefore++;
      if (new Set(before.get(dir)!.map((k) => fileCoordinates(k)!.partition)).size === KAFKA_PARTITIONS) mergedPartitions++;
    }
    expect(manyBefore).toBeGreaterThan(DAYS); // the month had many small files per partition to begin with
    expect(mergedPartitions).toBeGreaterThan(DAYS); // and most partitions had files of both Kafka partitions
    expect([...after.values()].flat().length).toBeLessThan(beforeKeys.length / 2.5);

    await expectExact();
    const afterPaths = await localCopies(s3, bucket, [...after.values()].flat(), reader);
    const list = (paths: string[]) => `read_parquet([${paths.map((p) => `'${p}'`).join(', ')}])`;
    for (const [a, b] of [
      [beforePaths, afterPaths],
      [afterPaths, beforePaths],
    ] as const) {
      const [row] = await reader.query(`SELECT count(*)::INTEGER AS n FROM (SELECT * FROM ${list(a)} EXCEPT ALL SELECT * FROM ${list(b)})`);
      expect(row!.n).toBe(0);
    }
    const [counts] = await reader.query(`SELECT (SELECT count(*) FROM ${list(beforePaths)})::INTEGER AS b, (SELECT count(*) FROM ${list(afterPaths)})::INTEGER AS a`);
    expect(counts).toEqual({ b: events.length, a: events.length });
    // Sorted by agent_id then occurred_at within each file (row-group statistics prune by agent).
    const sortedFile = afterPaths[0]!;
    const [unsorted] = await reader.query(
      `SELECT count(*)::INTEGER AS n FROM (SELECT agent_id, occurred_at, lag(agent_id) OVER () AS pa, lag(occurred_at) OVER () AS po FROM read_parquet('${sortedFile}')) WHERE pa > agent_id OR (pa = agent_id AND po > occurred_at)`,
    );
    expect(unsorted!.n).toBe(0);

    expect(await monthReport('after')).toBe(reportBefore);
    await expectNoJournalAndTrueManifests();

    // A second run finds nothing to do: the count stays.
    const again = await compact();
    expect(again.code, again.stderr).toBe(0);
    expect([...(await filesByPartition()).values()].flat().sort()).toEqual([...after.values()].flat().sort());
  });

  it('SIGKILL at random moments while the export runs and late events arrive: the next run leaves every row once, no journal, no orphan', { timeout: 300_000 * SCALE }, async () => {
    for (let round = 0; round < 5; round++) {
      // Late events for days already compacted, while the export keeps running.
      await producer.send(wave(10 + round * 3, 120, 1).map((e) => producer.message(e)));
      await new Promise((r) => setTimeout(r, 1500));
      const victim = startCli(['compact', file, '--grace', '24h', '--concurrency', '8'], env, 120_000);
      await new Promise((r) => setTimeout(r, 300 + Math.floor(random() * 2500)));
      victim.kill('SIGKILL');
      await victim.done;
    }
    await waitCaughtUp(admin, group, topic, 60_000 * SCALE);
    const run = await compact();
    expect(run.code, run.stderr).toBe(0);
    await expectExact();
    await expectNoJournalAndTrueManifests();
    // The late events' partitions were compacted again: back to one file each.
    for (const [dir, keys] of await filesByPartition()) expect(keys.length, dir).toBe(1);
  });

  it('replay --pipeline over a compacted lake: from a target inside merged files, the re-export leaves the lake exact and the report the same', { timeout: 180_000 * SCALE }, async () => {
    const reportBefore = await monthReport('before-replay');
    await running!.stop();
    running = undefined;
    const offsets = await admin.fetchTopicOffsets(topic);
    const mid = BigInt(offsets.find((o) => o.partition === 0)!.high) / 2n;
    const objectsBefore = await listObjects(s3, bucket, prefix);
    // A merged file holds both Kafka partitions: replaying one alone would write the file again without the other's rows, so it is refused.
    const one = await cli(['replay', '--group', group, '--topic', topic, '--pipeline', file, '--to-offset', mid.toString(), '--partitions', '0', '--execute'], env, 90_000);
    expect(one.code, one.stdout + one.stderr).not.toBe(0);
    expect(one.stderr).toMatch(/holds partition 1 beside the replayed ones: .* partition 1 must be replayed too \(add it to --partitions\)/);
    expect(await listObjects(s3, bucket, prefix)).toEqual(objectsBefore);

    const done = await cli(['replay', '--group', group, '--topic', topic, '--pipeline', file, '--to-offset', mid.toString(), '--execute'], env, 90_000);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/moved back/);
    running = await startExport({ files: [file], env });
    await waitCaughtUp(admin, group, topic, 60_000 * SCALE);
    await expectExact();
    expect(await monthReport('after-replay')).toBe(reportBefore);
    // And compacting the re-exported files again keeps it so.
    await running.stop();
    running = undefined;
    const run = await compact();
    expect(run.code, run.stderr).toBe(0);
    await expectExact();
    await expectNoJournalAndTrueManifests();
    expect(await monthReport('after-replay-compacted')).toBe(reportBefore);
    const objects = await listObjects(s3, bucket, `${prefix}event_type=`);
    expect(objects.every((o) => fileCoordinates(o.key) !== undefined || mergedFile(o.key) !== undefined)).toBe(true);
  });
});
