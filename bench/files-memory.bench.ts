/**
 * `BENCH_ONLY=files-memory npm run bench`: where `sluice files`' memory goes while it reads
 * one file. BENCH_FILE_ROWS (1,000,000) rows of the soak's shape (test/support/file-drops.ts,
 * 1 in 1,000 invalid) as one gzipped CSV; a fresh `sluice files` with the heap limits it
 * gives itself; every BENCH_SAMPLE_MS (150) its RSS split from /proc (VmRSS, VmHWM,
 * RssAnon, RssFile) beside its own gauges from /metrics: the ingest thread's V8 heap and
 * external memory, the parsing thread's (sluice_files_parse_thread_heap_bytes, reported
 * every second), and the ledger's phase (hash pass, committed rows). Prints a line a second
 * and the sample at which the peak (VmHWM) was reached; BENCH_TRACE_FILE=<path> keeps every
 * sample. Run it for 100k and 1M rows to compare the peaks (issue 16: flat within 20 MB).
 */
import './support/stack-env.js';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createPool } from '../processors/core/db/pool.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { filesEnv, generateCsv, put } from '../test/support/file-drops.js';

const N = Number(process.env.BENCH_FILE_ROWS ?? 1_000_000);
const EVERY_MS = Number(process.env.BENCH_SAMPLE_MS ?? 150);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const settings = loadSettings(coreSettings);
const s3 = createS3Client(settings.s3);
const run = randomUUID().slice(0, 8);
const root = `bench/files-memory-${run}/`;
const mib = (b: number) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '-');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function kb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

const GAUGES = {
  heapUsed: 'sluice_nodejs_heap_size_used_bytes',
  heapTotal: 'sluice_nodejs_heap_size_total_bytes',
  external: 'sluice_nodejs_external_memory_bytes',
  parseUsed: 'sluice_files_parse_thread_heap_bytes{kind="used"}',
  parseTotal: 'sluice_files_parse_thread_heap_bytes{kind="total"}',
  parseExternal: 'sluice_files_parse_thread_heap_bytes{kind="external"}',
} as const;

/** The gauges above from the process's /metrics (its processor label dropped); none while it starts. */
async function gauges(port: number): Promise<Partial<Record<keyof typeof GAUGES, number>>> {
  const values = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m) continue;
      const labels = (m[2] ?? '').replace(/,?processor="[^"]*"/, '').replace(/^\{,/, '{');
      values.set(`${m[1]}${labels === '{}' ? '' : labels}`, Number(m[3]));
    }
  } catch {
    return {};
  }
  return Object.fromEntries(Object.entries(GAUGES).map(([k, name]) => [k, values.get(name) ?? NaN]));
}

interface Sample {
  t: number;
  phase: string;
  rss: number;
  hwm: number;
  anon: number;
  file: number;
  g: Partial<Record<keyof typeof GAUGES, number>>;
}

const show = (s: Sample) =>
  `${s.t.toFixed(2).padStart(6)} s  ${s.phase.padEnd(14)} RSS ${mib(s.rss).padStart(6)} (peak ${mib(s.hwm).padStart(6)}; anon ${mib(s.anon).padStart(6)}, file ${mib(s.file).padStart(5)})` +
  `  ingest thread heap ${mib(s.g.heapUsed ?? NaN)}/${mib(s.g.heapTotal ?? NaN)} external ${mib(s.g.external ?? NaN)}` +
  `  parsing thread heap ${mib(s.g.parseUsed ?? NaN)}/${mib(s.g.parseTotal ?? NaN)} external ${mib(s.g.parseExternal ?? NaN)}`;

async function main(): Promise<void> {
  const pool = createPool(settings.database.url, { max: 2 });
  try {
    const file = generateCsv({ run, rows: N, from: 0, invalidEvery: 1000 });
    const gz = gzipSync(file.text);
    const key = `${root}incoming/partner/rows-${N}.csv.gz`;
    await put(s3, settings.s3.bucket, key, gz);
    console.log(`file: ${N} rows, ${mib(file.text.length)} MiB of CSV, ${mib(gz.length)} MiB gzipped; load average ${load()}`);
    const port = await freePort();
    const env = { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...filesEnv(root, { sources: 'partner:csv', dlqTopic: `bench-files-memory-${run}.dlq`, httpPort: port, pollMs: 500 }) };
    const child = spawn(process.execPath, [`${ROOT}bin/sluice.mjs`, 'files'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const started = performance.now();
    const samples: Sample[] = [];
    let phase = 'starting';
    let printed = -1;
    try {
      for (let n = 0; !['succeeded', 'failed'].includes(phase) && performance.now() - started < 30 * 60_000; n++) {
        await new Promise((r) => setTimeout(r, EVERY_MS));
        let status: string;
        try {
          status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        } catch {
          throw new Error('sluice files exited before the file was done');
        }
        const g = await gauges(port);
        if (n % 3 === 0) {
          const { rows } = await pool.query('SELECT status, sha256, committed_rows FROM staging.file_ingestions WHERE bucket = $1 AND object_key = $2', [settings.s3.bucket, key]);
          const r = rows[0];
          if (r) phase = r.status === 'succeeded' || r.status === 'failed' ? r.status : r.sha256 === null ? 'hash pass' : `rows ${r.committed_rows}`;
        }
        const s: Sample = { t: (performance.now() - started) / 1000, phase, rss: kb(status, 'VmRSS'), hwm: kb(status, 'VmHWM'), anon: kb(status, 'RssAnon'), file: kb(status, 'RssFile'), g };
        samples.push(s);
        if (Math.floor(s.t) > printed) {
          printed = Math.floor(s.t);
          console.log(show(s));
        }
      }
    } finally {
      child.kill('SIGTERM');
    }
    if (process.env.BENCH_TRACE_FILE) writeFileSync(process.env.BENCH_TRACE_FILE, `${samples.map(show).join('\n')}\n`);
    const peak = samples.reduce((a, b) => (b.hwm > a.hwm ? b : a));
    const reached = samples.find((s) => s.hwm === peak.hwm)!;
    console.log(`sluice files, ${N} rows: ${phase}; peak RSS ${mib(peak.hwm)} MiB, first sampled at ${reached.t.toFixed(2)} s (${reached.phase}):\n${show(reached)}\nload average at the end ${load()}`);
  } finally {
    await pool.end();
  }
}

await main();
