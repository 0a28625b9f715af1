/**
 * Normalizer throughput: pre-fills a CDC-like topic with N synthetic Debezium change
 * events (the connector's exact JSON), then measures
 *   1. the raw kafkajs consume rate of that topic (eachBatch, no work): the reference;
 *   2. the normalizer end to end, as its own process (dist/processors/normalizer/main.js):
 *      parse, validate, Avro-encode, produce events + DLQ and commit offsets in
 *      transactions; records/s from its first commit to its last, and its peak RSS.
 * Run against the local stack: `npm run bench` (see the report for wiring), or
 * `tsc -p tsconfig.bench.json && node dist/bench/normalizer.bench.js`.
 * Env: BENCH_RECORDS (200000), BENCH_PARTITIONS (1, as Debezium's topic locally),
 * BENCH_MAX_BATCH_RECORDS (the normalizer's SLUICE_NORMALIZER_MAX_BATCH_RECORDS, 5000),
 * BENCH_LOG_LEVEL (the normalizer's log level, e.g. debug for per-transaction timings).
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { prefillCdcTopic } from './support/cdc-backlog.js';
import { freePort, memoryKb, ROOT } from './support/processes.js';

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
const groups = { raw: `bench-raw-${run}`, normalizer: `bench-normalizer-${run}` };

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

async function normalizer(): Promise<{ startupMs: number; ms: number; totalMs: number; peakRssMb: number; counts: Counts & { firstCount: number } }> {
  const port = await freePort();
  const spawned = Date.now();
  const child: ChildProcess = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), MAIN], {
    cwd: ROOT,
    stdio: ['ignore', process.env.BENCH_LOG_LEVEL ? 'inherit' : 'ignore', 'inherit'],
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      SLUICE_NORMALIZER_CDC_TOPIC: cdcTopic,
      SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
      SLUICE_NORMALIZER_DLQ_TOPIC: dlqTopic,
      SLUICE_NORMALIZER_GROUP_ID: groups.normalizer,
      SLUICE_NORMALIZER_INSTANCE_ID: `bench-${run}`,
      SLUICE_NORMALIZER_HTTP_PORT: String(port),
      SLUICE_NORMALIZER_MAX_BATCH_RECORDS: MAX_BATCH,
    },
  });
  const counts = async (): Promise<Counts> => {
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
      return { records: sum('sluice_normalizer_records_total'), events: sum('sluice_normalizer_events_total'), deadLetters: sum('sluice_normalizer_dead_letters_total'), transactions: sum('sluice_normalizer_transactions_total') };
    } catch {
      return { records: 0, events: 0, deadLetters: 0, transactions: 0 };
    }
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

async function cleanup(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const ours = [cdcTopic, eventsTopic, dlqTopic].filter((t) => existing.has(t));
  if (ours.length > 0) await admin.deleteTopics({ topics: ours }).catch(() => undefined);
  await admin.deleteGroups([groups.raw, groups.normalizer]).catch(() => undefined);
  await admin.disconnect();
}

try {
  console.log(`normalizer bench: ${N} records, ${PARTITIONS} CDC partition(s), ${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const fill = await prefill();
  console.log(`prefill: ${N} Debezium JSON records, ${(fill.bytes / 2 ** 20).toFixed(1)} MiB (avg ${Math.round(fill.bytes / N)} B), in ${(fill.ms / 1000).toFixed(1)} s`);
  const raw = await rawConsume();
  console.log(`raw kafkajs consume (eachBatch, no work): ${rate(N, raw.ms)} records/s (${(fill.bytes / 2 ** 20 / (raw.ms / 1000)).toFixed(1)} MiB/s)`);
  const n = await normalizer();
  const steady = N - n.counts.firstCount;
  console.log(
    `normalizer end to end: ${rate(steady, n.ms)} records/s from first to last commit (${(n.ms / 1000).toFixed(1)} s), ` +
      `${rate(N, n.totalMs)} records/s including the ${(n.startupMs / 1000).toFixed(1)} s start; peak RSS ${n.peakRssMb} MiB; ` +
      `${n.counts.events} events, ${n.counts.deadLetters} dead letters, ${n.counts.transactions} transactions (max ${MAX_BATCH} records each)`,
  );
  console.log(JSON.stringify({ ...n.counts, records: N, partitions: PARTITIONS, bytes: fill.bytes, rawRecordsPerSec: rate(N, raw.ms), normalizerRecordsPerSec: rate(steady, n.ms), normalizerWithStartRecordsPerSec: rate(N, n.totalMs), startupMs: n.startupMs, peakRssMb: n.peakRssMb }));
} finally {
  await cleanup();
}
