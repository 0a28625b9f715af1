/**
 * The lake after `sluice compact`: the month's report over compacted files next to DuckDB
 * over the same files, and compaction's own throughput and peak RSS.
 *
 * 1. A month (2026-10) of BENCH_LAKE_EVENTS (1,000,000) DOMAIN-shaped events written once
 *    in the export's layout and metadata (event_type=/dt=/<topic>+<partition>+<first
 *    offset>.parquet with x-amz-meta-sluice-first/last-offset; zstd; 6 Kafka partitions;
 *    BENCH_LAKE_FILES (8) files per Kafka partition, type and day, as successive flushes
 *    leave them; 1 % duplicate event ids) under bench/lake-compaction-<N>-<F>/.
 * 2. Compacted with compactLake (the code of `sluice compact`) in a child process: its
 *    time, rows/s and peak RSS (VmHWM); objects and bytes before and after.
 * 3. BENCH_LAKE_RUNS (2) times: generateReport (the report processor's code, S3 reads
 *    included) and DuckDB over the same compacted files on local disk (the S3 server's
 *    filesystem), one after the other, with the load average.
 * BENCH_COMPACT_DAY_EVENTS (0: skipped) writes one day of that many events instead and
 * only measures its compaction (throughput and peak RSS).
 * Run: `BENCH_ONLY=lake-compaction npm run bench` (or build and `node dist/bench/lake-compaction.bench.js`).
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compactLake } from '../processors/compact/compactor.js';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createLogger } from '../processors/core/log/logger.js';
import { ParquetBatchWriter } from '../processors/core/parquet/batch-writer.js';
import { lakeSchemaOfFile } from '../processors/core/pipeline/lake-columns.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { listObjects } from '../processors/core/s3/objects.js';
import { OBJECT_METADATA } from '../processors/export/formats.js';
import { startReaderThreads } from '../processors/reports/lake-month.js';
import { duckdbMonthReport } from './support/duckdb-month.js';
import { timedMonthReport } from './support/lake-report.js';

const DAY_EVENTS = Number(process.env.BENCH_COMPACT_DAY_EVENTS ?? 0);
const N = DAY_EVENTS > 0 ? DAY_EVENTS : Number(process.env.BENCH_LAKE_EVENTS ?? 1_000_000);
const DAYS = DAY_EVENTS > 0 ? 1 : 31;
const FILES = Number(process.env.BENCH_LAKE_FILES ?? 8);
const RUNS = Number(process.env.BENCH_LAKE_RUNS ?? 2);
const MONTH = '2026-10';
const PARTITIONS = 6;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const settings = loadSettings(coreSettings);
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const prefix = process.env.BENCH_LAKE_PREFIX ?? `bench/lake-compaction-${DAY_EVENTS > 0 ? 'day-' : ''}${N}-${FILES}/`;
const TYPES = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
/** The lake's columns, from the shipped pipeline (one source of truth). */
const COLUMNS = lakeSchemaOfFile(join(ROOT, 'connectors/exports/lake.yaml')).columns;

const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

/** Event i: type, agent, customer, amount (some beyond 2^53), time. */
function event(i: number) {
  const type = TYPES[i % 4]!;
  const day = Math.floor(i / 4) % DAYS;
  const money = type !== 'customer_onboarded';
  return {
    event_id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    event_type: type,
    agent_id: `agent-${String((i * 7919) % 2000).padStart(4, '0')}`,
    customer_id: `customer-${i % 200_003}`,
    amount_minor: money ? (i % 1_000_003 === 0 ? 2n ** 53n + BigInt(i) : 100 + (i % 500_000)) : null,
    currency: money ? 'USD' : null,
    occurred_at: Date.UTC(2026, 9, day + 1) * 1000 + (i % 86_400_000) * 1000,
    received_at: Date.UTC(2026, 10, 1) * 1000,
    source: 'web',
    schema_version: 1,
  };
}

