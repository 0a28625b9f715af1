/**
 * Reports: the time to generate a month's commission report from the Parquet lake, next
 * to DuckDB computing the same aggregates over the same files; and the REST shim's 202
 * answer time under a steady 200 requests/s.
 *
 * 1. A month of BENCH_REPORT_EVENTS (10,000,000) DOMAIN-shaped events is written once in
 *    the lake layout the export produces (event_type=/dt=/<topic>+<partition>+<offset>,
 *    Parquet zstd, the export's own batch writer, 6 Kafka partitions, 1 % duplicate
 *    event ids) under bench/reports-<N>/ and reused by later runs (a _complete marker).
 * 2. generateReport (the report processor's code) over it, S3 reads included; peak RSS.
 * 3. DuckDB (@duckdb/node-api) over the same files on local disk (the S3 server's
 *    filesystem, or a downloaded copy): distinct events, HUGEINT sums, distinct customers.
 * 4. `sluice reports` as its own process, role shim (the REST API alone); BENCH_SHIM_RPS (200) POST /reports/generate per
 *    second for BENCH_SHIM_SECONDS (20) s, each a new request for an empty month; the
 *    client-side answer time p50/p99.
 * Run: `npm run bench` or `tsc -p tsconfig.bench.json && node dist/bench/reports.bench.js`.
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { ParquetBatchWriter } from '../processors/core/parquet/batch-writer.js';
import { lakeSchemaOfFile } from '../processors/core/pipeline/lake-columns.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { DEFAULT_RULES } from '../processors/reports/commission.js';
import { generateReport } from '../processors/reports/generate.js';
import { listKeys } from '../processors/core/s3/objects.js';
import { duckdbMonthReport } from './support/duckdb-month.js';

const N = Number(process.env.BENCH_REPORT_EVENTS ?? 10_000_000);
const RPS = Number(process.env.BENCH_SHIM_RPS ?? 200);
const SHIM_SECONDS = Number(process.env.BENCH_SHIM_SECONDS ?? 20);
const MONTH = '2026-10';
const PARTITIONS = 6;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const settings = loadSettings(coreSettings);
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const prefix = `bench/reports-${N}/`;
const TYPES = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'] as const;
/** The lake's columns, from the shipped pipeline (one source of truth). */
const COLUMNS = lakeSchemaOfFile(join(ROOT, 'connectors/exports/lake.yaml')).columns;

const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000)).toLocaleString('en-US');

/** Event i of the month: type, agent, customer, amount (some beyond 2^53), time. */
function event(i: number) {
  const type = TYPES[i % 4]!;
  const day = i % 31;
  const money = type !== 'customer_onboarded';
  return {
    event_id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    event_type: type,
    agent_id: `agent-${String(i % 2000).padStart(4, '0')}`,
    customer_id: `customer-${i % 200_003}`,
    amount_minor: money ? (i % 1_000_003 === 0 ? 2n ** 53n + BigInt(i) : 100 + (i % 500_000)) : null,
    currency: money ? 'USD' : null,
    occurred_at: Date.UTC(2026, 9, day + 1) * 1000 + (i % 86_400_000) * 1000,
    received_at: Date.UTC(2026, 10, 1) * 1000,
    source: 'web',
    schema_version: 1,
  };
}

