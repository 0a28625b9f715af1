/**
 * The first report of a fresh process, with and without the reader threads started ahead
 * (startReaderThreads, as `sluice reports` does when it starts), against DuckDB over the same
 * files, and the third report of the same process for comparison.
 *
 * Reads the compacted 1M-event month that `bench/lake-compaction.bench.ts` leaves
 * (bench/lake-compaction-<BENCH_LAKE_EVENTS>-8/, 124 objects): run that bench once first.
 * BENCH_FIRST_PAIRS (6) pairs of fresh child processes, one cold and one with threads started
 * ahead, interleaved so that both see the same load; each child runs 3 reports, DuckDB after
 * each, and prints wall time, the process's CPU time (every thread) and the ratio of each.
 * Run: build, `npx tsc -p tsconfig.bench.json`, then `node dist/bench/lake-first-report.bench.js`.
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { startReaderThreads } from '../processors/reports/lake-month.js';
import { duckdbMonthReport } from './support/duckdb-month.js';
import { timedMonthReport } from './support/lake-report.js';

const N = Number(process.env.BENCH_LAKE_EVENTS ?? 1_000_000);
const PAIRS = Number(process.env.BENCH_FIRST_PAIRS ?? 6);
const RUNS = 3;
const MONTH = '2026-10';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const settings = loadSettings(coreSettings);
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const prefix = `bench/lake-compaction-${N}-8/`;

interface Run {
  ms: number;
  cpuMs: number;
  duckdbMs: number;
}
interface Child {
  ahead: boolean;
  threadsMs: number | undefined;
  load: number;
  runs: Run[];
}

async function child(): Promise<void> {
  const ahead = process.env.BENCH_AHEAD === '1';
  const load = loadavg()[0]!;
  let threadsMs: number | undefined;
  if (ahead) {
    const from = performance.now();
    await startReaderThreads(settings.s3, availableParallelism());
    threadsMs = Math.round(performance.now() - from);
  }
  const dir = join(ROOT, '.sluice/data/s3', bucket, prefix);
  const runs: Run[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const { ms, cpuMs } = await timedMonthReport({ s3, s3Settings: settings.s3, bucket, prefix, month: MONTH });
    const duck = await duckdbMonthReport(dir, MONTH);
    if (duck.rows !== 2000) throw new Error(`DuckDB found ${duck.rows} agents, expected 2000`);
    runs.push({ ms: Math.round(ms), cpuMs: Math.round(cpuMs), duckdbMs: duck.ms });
  }
  console.log(JSON.stringify({ ahead, threadsMs, load, runs } satisfies Child));
}

function spawnChild(ahead: boolean): Promise<Child> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, BENCH_ROLE: 'child', BENCH_AHEAD: ahead ? '1' : '0' }, stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    c.stdout.on('data', (d: Buffer) => (text += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text.trim().split('\n').at(-1)!) as Child) : reject(new Error(`child exited with ${code}`))));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (!(await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}_complete` })).then(() => true, () => false))) {
    throw new Error(`no lake at s3://${bucket}/${prefix}: run bench/lake-compaction.bench.ts with BENCH_LAKE_EVENTS=${N} first`);
  }
  if (!existsSync(join(ROOT, '.sluice/data/s3', bucket, prefix))) throw new Error('DuckDB reads the S3 server\'s files on local disk: run against the local stack');
  console.log(`first report of a fresh process: ${PAIRS} pairs (cold, threads started ahead), ${availableParallelism()} reader threads, ${N.toLocaleString('en-US')} events; load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const all: Child[] = [];
  for (let i = 0; i < PAIRS; i++) {
    for (const ahead of [false, true]) {
      const c = await spawnChild(ahead);
      all.push(c);
      const r = c.runs.map((x) => `${(x.ms / 1000).toFixed(2)} s ${(x.cpuMs / 1000).toFixed(2)} s CPU ${(x.ms / x.duckdbMs).toFixed(2)}x`).join(' | ');
      console.log(`  ${ahead ? `ahead (threads ${c.threadsMs} ms)` : 'cold'}: load ${c.load.toFixed(1)}; ${r}`);
    }
  }
  for (const ahead of [false, true]) {
    const g = all.filter((c) => c.ahead === ahead);
    for (const run of [0, 2]) {
      const rs = g.map((c) => c.runs[run]!);
      console.log(
        `${ahead ? 'ahead' : 'cold '} run ${run + 1}: report median ${(median(rs.map((r) => r.ms)) / 1000).toFixed(2)} s, ${(median(rs.map((r) => r.cpuMs)) / 1000).toFixed(2)} s CPU; ` +
          `DuckDB median ${(median(rs.map((r) => r.duckdbMs)) / 1000).toFixed(2)} s; ratio median ${median(rs.map((r) => r.ms / r.duckdbMs)).toFixed(2)}x`,
      );
    }
  }
}

if (process.env.BENCH_ROLE === 'child') await child();
else await main();
