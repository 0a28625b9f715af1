/**
 * Export engine (issue 4), in one run against the local stack:
 *   1. backlog: BENCH_EXPORT_EVENTS (5,000,000) DOMAIN-shaped agent events, Avro in the
 *      Confluent wire format as the normalizer writes them (schema registered once under
 *      `<topic>-value`), key agent_id, one month of event time, on a new 6-partition topic;
 *   2. raw consume: kafkajs reading the whole topic in a new group, eachBatch doing nothing,
 *      with the runner's fetch settings: the reference;
 *   3. export: the real runner as its own process (`node bin/sluice.mjs run <pipeline>`),
 *      the shipped connectors/exports/lake.yaml with only the topic, the DLQ topic and the
 *      path prefix replaced, on that backlog; records/s from its first commit to its last
 *      (the group's committed offsets against the topic's end offsets, polled every
 *      250 ms), its ratio to the raw consume rate, its peak RSS (VmRSS every 250 ms and
 *      VmHWM at the end); the lake is then counted back with DuckDB;
 *   4. freshness: rows inserted one a transaction into staging.agent_events every
 *      100-200 ms for BENCH_FRESHNESS_SECONDS (60) -> Debezium -> `sluice normalizer` (own
 *      group, starting at the CDC topic's end, own events topic) -> `sluice run` with the
 *      shipped lake.yaml (1 s batch period) -> S3, listed every 100 ms; per event the time
 *      from its commit to the first listing that shows a file holding it; p50/p99, and the
 *      time each stage took (CDC topic, events topic, S3) from two observing consumers.
 * Run: `npm run bench` (BENCH_ONLY=export for this one alone), or
 * `tsc -p tsconfig.bench.json && node dist/bench/export.bench.js` with the stack up.
 * Env: BENCH_EXPORT_EVENTS, BENCH_EXPORT_AGENTS (300), BENCH_FRESHNESS_SECONDS (60; 0 skips
 * it), BENCH_EXPORT_NODE_ARGS (node flags for the runner, e.g. `--cpu-prof
 * --cpu-prof-dir=/tmp/prof`), BENCH_LOG_LEVEL (the processors' log level, default warn),
 * BENCH_EXPORT_LAKE_YAML (a variant of lake.yaml to run instead), BENCH_KEEP=1 (keep topics,
 * groups and objects for a look afterwards).
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { DuckDBInstance } from '@duckdb/node-api';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type Admin, type Consumer } from 'kafkajs';
import { parse as parseYaml } from 'yaml';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createPool } from '../processors/core/db/pool.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { readParquetTable, stringColumn } from '../processors/core/parquet/reader.js';
import { RegistryCodec } from '../processors/core/registry/codec.js';
import { RegistryRestClient } from '../processors/core/registry/ccompat.js';
import { parseByteSize } from '../processors/core/pipeline/units.js';
import { sleep } from '../processors/core/errors/retry.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { ensureCdcConnector } from './support/cdc.js';
import { waitForTopic } from '../test/support/kafka.js';
import { AgentEventBacklog, agentEventSchemaText, agentEventType } from './support/agent-events.js';
import { freePort, memoryKb, metricSum, ROOT, startSluice, type SluiceProcess } from './support/processes.js';
import { deletePrefix, listObjects } from '../processors/core/s3/objects.js';

const N = Number(process.env.BENCH_EXPORT_EVENTS ?? 5_000_000);
const AGENTS = Number(process.env.BENCH_EXPORT_AGENTS ?? 300);
const FRESH_SECONDS = Number(process.env.BENCH_FRESHNESS_SECONDS ?? 60);
const NODE_ARGS = (process.env.BENCH_EXPORT_NODE_ARGS ?? '').split(' ').filter(Boolean);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';
const KEEP = process.env.BENCH_KEEP === '1';
const PARTITIONS = 6;
const MONTH_START = '2026-09-01';
const DAYS = 30;
/** The shipped pipeline; BENCH_EXPORT_LAKE_YAML points at a variant of it (e.g. to measure a change before it ships). */
const LAKE_YAML = process.env.BENCH_EXPORT_LAKE_YAML ?? `${ROOT}connectors/exports/lake.yaml`;
const CDC_TOPIC = 'sluice.staging.agent_events';
const TARGETS = { exportPerSec: 50_000, ofRaw: 0.5, rssMiB: 400, freshnessP99Ms: 3000 };