/** The lake as the export leaves it: per Kafka partition, type and day, FILES files of successive offsets. */
async function writeLake(): Promise<void> {
  const marker = `${prefix}_complete`;
  if (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: marker })).then(() => true, () => false)) {
    console.log(`lake: reusing s3://${bucket}/${prefix}`);
    return;
  }
  console.log(`lake: writing ${N.toLocaleString('en-US')} events to s3://${bucket}/${prefix} ...`);
  const started = Date.now();
  // Event i goes to Kafka partition p = (i / (4 * DAYS)) % PARTITIONS at offset k = i / (4 * DAYS * PARTITIONS) (its index there).
  const perDir = Math.ceil(N / (PARTITIONS * TYPES.length * DAYS));
  const perFile = Math.ceil(perDir / FILES);
  let written = 0;
  const puts: Promise<unknown>[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    for (let t = 0; t < TYPES.length; t++) {
      for (let day = 0; day < DAYS; day++) {
        for (let f = 0; f < FILES; f++) {
          const writer = new ParquetBatchWriter({ columns: COLUMNS }, { compression: 'zstd' });
          let first = -1;
          let last = -1;
          let rows = 0;
          for (let k = f * perFile; k < Math.min(perDir, (f + 1) * perFile); k++) {
            const i = t + 4 * (day + DAYS * (p + PARTITIONS * k));
            if (i >= N) break;
            const offset = k * 4 * DAYS + t * DAYS + day;
            if (first < 0) first = offset;
            last = offset;
            writer.append(event(i));
            rows++;
            if (k % 100 === 99) {
              writer.append(event(i)); // a duplicate, as a replay would leave
              rows++;
            }
            written++;
          }
          if (first < 0) continue;
          const dt = `${MONTH}-${String(day + 1).padStart(2, '0')}`;
          const key = `${prefix}event_type=${TYPES[t]}/dt=${dt}/bench.events+${p}+${first}.parquet`;
          const body = await writer.finish();
          puts.push(
            s3.send(
              new PutObjectCommand({
                Bucket: bucket,
                Key: key,
                Body: body,
                Metadata: { [OBJECT_METADATA.firstOffset]: String(first), [OBJECT_METADATA.lastOffset]: String(last), [OBJECT_METADATA.records]: String(rows) },
              }),
            ),
          );
          if (puts.length >= 16) await Promise.all(puts.splice(0));
        }
      }
    }
    process.stdout.write(`\r  partition ${p + 1}/${PARTITIONS}: ${written.toLocaleString('en-US')} events`);
  }
  await Promise.all(puts);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: marker, Body: `${written}\n` }));
  console.log(`\n  written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function lakeObjects(): Promise<{ count: number; bytes: number }> {
  const all = (await listObjects(s3, bucket, prefix)).filter((o) => o.key.endsWith('.parquet') && !o.key.includes('/_sluice/'));
  return { count: all.length, bytes: all.reduce((n, o) => n + o.size, 0) };
}

/** The child: compacts the lake once, prints its outcome and peak RSS as JSON. */
async function compactChild(): Promise<void> {
  const started = Date.now();
  const { outcomes, failed } = await compactLake({
    s3,
    bucket,
    prefix,
    schema: { columns: COLUMNS },
    // Env BENCH_COMPACT_SORT_MEMORY (MiB; default the CLI's 256) and BENCH_COMPACT_CONCURRENCY (partitions at once; default 4).
    ...(process.env.BENCH_COMPACT_SORT_MEMORY ? { sortMemoryBytes: Number(process.env.BENCH_COMPACT_SORT_MEMORY) * 1024 * 1024 } : {}),
    partitionConcurrency: Number(process.env.BENCH_COMPACT_CONCURRENCY ?? 4),
    compression: 'zstd',
    targetBytes: 128 * 1024 * 1024,
    rowGroupSize: 131_072,
    graceMs: 0,
    now: () => new Date('2030-01-01T00:00:00Z'),
    pipelineName: 'bench',
    logger: createLogger({ name: 'compact', level: 'warn' }),
    // Every file is committed: the export is done with the whole lake.
    committedOffsets: async () => new Map(Array.from({ length: PARTITIONS }, (_, p) => [p, 2n ** 62n] as const)),
  });
  const ms = Date.now() - started;
  const done = outcomes.filter((x) => !x.skipped);
  const status = readFileSync('/proc/self/status', 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  console.log(
    JSON.stringify({
      ms,
      failed,
      partitions: done.length,
      inputs: done.reduce((n, x) => n + x.inputs, 0),
      outputs: done.reduce((n, x) => n + x.outputs, 0),
      rows: done.reduce((n, x) => n + x.rows, 0),
      inputBytes: done.reduce((n, x) => n + x.inputBytes, 0),
      outputBytes: done.reduce((n, x) => n + x.outputBytes, 0),
      peakRss: hwm,
    }),
  );
}

async function compact(): Promise<void> {
  const before = await lakeObjects();
  const loadBefore = load();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, BENCH_ROLE: 'compact', BENCH_LAKE_PREFIX: prefix }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`compaction child exited with ${code}`))));
  });
  const lines = out.trim().split('\n');
  // The child's log lines (a failed partition's error among them) before its result.
  for (const line of lines.slice(0, -1)) console.log(`  compact: ${line}`);
  const r = JSON.parse(lines.at(-1)!) as { ms: number; failed: number; partitions: number; inputs: number; outputs: number; rows: number; inputBytes: number; outputBytes: number; peakRss: number };
  const after = await lakeObjects();
  if (r.failed > 0) throw new Error(`${r.failed} partitions failed to compact`);
  console.log(
    `compaction: ${r.partitions} partitions, ${r.inputs} -> ${r.outputs} objects, ${r.rows.toLocaleString('en-US')} rows in ${(r.ms / 1000).toFixed(1)} s = ${Math.round(r.rows / (r.ms / 1000)).toLocaleString('en-US')} rows/s; ` +
      `${mib(r.inputBytes)} MiB read, ${mib(r.outputBytes)} MiB written; peak RSS ${mib(r.peakRss)} MiB; load ${loadBefore} -> ${load()}`,
  );
  console.log(`lake: ${before.count} objects (${mib(before.bytes)} MiB) before, ${after.count} objects (${mib(after.bytes)} MiB) after`);
}

/** CPU seconds of this process (every thread: the report's readers, DuckDB's) since `from`. */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(from);
  return ((c.user + c.system) / 1e6).toFixed(2);
};

async function report(): Promise<number> {
  const { ms, cpuMs, lakeFiles } = await timedMonthReport({ s3, s3Settings: settings.s3, bucket, prefix, month: MONTH });
  process.stdout.write(`  report ${(ms / 1000).toFixed(2)} s, ${(cpuMs / 1000).toFixed(2)} s CPU (${lakeFiles} files)`);
  return ms;
}

async function duckdb(dir: string): Promise<number> {
  const cpu = process.cpuUsage();
  const { ms, rows } = await duckdbMonthReport(dir, MONTH);
  if (rows !== 2000) throw new Error(`DuckDB found ${rows} agents, expected 2000`);
  process.stdout.write(`, DuckDB ${(ms / 1000).toFixed(2)} s, ${cpuSince(cpu)} s CPU`);
  return ms;
}

async function main(): Promise<void> {
  console.log(`lake compaction bench: ${N.toLocaleString('en-US')} events over ${DAYS} day(s), ${FILES} files per Kafka partition, type and day; ${cpus().length} cores, ${mib(totalmem())} MiB, Node ${process.version}; load ${load()}`);
  await writeLake();
  await compact();
  if (DAY_EVENTS > 0) return;
  const dir = join(ROOT, '.sluice/data/s3', bucket, prefix);
  if (!existsSync(dir)) throw new Error(`${dir} does not exist: DuckDB reads the S3 server's files on local disk (run against the local stack)`);
  // As `sluice reports` does when it starts (processor.ts): its reader threads start before any report is asked for.
  const threadsFrom = Date.now();
  await startReaderThreads(settings.s3, availableParallelism());
  console.log(`reader threads: ${availableParallelism()} started in ${((Date.now() - threadsFrom) / 1000).toFixed(2)} s (sluice reports starts them when it starts, not in a report)`);
  for (let run = 1; run <= RUNS; run++) {
    const l = load();
    process.stdout.write(`run ${run}: load ${l};`);
    const r = await report();
    const d = await duckdb(dir);
    console.log(`; report / DuckDB = ${(r / d).toFixed(2)}x (target <= 2x at 1M, <= 1.2x at 10M)`);
  }
}

if (process.env.BENCH_ROLE === 'compact') await compactChild();
else await main();
