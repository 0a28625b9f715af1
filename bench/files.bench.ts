/**
 * `BENCH_ONLY=files npm run bench`: `sluice files` (issue 16), rows/s from a gzipped CSV
 * object in S3 to rows of staging.agent_events, beside PostgreSQL's own ceiling (COPY of
 * the same rows into the same table) and beside the ingest API's batch rate (POST /events
 * with batches of 1,000, 4 clients at once) for the same number of rows.
 *
 * 1. BENCH_FILE_ROWS (1,000,000) DOMAIN-shaped rows, 1 % of them invalid, as one gzipped
 *    CSV under bench/files-<run>/incoming/bench/.
 * 2. `sluice files` as its own process; the time from its start on the file (ledger
 *    started_at) to finished_at; its peak RSS (VmHWM).
 * 3. COPY ... FROM STDIN (pg-copy-streams) of the same valid rows, other event ids.
 * 4. The ingest API (in this process) with BENCH_API_ROWS (200,000) rows, other event ids.
 * The rows it wrote are deleted afterwards (a DELETE is pruning: the pipeline ignores it).
 */
import './support/stack-env.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import copyStreams from 'pg-copy-streams';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createPool } from '../processors/core/db/pool.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { startIngestApi } from '../processors/ingest-api/ingest-api.js';

const N = Number(process.env.BENCH_FILE_ROWS ?? 1_000_000);
const API_ROWS = Number(process.env.BENCH_API_ROWS ?? 200_000);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const settings = loadSettings(coreSettings);
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const run = randomUUID().slice(0, 8);
const root = `bench/files-${run}/`;
const TYPES = ['deposit_made', 'customer_onboarded', 'withdrawal_made', 'investment_made'] as const;