const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: 'sluice-bench' });
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const registry = new RegistryRestClient(settings.registry.url, settings.registry);
const run = randomUUID().slice(0, 8);
const topic = `bench.export.${run}.events`;
const freshTopic = `bench.export.${run}.fresh-events`;
const prefix = `bench/export-${run}/`;
const groups = {
  raw: `bench-export-raw-${run}`,
  raw2: `bench-export-raw2-${run}`,
  export: `bench-export-lake-${run}`,
  freshNormalizer: `bench-export-fresh-normalizer-${run}`,
  freshExport: `bench-export-fresh-lake-${run}`,
  cdcObserver: `bench-export-fresh-cdc-${run}`,
  eventsObserver: `bench-export-fresh-events-${run}`,
};
const topics = [topic, `${topic}.dlq`, freshTopic, `${freshTopic}.dlq`, `${freshTopic}.normalizer-dlq`];
const subjects = [`${topic}-value`, `${freshTopic}-value`];
const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-export-'));

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
const fmt = (n: number) => n.toLocaleString('en-US');
const mib = (bytes: number) => bytes / 2 ** 20;
const isTty = process.stdout.isTTY === true;

function progress(line: string, last = false): void {
  if (isTty) process.stdout.write(`\r${line}\u001b[K${last ? '\n' : ''}`);
  else console.log(line);
}

/**
 * The shipped lake.yaml with the input topic, the DLQ topic and the path prefix replaced:
 * everything else (mapping, dedupe, columns, zstd, batching 50,000 / 64 MiB / 1 s) as shipped.
 */
function benchPipeline(name: string, inputTopic: string, pathPrefix: string): string {
  let text = readFileSync(LAKE_YAML, 'utf8');
  const replace = (pattern: RegExp, to: string, what: string) => {
    const matches = text.match(new RegExp(pattern.source, `${pattern.flags}g`))?.length ?? 0;
    if (matches !== 1) throw new Error(`${LAKE_YAML}: expected one ${what} (${pattern}), found ${matches}; the bench's substitution needs updating`);
    text = text.replace(pattern, to);
  };
  replace(/^(\s*topics:\s*)\[sluice\.agent-events\]/m, `$1[${inputTopic}]`, 'input topic');
  replace(/^(\s*topic:\s*)sluice\.agent-events\.export\.dlq[ \t]*$/m, `$1${inputTopic}.dlq`, 'DLQ topic');
  replace(/(path:\s*)lake\/agent_events\//, `$1${pathPrefix}lake/agent_events/`, 'output path prefix');
  const parsed = parseYaml(text) as { input: { kafka: { topics: string[] } }; dlq: { topic: string }; output: { s3: { path: string; batching: { period: string } } } };
  if (parsed.input.kafka.topics.join() !== inputTopic || parsed.dlq.topic !== `${inputTopic}.dlq` || !parsed.output.s3.path.startsWith(pathPrefix)) {
    throw new Error(`the generated pipeline does not read ${inputTopic} / write ${pathPrefix}: ${JSON.stringify(parsed)}`);
  }
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lake.yaml'), text);
  return join(dir, 'lake.yaml');
}

interface Backlog {
  ms: number;
  bytes: number;
  schemaId: number;
  /** Exact sum of every amount_minor (money stays exact through the lake). */
  amountSum: bigint;
}

/** The backlog: a new 6-partition topic filled with N encoded events, acks=all, a few requests in flight. */
async function produceBacklog(): Promise<Backlog> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  const schemaText = agentEventSchemaText();
  const schemaId = await registry.register(`${topic}-value`, schemaText);
  const type = agentEventType(schemaText);
  const backlog = new AgentEventBacklog({ total: N, schemaId, type, monthStart: MONTH_START, days: DAYS, agents: AGENTS });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const started = Date.now();
  let bytes = 0;
  let amountSum = 0n;
  let sent = 0;
  let lastShown = 0;
  // 6,000 records (~1.4 MiB over 6 partitions) a request, up to 4 requests in flight.
  const CHUNK = 6000;
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < N; i += CHUNK) {
    const messages = [];
    for (let j = i; j < Math.min(N, i + CHUNK); j++) {
      const m = backlog.message(j);
      bytes += m.key.length + m.value.length;
      messages.push(m);
    }
    amountSum += backlog.takeAmountSum();
    const p: Promise<void> = producer.send({ topic, acks: -1, messages }).then(() => {
      sent += messages.length;
      inflight.delete(p);
    });
    inflight.add(p);
    if (inflight.size >= 4) await Promise.race(inflight);
    if (Date.now() - lastShown > (isTty ? 500 : 15_000)) {
      lastShown = Date.now();
      const s = (Date.now() - started) / 1000;
      progress(`  backlog: ${fmt(sent)} / ${fmt(N)} events sent (${fmt(Math.round(sent / s))}/s, ${mib(bytes).toFixed(0)} MiB encoded)`);
    }
  }
  await Promise.all(inflight);
  await producer.disconnect();
  const ms = Date.now() - started;
  progress(`  backlog: ${fmt(N)} events, ${mib(bytes).toFixed(1)} MiB (avg ${Math.round(bytes / N)} B key+value), produced in ${(ms / 1000).toFixed(1)} s (${fmt(rate(N, ms))}/s, acks=all)`, true);
  return { ms, bytes, schemaId, amountSum };
}