async function writeLake(): Promise<void> {
  const marker = `${prefix}_complete`;
  const done = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: marker })).then(() => true, () => false);
  if (done) {
    console.log(`lake: reusing s3://${bucket}/${prefix} (${N.toLocaleString('en-US')} events)`);
    return;
  }
  console.log(`lake: writing ${N.toLocaleString('en-US')} events to s3://${bucket}/${prefix} ...`);
  const started = Date.now();
  // Files as the export cuts them: per Kafka partition, per type and day; 1 % of ids repeated in the next file.
  const perFile = Math.ceil(N / (PARTITIONS * TYPES.length * 31));
  let written = 0;
  let files = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    for (let t = 0; t < TYPES.length; t++) {
      for (let day = 0; day < 31; day++) {
        const writer = new ParquetBatchWriter({ columns: COLUMNS }, { compression: 'zstd' });
        let first = -1;
        for (let k = 0; k < perFile; k++) {
          // i = t + 4 * (day + 31 * (p + PARTITIONS * k)): type t, day `day`, spread over agents.
          const i = t + 4 * (day + 31 * (p + PARTITIONS * k));
          if (i >= N) break;
          if (first < 0) first = i;
          writer.append(event(i));
          if (k % 100 === 99) writer.append(event(i)); // a duplicate, as a replay would leave
          written++;
        }
        if (first < 0) continue;
        const dt = `${MONTH}-${String(day + 1).padStart(2, '0')}`;
        const key = `${prefix}event_type=${TYPES[t]}/dt=${dt}/bench.events+${p}+${first}.parquet`;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await writer.finish() }));
        files++;
      }
    }
    process.stdout.write(`\r  partition ${p + 1}/${PARTITIONS}: ${written.toLocaleString('en-US')} events, ${files} files`);
  }
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: marker, Body: `${written}\n` }));
  console.log(`\n  written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function benchReport(): Promise<{ ms: number; rows: number; files: number; rssMiB: string }> {
  global.gc?.();
  const started = Date.now();
  const result = await generateReport(
    { request_id: `bench-${randomUUID()}`, report_type: 'agent_commissions', month: MONTH, format: 'csv', requested_at: new Date().toISOString() },
    { s3, bucket, lakePrefix: prefix, reportsPrefix: 'bench/reports-out/', currency: 'USD', rules: DEFAULT_RULES, readers: { count: availableParallelism(), s3: settings.s3 } },
  );
  const ms = Date.now() - started;
  return { ms, rows: result.rows, files: result.lake_files, rssMiB: mib(process.resourceUsage().maxRSS * 1024) };
}

async function localCopy(): Promise<{ dir: string; copied: boolean }> {
  const served = join(ROOT, '.sluice/data/s3', bucket, prefix);
  if (existsSync(served)) return { dir: served, copied: false };
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-lake-'));
  for (const type of TYPES) {
    for (const key of await listKeys(s3, bucket, `${prefix}event_type=${type}/dt=${MONTH}-`)) {
      const o = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const path = join(dir, key.slice(prefix.length));
      mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true });
      writeFileSync(path, await o.Body!.transformToByteArray());
    }
  }
  return { dir, copied: true };
}

async function benchShim(): Promise<{ p50: number; p99: number; max: number; sent: number; errors: number; rps: number }> {
  const key = 'bench-reports-key-0123456789';
  const run = randomUUID().slice(0, 8);
  const port = 9600 + Math.floor(Math.random() * 300);
  const child = spawn(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'reports'], {
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: 'warn',
      SLUICE_REPORTS_API_KEY: key,
      SLUICE_REPORTS_HTTP_PORT: String(port),
      SLUICE_REPORTS_REQUESTS_TOPIC: `bench.reports.${run}.requests`,
      SLUICE_REPORTS_STATUS_TOPIC: `bench.reports.${run}.status`,
      SLUICE_REPORTS_DLQ_TOPIC: `bench.reports.${run}.dlq`,
      SLUICE_REPORTS_GROUP_ID: `bench-reports-${run}`,
      SLUICE_REPORTS_LAKE_PREFIX: `bench/empty-${run}/`,
      // The shim alone, as it scales apart from the processors; the requests stay queued on the topic.
      SLUICE_REPORTS_ROLE: 'shim',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 240) throw new Error('sluice reports did not become ready within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    const latencies: number[] = [];
    let errors = 0;
    const total = RPS * SHIM_SECONDS;
    const started = performance.now();
    const inflight: Promise<void>[] = [];
    for (let n = 0; n < total; n++) {
      const due = started + (n * 1000) / RPS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      inflight.push(
        (async () => {
          const t = performance.now();
          const res = await fetch(`${base}/reports/generate`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-api-key': key },
            body: JSON.stringify({ request_id: `bench-${run}-${n}`, report_type: 'agent_commissions', month: '2000-01' }),
          });
          await res.arrayBuffer();
          latencies.push(performance.now() - t);
          if (res.status !== 202) errors++;
        })(),
      );
    }
    await Promise.all(inflight);
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const q = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10) / 10;
    return { p50: q(0.5), p99: q(0.99), max: q(1), sent: total, errors, rps: Math.round(total / seconds) };
  } finally {
    child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  console.log(`reports bench: ${N.toLocaleString('en-US')} events in ${MONTH}; ${cpus().length} cores, ${mib(totalmem())} MiB, Node ${process.version}`);
  await writeLake();
  const report = await benchReport();
  console.log(`report (generateReport, S3 reads included): ${(report.ms / 1000).toFixed(2)} s for ${report.files} files, ${rate(N, report.ms)} events/s, ${report.rows} agents, peak RSS ${report.rssMiB} MiB`);
  const { dir, copied } = await localCopy();
  try {
    const duck = await duckdbMonthReport(dir, MONTH);
    console.log(`DuckDB over the same files on local disk: ${(duck.ms / 1000).toFixed(2)} s, ${duck.rows} agents; report / DuckDB = ${(report.ms / duck.ms).toFixed(2)}x (target <= 2x)`);
  } finally {
    if (copied) rmSync(dir, { recursive: true, force: true });
  }
  const shim = await benchShim();
  console.log(`REST shim POST /reports/generate at ${shim.rps} req/s for ${SHIM_SECONDS} s (${shim.sent} requests, ${shim.errors} not 202): p50 ${shim.p50} ms, p99 ${shim.p99} ms, max ${shim.max} ms (target p99 < 50 ms)`);
}

await main();
