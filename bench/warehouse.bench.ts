/**
 * The sql output (issue 13), against the local stack's `warehouse` database:
 *   1. backlog: BENCH_WAREHOUSE_EVENTS (default 1,000,000; the 5,000,000 with the env)
 *      DOMAIN-shaped Avro events on a new 6-partition topic (as the export bench);
 *   2. warehouse: `sluice run` with the shipped connectors/exports/warehouse.yaml (only the
 *      topic, DLQ and schema replaced) on that backlog: rows/s from the first stored offset to
 *      the last (sluice_offsets against the topic's end offsets, every 250 ms), peak RSS;
 *   3. the ceiling: the same rows COPY'd out to a file, then COPY'd from that file into an
 *      empty table of the same definition (LIKE ... INCLUDING ALL: primary key too), timed;
 *   4. S3 (BENCH_WAREHOUSE_S3=0 skips it): the shipped lake.yaml on the same backlog, records/s
 *      and peak RSS, measured the same way (group offsets).
 * Target: the warehouse export at >= 50 % of the COPY ceiling.
 * Profiling: BENCH_WAREHOUSE_LOG_LEVEL=debug prints each flush's phases; BENCH_WAREHOUSE_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the runner.
 * Run: `BENCH_ONLY=warehouse npm run bench`, or `tsc -p tsconfig.bench.json && node dist/bench/warehouse.bench.js` with the stack up.
 */
import './support/stack-env.js';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Admin } from 'kafkajs';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createPool } from '../processors/core/db/pool.js';
import { sleep } from '../processors/core/errors/retry.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { RegistryRestClient } from '../processors/core/registry/ccompat.js';
import { produceAgentEventBacklog } from './support/agent-events.js';
import { freePort, memoryKb, ROOT, startSluice } from './support/processes.js';

const N = Number(process.env.BENCH_WAREHOUSE_EVENTS ?? 1_000_000);
const WITH_S3 = process.env.BENCH_WAREHOUSE_S3 !== '0';
/** For finding where the time goes: the runner's log level with its lines on stdout (debug: one `flushed` line a flush, with its phases), and node flags (e.g. --cpu-prof). */
const LOG_LEVEL = process.env.BENCH_WAREHOUSE_LOG_LEVEL;
const NODE_ARGS = (process.env.BENCH_WAREHOUSE_NODE_ARGS ?? '').split(' ').filter(Boolean);
const PARTITIONS = 6;
const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: 'sluice-bench' });
const registry = new RegistryRestClient(settings.registry.url, settings.registry);
const url = process.env.SLUICE_WAREHOUSE_URL;
if (!url) throw new Error('SLUICE_WAREHOUSE_URL is not set: infra/local/stack up postgres writes it to .sluice/stack.env');
const pool = createPool(url, { max: 2 });
const run = randomUUID().slice(0, 8);
const topic = `bench.warehouse.${run}.events`;
const schema = `bench_${run}`;
const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-warehouse-'));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function produceBacklog(): Promise<void> {
  const started = Date.now();
  await produceAgentEventBacklog(kafka, registry, { topic, partitions: PARTITIONS, total: N });
  console.log(`  backlog: ${fmt(N)} events produced in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function pipelineFile(base: 'warehouse' | 'lake'): string {
  let text = readFileSync(`${ROOT}connectors/exports/${base}.yaml`, 'utf8');
  const swap = (from: RegExp, to: string) => {
    if (!from.test(text)) throw new Error(`connectors/exports/${base}.yaml: ${from} not found; update bench/warehouse.bench.ts`);
    text = text.replace(from, to);
  };
  swap(/topics: \[sluice\.agent-events\]/, `topics: [${topic}]`);
  swap(/consumer_group: \$\{[A-Z_]+:[a-z-]+\}/, `consumer_group: bench-${base}-${run}`);
  swap(/topic: sluice\.agent-events\.export[a-z-]*\.dlq/, `topic: ${topic}.${base}.dlq`);
  if (base === 'warehouse') swap(/table: analytics\./, `table: ${schema}.`);
  else swap(/path: lake\/agent_events\//, `path: bench/warehouse-${run}/lake/`);
  const file = join(tmp, `${base}-${run}.yaml`);
  writeFileSync(file, text);
  return file;
}

async function endTotal(admin: Admin): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0);
}

/** `sluice run` on the backlog until `done()` reaches the end offsets: rows/s from the first progress, peak RSS. */
async function exportRun(base: 'warehouse' | 'lake', done: (admin: Admin) => Promise<number>): Promise<{ perSec: number; seconds: number; peakRssMiB: number }> {
  const admin = kafka.admin();
  await admin.connect();
  const target = await endTotal(admin);
  const port = await freePort();
  const proc = startSluice(['run', pipelineFile(base)], {
    env: { SLUICE_EXPORT_HTTP_PORT: String(port), SLUICE_LOG_LEVEL: LOG_LEVEL ?? 'warn' },
    port,
    label: `sluice run (${base})`,
    ...(LOG_LEVEL ? { stdout: 'inherit' as const } : {}),
    ...(NODE_ARGS.length > 0 ? { nodeArgs: NODE_ARGS } : {}),
  });
  let peakKb = 0;
  let first = 0;
  let firstCount = 0;
  try {
    for (;;) {
      await Promise.race([sleep(250), proc.exited]);
      peakKb = Math.max(peakKb, memoryKb(proc.pid, 'VmRSS'));
      const n = await done(admin);
      if (!first && n > 0) {
        first = Date.now();
        firstCount = n;
      }
      if (n >= target) break;
    }
    peakKb = Math.max(peakKb, memoryKb(proc.pid, 'VmHWM'));
    const ms = Date.now() - first;
    return { perSec: (target - firstCount) / (ms / 1000), seconds: ms / 1000, peakRssMiB: Math.round(peakKb / 1024) };
  } finally {
    await proc.stop();
    await admin.disconnect();
  }
}

async function storedTotal(pipeline: string): Promise<number> {
  const { rows } = await pool.query<{ n: string | null }>('SELECT sum(next_offset)::text AS n FROM sluice_offsets WHERE pipeline = $1 AND topic = $2', [pipeline, topic]).catch(() => ({ rows: [{ n: null }] }));
  return Number(rows[0]?.n ?? 0);
}

async function committedTotal(admin: Admin, group: string): Promise<number> {
  const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return (t?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
}

/** The same rows out to a file and in again, into an empty table of the same definition: the database's own ceiling. */
async function copyCeiling(): Promise<{ perSec: number; seconds: number; fileMiB: number }> {
  const file = join(tmp, 'rows.copy');
  const client = await pool.connect();
  try {
    await pipeline(client.query(copyTo(`COPY ${schema}.agent_events TO STDOUT`)), createWriteStream(file));
    await client.query(`CREATE TABLE ${schema}.ceiling (LIKE ${schema}.agent_events INCLUDING ALL)`);
    const started = Date.now();
    await pipeline(createReadStream(file), client.query(copyFrom(`COPY ${schema}.ceiling FROM STDIN`)));
    const ms = Date.now() - started;
    const rows = Number((await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.ceiling`)).rows[0]!.n);
    return { perSec: rows / (ms / 1000), seconds: ms / 1000, fileMiB: statSync(file).size / 2 ** 20 };
  } finally {
    client.release();
  }
}

