/**
 * Normalizer throughput: pre-fills a CDC-like topic with N synthetic Debezium change
 * events (the connector's exact JSON), then measures
 *   1. the raw kafkajs consume rate of that topic (eachBatch, no work): the reference;
 *   2. the normalizer end to end, as its own process (dist/processors/normalizer/main.js):
 *      parse, validate, Avro-encode, produce events + DLQ and commit offsets in
 *      transactions; records/s from its first commit to its last, and its peak RSS;
 *      twice on the same backlog, each with a group of its own: without durable dedupe
 *      (SLUICE_NORMALIZER_DEDUPE=false) and with it (the state store and its changelog);
 *   3. the dedupe state: its disk size per million event ids, and the time a restarted
 *      normalizer takes to make it current: with the local store kept (catch-up) and
 *      with it deleted (full restore from the changelog topic).
 * Run against the local stack: `npm run bench` (see the report for wiring), or
 * `tsc -p tsconfig.bench.json && node dist/bench/normalizer.bench.js`.
 * Env: BENCH_RECORDS (200000), BENCH_PARTITIONS (1, as Debezium's topic locally),
 * BENCH_MAX_BATCH_RECORDS (the normalizer's SLUICE_NORMALIZER_MAX_BATCH_RECORDS, 5000),
 * BENCH_LOG_LEVEL (the normalizer's log level, e.g. debug for per-transaction timings).
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { changelogTopicName } from '../processors/core/state/changelog.js';
import { prefillCdcTopic } from './support/cdc-backlog.js';
import { freePort, memoryKb, metricSum, ROOT } from './support/processes.js';

const N = Number(process.env.BENCH_RECORDS ?? 200_000);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 1);
const MAX_BATCH = process.env.BENCH_MAX_BATCH_RECORDS ?? '5000';
const MAIN = `${ROOT}dist/processors/normalizer/main.js`;

const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: 'sluice-bench' });
const run = randomUUID().slice(0, 8);
const cdcTopic = `bench.normalizer.${run}.cdc`;
const eventsTopic = `bench.normalizer.${run}.events`;
const dlqTopic = `bench.normalizer.${run}.dlq`;
const groups = { raw: `bench-raw-${run}`, plain: `bench-normalizer-${run}`, dedupe: `bench-normalizer-dedupe-${run}` };
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-bench-state-'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));

async function prefill(): Promise<{ ms: number; bytes: number }> {
  return prefillCdcTopic(kafka, cdcTopic, N, PARTITIONS);
}

/** kafkajs alone: fetch the whole topic with eachBatch and do nothing with it. */
async function rawConsume(): Promise<{ ms: number }> {
  const consumer = kafka.consumer({ groupId: groups.raw, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic: cdcTopic, fromBeginning: true });
  let count = 0;
  let first = 0;
  const done = new Promise<number>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (!first) first = Date.now();
        count += batch.messages.length;
        if (count >= N) resolve(Date.now());
      },
    });
  });
  const end = await done;
  await consumer.disconnect();
  return { ms: end - first };
}

interface Counts {
  records: number;
  events: number;
  deadLetters: number;
  transactions: number;
}

function spawnNormalizer(port: number, dedupe: boolean): ChildProcess {
  return spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), MAIN], {
    cwd: ROOT,
    stdio: ['ignore', process.env.BENCH_LOG_LEVEL ? 'inherit' : 'ignore', 'inherit'],
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      SLUICE_NORMALIZER_CDC_TOPIC: cdcTopic,
      SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
      SLUICE_NORMALIZER_DLQ_TOPIC: dlqTopic,
      SLUICE_NORMALIZER_GROUP_ID: dedupe ? groups.dedupe : groups.plain,
      SLUICE_NORMALIZER_INSTANCE_ID: `bench-${run}`,
      SLUICE_NORMALIZER_HTTP_PORT: String(port),
      SLUICE_NORMALIZER_MAX_BATCH_RECORDS: MAX_BATCH,
      SLUICE_NORMALIZER_DEDUPE: String(dedupe),
      SLUICE_NORMALIZER_STATE_DIR: stateDir,
    },
  });
}

const scrape = async (port: number) => {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
};

async function normalizer(dedupe: boolean): Promise<{ startupMs: number; ms: number; totalMs: number; peakRssMb: number; counts: Counts & { firstCount: number } }> {
  const port = await freePort();
  const spawned = Date.now();
  const child = spawnNormalizer(port, dedupe);
  const counts = async (): Promise<Counts> => {
    const text = await scrape(port);
    return { records: metricSum(text, 'sluice_normalizer_records_total'), events: metricSum(text, 'sluice_normalizer_events_total'), deadLetters: metricSum(text, 'sluice_normalizer_dead_letters_total'), transactions: metricSum(text, 'sluice_normalizer_transactions_total') };
  };
  let first = 0;
  let firstCount = 0;
  let peakRss = 0;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the normalizer exited with ${child.exitCode}`);
    peakRss = Math.max(peakRss, memoryKb(child.pid!, 'VmRSS'));
    const c = await counts();
    if (!first && c.records > 0) {
      first = Date.now();
      firstCount = c.records;
    }
    if (c.records >= N) {
      const end = Date.now();
      peakRss = Math.max(peakRss, memoryKb(child.pid!, 'VmHWM'));
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return { startupMs: first - spawned, ms: end - first, totalMs: end - spawned, peakRssMb: Math.round(peakRss / 1024), counts: { ...c, firstCount } };
    }
    await sleep(100);
  }
}

/**
 * A restart of the dedupe run's normalizer with nothing new to read: how long its
 * partitions' stores take to be current (sluice_state_restore_seconds), with the local
 * store kept or deleted first.
 */
async function restore(wipe: boolean): Promise<{ seconds: number; records: number; entries: number; wallMs: number }> {
  if (wipe) rmSync(stateDir, { recursive: true, force: true });
  const port = await freePort();
  const spawned = Date.now();
  const child = spawnNormalizer(port, true);
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the normalizer exited with ${child.exitCode}`);
      const text = await scrape(port);
      if (metricSum(text, 'sluice_state_restore_seconds_count') >= PARTITIONS) {
        return { seconds: metricSum(text, 'sluice_state_restore_seconds_sum'), records: metricSum(text, 'sluice_state_restored_records_total'), entries: metricSum(text, 'sluice_state_entries'), wallMs: Date.now() - spawned };
      }
      await sleep(100);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
  }
}