/** The fetch size the runner uses for the pipeline (input.kafka.fetch_max_bytes, 10MiB when unset; a partition gets at most 4 MiB of it). */
function pipelineFetchBytes(): { maxBytes: number; maxBytesPerPartition: number } {
  const parsed = parseYaml(readFileSync(LAKE_YAML, 'utf8')) as { input?: { kafka?: { fetch_max_bytes?: string | number } } };
  const setting = parsed.input?.kafka?.fetch_max_bytes ?? '10MiB';
  const maxBytes = parseByteSize(setting);
  if (maxBytes === undefined) throw new Error(`${LAKE_YAML}: input.kafka.fetch_max_bytes ${JSON.stringify(setting)} is not a byte size`);
  return { maxBytes, maxBytesPerPartition: Math.min(maxBytes, 4 * 2 ** 20) };
}

/** kafkajs alone, with the runner's fetch settings: the whole topic, eachBatch doing nothing. */
async function rawConsume(total: number, groupId: string): Promise<{ ms: number }> {
  const consumer = kafka.consumer({ groupId, ...pipelineFetchBytes(), maxWaitTimeInMs: 200, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let first = 0;
  const end = await new Promise<number>((resolve, reject) => {
    consumer
      .run({
        partitionsConsumedConcurrently: 3,
        eachBatch: async ({ batch }) => {
          if (!first) first = Date.now();
          count += batch.messages.length;
          if (count >= total) resolve(Date.now());
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return { ms: end - first };
}

async function committedTotal(admin: Admin, groupId: string, t: string): Promise<number> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [t] });
  return (offsets?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
}

async function endOffsetsTotal(admin: Admin, t: string): Promise<number> {
  return (await admin.fetchTopicOffsets(t)).reduce((s, p) => s + Number(p.high), 0);
}

interface ExportResult {
  startupMs: number;
  ms: number;
  totalMs: number;
  firstCount: number;
  peakRssMiB: number;
  memory: { rssMiB: number; heapUsedMiB: number; heapTotalMiB: number; externalMiB: number };
  metrics: { out: number; dlq: number; dropped: number; files: number; uploadBytes: number; flushes: number; flushSeconds: number };
}

/**
 * `sluice run` on the backlog: from spawn until the group's committed offsets reach the
 * topic's end offsets; peak RSS from /proc.
 */
async function exportBacklog(): Promise<ExportResult> {
  const admin = kafka.admin();
  await admin.connect();
  const target = await endOffsetsTotal(admin, topic);
  const port = await freePort();
  const file = benchPipeline('throughput', topic, prefix);
  const proc = startSluice(['run', file], {
    env: { SLUICE_LAKE_CONSUMER_GROUP: groups.export, SLUICE_EXPORT_HTTP_PORT: String(port), SLUICE_LOG_LEVEL: LOG_LEVEL },
    port,
    nodeArgs: NODE_ARGS,
    stdout: process.env.BENCH_LOG_LEVEL ? 'inherit' : 'ignore',
    label: 'sluice run (throughput)',
  });
  let peakKb = 0;
  let first = 0;
  let firstCount = 0;
  let last = 0;
  let lastProgressAt = Date.now();
  let lastShown = 0;
  let end = 0;
  let tick = 0;
  /** What the runner's heap held (its own /metrics) at the highest RSS seen by a once-a-second sample. */
  let memory = { rssMiB: 0, heapUsedMiB: 0, heapTotalMiB: 0, externalMiB: 0 };
  try {
    for (;;) {
      await Promise.race([sleep(250), proc.exited]);
      const now = Date.now();
      const rssKb = memoryKb(proc.pid, 'VmRSS');
      peakKb = Math.max(peakKb, rssKb);
      if (++tick % 4 === 0 && rssKb / 1024 > memory.rssMiB) {
        const text = await proc.metrics();
        const m = (name: string) => Math.round(mib(metricSum(text, name)));
        if (text) memory = { rssMiB: Math.round(rssKb / 1024), heapUsedMiB: m('sluice_nodejs_heap_size_used_bytes'), heapTotalMiB: m('sluice_nodejs_heap_size_total_bytes'), externalMiB: m('sluice_nodejs_external_memory_bytes') };
      }
      const committed = await committedTotal(admin, groups.export, topic);
      if (!first && committed > 0) {
        first = now;
        firstCount = committed;
      }
      if (committed > last) {
        last = committed;
        lastProgressAt = now;
      }
      if (now - lastShown > (isTty ? 1000 : 15_000)) {
        lastShown = now;
        const since = first ? rate(committed - firstCount, Math.max(1, now - first)) : 0;
        progress(`  export: ${fmt(committed)} / ${fmt(target)} committed (${fmt(since)}/s since the first commit), RSS ${Math.round(memoryKb(proc.pid, 'VmRSS') / 1024)} MiB`);
      }
      if (committed >= target) {
        end = now;
        break;
      }
      if (now - lastProgressAt > 120_000) throw new Error(`the export committed nothing for 120 s (${fmt(committed)} of ${fmt(target)})`);
    }
    peakKb = Math.max(peakKb, memoryKb(proc.pid, 'VmHWM'));
    const text = await proc.metrics();
    const metrics = {
      out: metricSum(text, 'sluice_export_records_out_total'),
      dlq: metricSum(text, 'sluice_export_records_dlq_total'),
      dropped: metricSum(text, 'sluice_export_records_dropped_total'),
      files: metricSum(text, 'sluice_export_files_written_total'),
      uploadBytes: metricSum(text, 'sluice_export_upload_bytes_total'),
      flushes: metricSum(text, 'sluice_export_flush_seconds_count'),
      flushSeconds: metricSum(text, 'sluice_export_flush_seconds_sum'),
    };
    progress(`  export: ${fmt(target)} / ${fmt(target)} committed`, true);
    return { startupMs: first - proc.spawnedAt, ms: end - first, totalMs: end - proc.spawnedAt, firstCount, peakRssMiB: Math.round(peakKb / 1024), memory, metrics };
  } finally {
    const code = await proc.stop();
    if (code !== 0 && code !== null) console.log(`  (sluice run exited with ${code} after SIGTERM)`);
    await admin.disconnect();
  }
}

/** The lake as an independent reader sees it: rows, distinct event ids, exact money sum (DuckDB over the S3 server's files). */
async function readBack(): Promise<{ rows: number; distinct: number; amountSum: bigint; files: number; bytes: number } | { skipped: string }> {
  const objects = await listObjects(s3, bucket, `${prefix}lake/agent_events/`);
  const dir = join(ROOT, '.sluice/data/s3', bucket, prefix, 'lake/agent_events');
  if (!existsSync(dir)) return { skipped: `the S3 server's files are not under ${dir}` };
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(
      `SELECT count(*)::BIGINT AS n, count(DISTINCT event_id)::BIGINT AS d, coalesce(sum(amount_minor::HUGEINT), 0)::VARCHAR AS s FROM read_parquet('${dir}/*/*/*.parquet', hive_partitioning = false)`,
    );
    const row = r.getRowObjectsJson()[0]!;
    return { rows: Number(row.n), distinct: Number(row.d), amountSum: BigInt(String(row.s)), files: objects.length, bytes: objects.reduce((s, o) => s + o.size, 0) };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface Distribution {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function distribution(values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN };
}

interface FreshnessResult {
  inserted: number;
  total: Distribution;
  missing: number;
  warmupMs: number;
  stages: { debezium: Distribution; normalizer: Distribution; export: Distribution };
  s3: { lists: number; avgListMs: number; objects: number; unreadable: number };
}

/** Reads what arrives on a topic from where the group stands, noting when each event id was first seen. */
async function observe(t: string, groupId: string, idOf: (m: { key: Buffer | null; value: Buffer | null }) => Promise<string | undefined>, seen: Map<string, number>): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: t, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const m of batch.messages) {
        const id = await idOf(m).catch(() => undefined);
        if (id && !seen.has(id)) seen.set(id, now);
      }
    },
  });
  return consumer;
}

/** Commits a group's offsets at the topic's end, so it reads only what comes next. */
async function groupAtEnd(admin: Admin, groupId: string, t: string): Promise<void> {
  const offsets = await admin.fetchTopicOffsets(t);
  await admin.setOffsets({ groupId, topic: t, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })) });
}