function eventId(tag: string, i: number): string {
  const h = createHash('md5').update(`${tag}:${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

interface Row {
  event_id: string;
  event_type: string;
  agent_id: string;
  customer_id: string;
  amount_minor: string;
  currency: string;
  occurred_at: string;
  source: string;
}

function row(tag: string, i: number): Row {
  const type = TYPES[i % 4]!;
  const money = type !== 'customer_onboarded';
  return {
    event_id: eventId(tag, i),
    event_type: type,
    agent_id: `agent-${i % 5000}`,
    customer_id: `cust-${tag}-${i}`,
    amount_minor: money ? String(1000 + (i % 99_000)) : '',
    currency: money ? (i % 100 === 99 ? 'EUR' : 'USD') : '',
    occurred_at: `2026-10-${String(1 + (i % 28)).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:00:00Z`,
    source: 'backend',
  };
}

const HEADER = 'event_id,event_type,agent_id,customer_id,amount_minor,currency,occurred_at,source';
const mib = (b: number) => (b / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model}), ${mib(totalmem())} MiB; load average at start ${loadavg().map((l) => l.toFixed(1)).join(' ')} (a shared machine: other stacks run beside this one)`);
  const pool = createPool(settings.database.url, { max: 6 });
  const tags = { file: `f-${run}`, copy: `c-${run}`, api: `a-${run}` };
  try {
    // 1. The file.
    const lines: string[] = [HEADER];
    let valid = 0;
    for (let i = 0; i < N; i++) {
      const r = row(tags.file, i);
      if (r.currency !== 'EUR') valid++;
      lines.push(Object.values(r).join(','));
    }
    const text = `${lines.join('\n')}\n`;
    lines.length = 0;
    const gz = gzipSync(text);
    const key = `${root}incoming/bench/rows-${N}.csv.gz`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: gz }));
    console.log(`file: ${N} rows (${valid} valid), ${mib(text.length)} MiB of CSV, ${mib(gz.length)} MiB gzipped`);

    // 2. sluice files.
    // BENCH_FILE_CPU_PROF=<dir>: a V8 CPU profile of the `sluice files` process, written there when it stops.
    const profile = process.env.BENCH_FILE_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_FILE_CPU_PROF}`] : [];
    // BENCH_FILE_NODE_FLAGS: V8/Node flags for the `sluice files` process (e.g. --max-semi-space-size=2), to measure their effect.
    const flags = (process.env.BENCH_FILE_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const child = spawn(process.execPath, [...profile, ...flags, `${ROOT}bin/sluice.mjs`, 'files'], {
      env: {
        ...process.env,
        SLUICE_LOG_LEVEL: 'warn',
        SLUICE_FILES_SOURCES: 'bench:csv',
        SLUICE_FILES_INCOMING_PREFIX: `${root}incoming/`,
        SLUICE_FILES_PROCESSED_PREFIX: `${root}processed/`,
        SLUICE_FILES_FAILED_PREFIX: `${root}failed/`,
        SLUICE_FILES_REJECTS_PREFIX: `${root}rejects/`,
        SLUICE_FILES_RECEIPTS_PREFIX: `${root}receipts/`,
        SLUICE_FILES_DLQ_TOPIC: `bench-files-${run}.dlq`,
        SLUICE_FILES_POLL_INTERVAL_MS: '500',
        SLUICE_FILES_HTTP_PORT: process.env.BENCH_FILE_HTTP_PORT ?? '0',
        ...(process.env.BENCH_FILE_BATCH ? { SLUICE_FILES_BATCH_ROWS: process.env.BENCH_FILE_BATCH } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    let peak = 0;
    const sample = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {
        /* exited */
      }
    }, 200);
    let done: { started_at: Date; finished_at: Date; rows_accepted: string; rows_rejected: string; status: string } | undefined;
    for (const deadline = Date.now() + 60 * 60_000; Date.now() < deadline && !done; ) {
      await new Promise((r) => setTimeout(r, 1000));
      const { rows } = await pool.query("SELECT started_at, finished_at, rows_accepted, rows_rejected, status FROM staging.file_ingestions WHERE bucket = $1 AND object_key = $2 AND status IN ('succeeded', 'failed')", [bucket, key]);
      done = rows[0];
    }
    clearInterval(sample);
    child.kill('SIGTERM');
    if (!done) throw new Error('the file was not processed within an hour');
    const fileSeconds = (done.finished_at.getTime() - done.started_at.getTime()) / 1000;
    const fileRate = N / fileSeconds;
    console.log(`sluice files: ${done.status}, ${done.rows_accepted} accepted, ${done.rows_rejected} rejected in ${fileSeconds.toFixed(1)} s = ${Math.round(fileRate)} rows/s (hash pass, gunzip, parse, validate, insert, ledger); peak RSS ${mib(peak)} MiB`);

    // 3. COPY of the same number of valid rows.
    const client = await pool.connect();
    let copySeconds: number;
    try {
      const started = performance.now();
      const copy = client.query(copyStreams.from('COPY staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source) FROM STDIN (FORMAT csv)'));
      async function* csv(): AsyncGenerator<string> {
        let chunk: string[] = [];
        for (let i = 0, n = 0; n < valid; i++) {
          const r = row(tags.copy, i);
          if (r.currency === 'EUR') continue;
          n++;
          chunk.push(Object.values(r).join(','));
          if (chunk.length === 5000) {
            yield `${chunk.join('\n')}\n`;
            chunk = [];
          }
        }
        if (chunk.length > 0) yield `${chunk.join('\n')}\n`;
      }
      await pipeline(Readable.from(csv()), copy);
      copySeconds = (performance.now() - started) / 1000;
    } finally {
      client.release();
    }
    const copyRate = valid / copySeconds;
    console.log(`COPY: ${valid} rows in ${copySeconds.toFixed(1)} s = ${Math.round(copyRate)} rows/s`);

    // 4. The ingest API, batches of 1,000, 4 clients.
    const apiKey = randomUUID().replace(/-/g, '');
    const api = await startIngestApi({ env: { ...process.env, SLUICE_INGEST_API_KEY: apiKey, SLUICE_LOG_LEVEL: 'warn' }, port: 0 });
    let apiSeconds: number;
    try {
      const batches = Math.ceil(API_ROWS / 1000);
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let b = next++; b < batches; b = next++) {
            const events = Array.from({ length: 1000 }, (_, j) => {
              const r = row(tags.api, b * 1000 + j);
              const e: Record<string, string> = { ...r, currency: r.currency === 'EUR' ? 'USD' : r.currency };
              for (const k of Object.keys(e)) if (e[k] === '') delete e[k];
              return e;
            });
            const res = await fetch(`${api.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey }, body: JSON.stringify(events) });
            if (res.status !== 200 && res.status !== 201) throw new Error(`ingest API answered ${res.status}: ${await res.text()}`);
          }
        }),
      );
      apiSeconds = (performance.now() - started) / 1000;
    } finally {
      await api.close();
    }
    const apiRate = API_ROWS / apiSeconds;
    console.log(`ingest API: ${API_ROWS} rows in batches of 1,000 (4 clients) in ${apiSeconds.toFixed(1)} s = ${Math.round(apiRate)} rows/s`);
    console.log(`sluice files vs COPY: ${((fileRate / copyRate) * 100).toFixed(0)} % (target >= 50 %); vs the ingest API: ${(fileRate / apiRate).toFixed(2)}x; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  } finally {
    for (const tag of Object.values(tags)) await pool.query('DELETE FROM staging.agent_events WHERE customer_id LIKE $1', [`cust-${tag}-%`]).catch(() => undefined);
    await pool.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