async function main(): Promise<void> {
  console.log(`warehouse bench: ${fmt(N)} events; ${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  await produceBacklog();
  const warehouse = await exportRun('warehouse', () => storedTotal(`warehouse-${run}`));
  const rows = Number((await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.agent_events`)).rows[0]!.n);
  if (rows !== N) throw new Error(`the warehouse holds ${rows} rows, expected ${N}`);
  console.log(`  warehouse (sql output, MERGE): ${fmt(warehouse.perSec)} rows/s over ${warehouse.seconds.toFixed(1)} s, peak RSS ${warehouse.peakRssMiB} MiB`);
  const ceiling = await copyCeiling();
  console.log(`  COPY ceiling (same rows from a ${ceiling.fileMiB.toFixed(0)} MiB file into the same table definition): ${fmt(ceiling.perSec)} rows/s over ${ceiling.seconds.toFixed(1)} s`);
  console.log(`  warehouse / COPY = ${((warehouse.perSec / ceiling.perSec) * 100).toFixed(0)} % (target >= 50 %)`);
  if (WITH_S3) {
    const s3 = await exportRun('lake', (admin) => committedTotal(admin, `bench-lake-${run}`));
    console.log(`  S3 output (lake.yaml, Parquet zstd): ${fmt(s3.perSec)} records/s over ${s3.seconds.toFixed(1)} s, peak RSS ${s3.peakRssMiB} MiB`);
  }
  console.log(`  load at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

try {
  await main();
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await pool.query('DELETE FROM sluice_offsets WHERE topic = $1', [topic]).catch(() => undefined);
  await pool.end();
  rmSync(tmp, { recursive: true, force: true });
  const admin = kafka.admin();
  await admin.connect();
  // Only those that exist (the lake's DLQ does not without the S3 run): kafkajs retries a delete of a missing topic for a minute.
  const existing = new Set(await admin.listTopics());
  const topics = [topic, `${topic}.warehouse.dlq`, `${topic}.lake.dlq`].filter((t) => existing.has(t));
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
}