/**
 * Postgres commit -> object visible in S3, through the product's whole path: Debezium,
 * `sluice normalizer`, `sluice run` with the shipped lake.yaml (batching.period 1 s).
 */
async function freshness(): Promise<FreshnessResult> {
  await ensureCdcConnector(settings);
  const admin = kafka.admin();
  await admin.connect();
  const pool = createPool(settings.database.url, { max: 2, applicationName: 'sluice-bench' });
  const codec = new RegistryCodec(settings.registry.url, settings.registry);
  const types = ['deposit_made', 'customer_onboarded', 'withdrawal_made', 'investment_made', 'deposit_made'] as const;
  let inserted = 0;
  /** One row, its own transaction; the time its commit was acknowledged. */
  const insert = async (): Promise<{ id: string; committedAt: number }> => {
    const i = inserted++;
    const id = randomUUID();
    const type = types[i % types.length]!;
    const money = type !== 'customer_onboarded';
    await pool.query(
      `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source, session_id, correlation_id, metadata)
       VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9, $10)`,
      [
        id,
        type,
        `bench-${run}-agent-${i % 24}`,
        `bench-${run}-cust-${i % 97}`,
        money ? String(1000 + ((i * 7919) % 500_000)) : null,
        money ? 'USD' : null,
        ['agent_app', 'mobile', 'web'][i % 3],
        `sess-${run}-${i % 13}`,
        randomUUID(),
        type === 'investment_made' ? '{"product":"index-fund"}' : null,
      ],
    );
    return { id, committedAt: Date.now() };
  };

  const children: SluiceProcess[] = [];
  const consumers: Consumer[] = [];
  let polling = true;
  let poller: Promise<void> = Promise.resolve();
  try {
    // On a new stack the CDC topic appears with Debezium's first write.
    if (!(await admin.listTopics()).includes(CDC_TOPIC)) {
      await insert();
      await waitForTopic(kafka, CDC_TOPIC, 60_000);
    }
    // New groups at the CDC topic's end: the normalizer has no backlog to work through first.
    await groupAtEnd(admin, groups.freshNormalizer, CDC_TOPIC);
    await groupAtEnd(admin, groups.cdcObserver, CDC_TOPIC);

    const nPort = await freePort();
    const normalizer = startSluice(['normalizer'], {
      env: {
        SLUICE_NORMALIZER_GROUP_ID: groups.freshNormalizer,
        SLUICE_NORMALIZER_INSTANCE_ID: `bench-${run}`,
        SLUICE_NORMALIZER_EVENTS_TOPIC: freshTopic,
        SLUICE_NORMALIZER_DLQ_TOPIC: `${freshTopic}.normalizer-dlq`,
        SLUICE_NORMALIZER_SUBJECT: `${freshTopic}-value`,
        SLUICE_NORMALIZER_HTTP_PORT: String(nPort),
        SLUICE_LOG_LEVEL: LOG_LEVEL,
      },
      port: nPort,
      stdout: process.env.BENCH_LOG_LEVEL ? 'inherit' : 'ignore',
      label: 'sluice normalizer',
    });
    children.push(normalizer);
    await normalizer.ready(90_000);
    await waitForTopic(kafka, freshTopic, 60_000);

    const ePort = await freePort();
    const exporter = startSluice(['run', benchPipeline('freshness', freshTopic, `${prefix}fresh/`)], {
      env: { SLUICE_LAKE_CONSUMER_GROUP: groups.freshExport, SLUICE_EXPORT_HTTP_PORT: String(ePort), SLUICE_LOG_LEVEL: LOG_LEVEL },
      port: ePort,
      stdout: process.env.BENCH_LOG_LEVEL ? 'inherit' : 'ignore',
      label: 'sluice run (freshness)',
    });
    children.push(exporter);
    await exporter.ready(90_000);

    // Where each event is first seen: the CDC topic (Debezium), the events topic (normalizer, committed), S3 (export).
    const atCdc = new Map<string, number>();
    const atEvents = new Map<string, number>();
    const atS3 = new Map<string, number>();
    consumers.push(await observe(CDC_TOPIC, groups.cdcObserver, async (m) => (JSON.parse(m.key?.toString() ?? '{}') as { event_id?: string }).event_id, atCdc));
    consumers.push(await observe(freshTopic, groups.eventsObserver, async (m) => (m.value ? (await codec.decode<{ id: string }>(m.value)).id : undefined), atEvents));

    const lakePrefix = `${prefix}fresh/lake/agent_events/`;
    const keys = new Set<string>();
    let lists = 0;
    let listMs = 0;
    let unreadable = 0;
    const reading = new Set<Promise<void>>();
    const readIds = async (key: string, seenAt: number): Promise<void> => {
      const o = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const table = readParquetTable(await o.Body!.transformToByteArray(), ['event_id']);
      for (const b of table.batches) {
        const ids = stringColumn(b.getChildAt(0)!.data[0]!);
        for (let i = 0; i < ids.length; i++) {
          const id = ids.key(i);
          const before = atS3.get(id);
          if (before === undefined || before > seenAt) atS3.set(id, seenAt);
        }
      }
    };
    poller = (async () => {
      while (polling) {
        const started = Date.now();
        const objects = await listObjects(s3, bucket, lakePrefix);
        const seenAt = Date.now();
        lists++;
        listMs += seenAt - started;
        for (const o of objects) {
          if (keys.has(o.key)) continue;
          keys.add(o.key);
          // A listed object that cannot be read yet (S3Proxy lists a file while it is being written) is
          // forgotten and taken again from a later listing, with that listing's time.
          const p: Promise<void> = readIds(o.key, seenAt)
            .catch(() => {
              keys.delete(o.key);
              unreadable++;
            })
            .finally(() => reading.delete(p));
          reading.add(p);
        }
        await sleep(100);
      }
      await Promise.all(reading);
    })();
    poller.catch(() => undefined); // a failed listing surfaces where the poller is awaited, not as an unhandled rejection
    const waitFor = async (ids: string[], timeoutMs: number): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        await Promise.race([sleep(100), normalizer.exited, exporter.exited]);
        if (ids.every((id) => atS3.has(id))) return true;
      }
      return false;
    };

    // Warm-up: the first events pay for schema look-ups, JIT and connections; they are not measured.
    const warm = [];
    for (let i = 0; i < 6; i++) warm.push(await insert());
    if (!(await waitFor(warm.map((w) => w.id), 120_000))) throw new Error('warm-up events did not reach S3 within 120 s');
    const warmupMs = Math.max(...warm.map((w) => atS3.get(w.id)! - w.committedAt));
    progress(`  freshness: path warm (first events in S3 after ${(warmupMs / 1000).toFixed(1)} s); inserting one event every 100-200 ms for ${FRESH_SECONDS} s`, true);

    const measured: { id: string; committedAt: number }[] = [];
    const until = Date.now() + FRESH_SECONDS * 1000;
    let lastShown = 0;
    while (Date.now() < until) {
      measured.push(await insert());
      if (Date.now() - lastShown > (isTty ? 1000 : 15_000)) {
        lastShown = Date.now();
        const seen = measured.filter((m) => atS3.has(m.id));
        const lat = distribution(seen.map((m) => atS3.get(m.id)! - m.committedAt));
        progress(`  freshness: ${measured.length} inserted, ${seen.length} in S3${lat.n > 0 ? `, p50 ${lat.p50} ms, max ${lat.max} ms` : ''}`);
      }
      await Promise.race([sleep(100 + Math.random() * 100), normalizer.exited, exporter.exited]);
    }
    await waitFor(measured.map((m) => m.id), 30_000);
    progress(`  freshness: ${measured.length} inserted, ${measured.filter((m) => atS3.has(m.id)).length} in S3`, true);
    polling = false;
    await poller;

    const seen = measured.filter((m) => atS3.has(m.id));
    const staged = seen.filter((m) => atCdc.has(m.id) && atEvents.has(m.id));
    return {
      inserted: measured.length,
      total: distribution(seen.map((m) => atS3.get(m.id)! - m.committedAt)),
      missing: measured.length - seen.length,
      warmupMs,
      stages: {
        debezium: distribution(staged.map((m) => atCdc.get(m.id)! - m.committedAt)),
        normalizer: distribution(staged.map((m) => atEvents.get(m.id)! - atCdc.get(m.id)!)),
        export: distribution(staged.map((m) => atS3.get(m.id)! - atEvents.get(m.id)!)),
      },
      s3: { lists, avgListMs: Math.round(listMs / Math.max(1, lists)), objects: keys.size, unreadable },
    };
  } finally {
    polling = false;
    await poller.catch(() => undefined);
    for (const c of consumers) await c.disconnect().catch(() => undefined);
    for (const child of children.reverse()) await child.stop();
    if (!KEEP) await pool.query(`DELETE FROM staging.agent_events WHERE agent_id LIKE $1`, [`bench-${run}-%`]).catch(() => undefined);
    await pool.end();
    await admin.disconnect();
  }
}