const diskBytes = (dir: string) => Number(execFileSync('du', ['-sk', dir]).toString().split(/\s/)[0]) * 1024;

async function cleanup(): Promise<void> {
  rmSync(stateDir, { recursive: true, force: true });
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const ours = [cdcTopic, eventsTopic, dlqTopic, changelogTopicName(groups.dedupe, 'dedupe')].filter((t) => existing.has(t));
  if (ours.length > 0) await admin.deleteTopics({ topics: ours }).catch(() => undefined);
  await admin.deleteGroups([groups.raw, groups.plain, groups.dedupe]).catch(() => undefined);
  await admin.disconnect();
}

try {
  console.log(`normalizer bench: ${N} records, ${PARTITIONS} CDC partition(s), ${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const fill = await prefill();
  console.log(`prefill: ${N} Debezium JSON records, ${(fill.bytes / 2 ** 20).toFixed(1)} MiB (avg ${Math.round(fill.bytes / N)} B), in ${(fill.ms / 1000).toFixed(1)} s`);
  const raw = await rawConsume();
  console.log(`raw kafkajs consume (eachBatch, no work): ${rate(N, raw.ms)} records/s (${(fill.bytes / 2 ** 20 / (raw.ms / 1000)).toFixed(1)} MiB/s)`);
  const runs: Record<string, Awaited<ReturnType<typeof normalizer>>> = {};
  // Both on the same backlog, one after the other (each group reads it from the start).
  for (const dedupe of [false, true]) {
    const n = await normalizer(dedupe);
    runs[dedupe ? 'dedupe' : 'plain'] = n;
    const steady = N - n.counts.firstCount;
    console.log(
      `normalizer end to end, durable dedupe ${dedupe ? 'ON ' : 'OFF'}: ${rate(steady, n.ms)} records/s from first to last commit (${(n.ms / 1000).toFixed(1)} s), ` +
        `${rate(N, n.totalMs)} records/s including the ${(n.startupMs / 1000).toFixed(1)} s start; peak RSS ${n.peakRssMb} MiB; ` +
        `${n.counts.events} events, ${n.counts.deadLetters} dead letters, ${n.counts.transactions} transactions (max ${MAX_BATCH} records each)`,
    );
  }
  const plainRate = rate(N - runs.plain!.counts.firstCount, runs.plain!.ms);
  const dedupeRate = rate(N - runs.dedupe!.counts.firstCount, runs.dedupe!.ms);
  const ids = runs.dedupe!.counts.events;
  const disk = diskBytes(stateDir);
  console.log(`durable dedupe: ${Math.round((dedupeRate / plainRate) * 100)} % of the rate without; state of ${ids} event ids: ${(disk / 2 ** 20).toFixed(1)} MiB on disk (${((disk / 2 ** 20) * (1e6 / ids)).toFixed(1)} MiB per million ids)`);
  const catchUp = await restore(false);
  console.log(`restart with the local store kept: stores current in ${catchUp.seconds.toFixed(2)} s (${catchUp.records} changelog records read)`);
  const full = await restore(true);
  console.log(`restart with the local store deleted: ${full.entries} ids from ${full.records} changelog records restored in ${full.seconds.toFixed(2)} s (${rate(full.entries, full.seconds * 1000)} ids/s)`);
  console.log(
    JSON.stringify({
      records: N,
      partitions: PARTITIONS,
      bytes: fill.bytes,
      rawRecordsPerSec: rate(N, raw.ms),
      normalizerRecordsPerSec: plainRate,
      normalizerDedupeRecordsPerSec: dedupeRate,
      dedupeRatio: Math.round((dedupeRate / plainRate) * 1000) / 1000,
      normalizerWithStartRecordsPerSec: rate(N, runs.plain!.totalMs),
      startupMs: runs.plain!.startupMs,
      peakRssMb: runs.plain!.peakRssMb,
      dedupePeakRssMb: runs.dedupe!.peakRssMb,
      events: runs.dedupe!.counts.events,
      deadLetters: runs.dedupe!.counts.deadLetters,
      transactions: runs.dedupe!.counts.transactions,
      stateIds: ids,
      stateDiskBytes: disk,
      stateMiBPerMillionIds: Math.round((disk / 2 ** 20) * (1e6 / ids) * 10) / 10,
      catchUpRestoreSeconds: catchUp.seconds,
      fullRestoreSeconds: full.seconds,
      fullRestoreRecords: full.records,
      fullRestoreIds: full.entries,
    }),
  );
} finally {
  await cleanup();
}