async function cleanup(): Promise<void> {
  rmSync(tmp, { recursive: true, force: true });
  if (KEEP) {
    console.log(`kept: topics ${topics.join(', ')}; groups ${Object.values(groups).join(', ')}; s3://${bucket}/${prefix}`);
    return;
  }
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const ours = topics.filter((t) => existing.has(t));
    if (ours.length > 0) await admin.deleteTopics({ topics: ours }).catch(() => undefined);
    await admin.deleteGroups(Object.values(groups)).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
  for (const subject of subjects) {
    await registry.request('DELETE', `/subjects/${encodeURIComponent(subject)}`).catch(() => undefined);
    await registry.request('DELETE', `/subjects/${encodeURIComponent(subject)}?permanent=true`).catch(() => undefined);
  }
  await deletePrefix(s3, bucket, prefix).catch((error: Error) => console.log(`  (could not delete s3://${bucket}/${prefix}: ${error.message})`));
}

const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

async function main(): Promise<void> {
  console.log(
    `export bench: ${fmt(N)} events on ${PARTITIONS} partitions, ${AGENTS} agents, ${DAYS} days of event time; freshness ${FRESH_SECONDS} s; ` +
      `${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; run ${run}`,
  );
  const summary: Record<string, unknown> = { run, events: N, partitions: PARTITIONS, agents: AGENTS };
  const backlog = await produceBacklog();
  Object.assign(summary, { backlogMiB: Number(mib(backlog.bytes).toFixed(1)), avgRecordBytes: Math.round(backlog.bytes / N), produceRecordsPerSec: rate(N, backlog.ms) });

  // Two passes, each a new group: the faster is the reference (the machine is shared with the broker and S3).
  const passes = [await rawConsume(N, groups.raw), await rawConsume(N, groups.raw2)];
  const raw = passes.reduce((a, b) => (b.ms < a.ms ? b : a));
  const rawRate = rate(N, raw.ms);
  console.log(
    `raw kafkajs consume (new group, eachBatch no-op, the runner's fetch settings: ${mib(pipelineFetchBytes().maxBytes)} MiB a fetch): ${fmt(rawRate)} records/s, ${(mib(backlog.bytes) / (raw.ms / 1000)).toFixed(1)} MiB/s ` +
      `(${(raw.ms / 1000).toFixed(1)} s; the faster of two passes: ${passes.map((p) => fmt(rate(N, p.ms))).join(' and ')} records/s)`,
  );

  const ex = await exportBacklog();
  const exRate = rate(N - ex.firstCount, ex.ms);
  const ratio = exRate / rawRate;
  console.log(
    `export to Parquet on S3 (sluice run, lake.yaml): ${fmt(exRate)} records/s from the first commit to the last (${(ex.ms / 1000).toFixed(1)} s; ` +
      `target >= ${fmt(TARGETS.exportPerSec)}: ${verdict(exRate >= TARGETS.exportPerSec)}), ${(ratio * 100).toFixed(1)} % of the raw consume rate ` +
      `(target >= ${TARGETS.ofRaw * 100} %: ${verdict(ratio >= TARGETS.ofRaw)}); ${fmt(rate(N, ex.totalMs))} records/s including the ${(ex.startupMs / 1000).toFixed(1)} s to the first commit`,
  );
  console.log(
    `  peak RSS of the runner with a ${fmt(N)}-event backlog: ${ex.peakRssMiB} MiB (target <= ${TARGETS.rssMiB} MB: ${verdict(ex.peakRssMiB * 1.048576 <= TARGETS.rssMiB)}); ` +
      `${fmt(ex.metrics.out)} rows out, ${ex.metrics.dlq} DLQ, ${ex.metrics.dropped} dropped, ${fmt(ex.metrics.files)} files, ${mib(ex.metrics.uploadBytes).toFixed(1)} MiB uploaded, ` +
      `${fmt(ex.metrics.flushes)} flushes (avg ${Math.round((ex.metrics.flushSeconds / Math.max(1, ex.metrics.flushes)) * 1000)} ms encode+upload+commit, avg ${fmt(Math.round(ex.metrics.out / Math.max(1, ex.metrics.flushes)))} rows)`,
  );
  console.log(
    `  runner memory at the highest RSS sampled once a second (${ex.memory.rssMiB} MiB): V8 heap ${ex.memory.heapUsedMiB} MiB used of ${ex.memory.heapTotalMiB} MiB, ` +
      `external (Buffers, Arrow/Wasm memory) ${ex.memory.externalMiB} MiB, the rest code, stacks and allocator slack`,
  );
  Object.assign(summary, { memoryAtPeak: ex.memory, rawPassesRecordsPerSec: passes.map((p) => rate(N, p.ms)), rawRecordsPerSec: rawRate, rawMiBPerSec: Number((mib(backlog.bytes) / (raw.ms / 1000)).toFixed(1)), exportRecordsPerSec: exRate, exportOfRaw: Number(ratio.toFixed(3)), exportWithStartRecordsPerSec: rate(N, ex.totalMs), exportStartupMs: ex.startupMs, peakRssMiB: ex.peakRssMiB, ...ex.metrics });

  const lake = await readBack();
  if ('skipped' in lake) console.log(`  lake read back: skipped (${lake.skipped})`);
  else {
    const exact = lake.rows === N && lake.distinct === N && lake.amountSum === backlog.amountSum;
    console.log(
      `  lake read back by DuckDB: ${fmt(lake.rows)} rows, ${fmt(lake.distinct)} distinct event ids, amount sum ${lake.amountSum === backlog.amountSum ? 'exact' : `${lake.amountSum} != ${backlog.amountSum}`}; ` +
        `${fmt(lake.files)} objects, ${mib(lake.bytes).toFixed(1)} MiB (avg ${fmt(Math.round(lake.rows / Math.max(1, lake.files)))} rows a file)${exact ? '' : ' -- NOT EXACTLY ONCE'}`,
    );
    Object.assign(summary, { lakeRows: lake.rows, lakeDistinct: lake.distinct, lakeAmountSumExact: lake.amountSum === backlog.amountSum, lakeObjects: lake.files, lakeMiB: Number(mib(lake.bytes).toFixed(1)) });
  }

  if (FRESH_SECONDS > 0) {
    const f = await freshness();
    const d = (x: Distribution) => `p50 ${x.p50} ms, p99 ${x.p99} ms`;
    console.log(
      `freshness, Postgres commit -> object visible in S3 (batching.period 1 s): p50 ${f.total.p50} ms, p90 ${f.total.p90} ms, p99 ${f.total.p99} ms, max ${f.total.max} ms ` +
        `(target p99 <= ${TARGETS.freshnessP99Ms} ms: ${verdict(f.missing === 0 && f.total.p99 <= TARGETS.freshnessP99Ms)}); ${f.total.n} of ${f.inserted} events measured${f.missing ? `, ${f.missing} NOT SEEN within 30 s` : ''}`,
    );
    console.log(`  by stage: commit -> CDC topic (Debezium) ${d(f.stages.debezium)}; CDC -> events topic, committed (normalizer) ${d(f.stages.normalizer)}; events topic -> S3 listing (export) ${d(f.stages.export)}`);
    console.log(
      `  S3: ${f.s3.objects} objects, listed ${f.s3.lists} times (avg ${f.s3.avgListMs} ms a listing, every 100 ms)${f.s3.unreadable ? `, ${f.s3.unreadable} times a listed object was not readable yet (taken from a later listing)` : ''}; warm-up event ${f.warmupMs} ms`,
    );
    Object.assign(summary, { freshness: f });
  }
  console.log(JSON.stringify(summary));
}

try {
  await main();
} finally {
  await cleanup();
}
