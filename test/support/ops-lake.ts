import type { S3Client } from '@aws-sdk/client-s3';
import { download, listKeys } from '../../processors/core/s3/objects.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka } from '../../processors/core/kafka/client.js';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { AgentEventProducer, EVENT_TYPES, lakePipelineFile as sharedLakePipelineFile, type AgentEvent, type EventType } from './agent-events.js';
import { ROOT } from './build.js';
import { ParquetReader } from './parquet-reader.js';
import { generateReport } from '../../processors/reports/generate.js';
import { loadRules } from '../../processors/reports/rules.js';
import { hostPortOf, requireServer } from './servers.js';

/**
 * Shared by the operations tests (ops-*.test.ts): DOMAIN-shaped Avro events on a topic of
 * the test's own, a copy of the shipped lake.yaml pointed at the test's topic / DLQ / key
 * prefix, the lake read back with DuckDB as a set of (event_id, values), and the `sluice`
 * CLI run as a child process (the operator's view: exit code, stdout, stderr).
 */

/** An operations test's event: every optional field of the envelope set. */
export type OpsEvent = Required<AgentEvent>;

/** A uuid unique to the run (`run` is 8 hex digits) and the index. */
export function eventIdOf(run: string, i: number): string {
  return `${run}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

/**
 * Event i of a run: four types, 23 agents, October 2026 (days 1-5, so few lake partitions)
 * plus every 50th on 1 November (another month), some amounts beyond 2^53. `octoberDay`
 * puts it on that day of October instead (a month of traffic, day by day).
 */
export function opsEvent(run: string, i: number, octoberDay?: number): OpsEvent {
  const type = EVENT_TYPES[i % 4]!;
  const november = octoberDay === undefined && i % 50 === 7;
  const occurredMs = november ? Date.UTC(2026, 10, 1, i % 24, i % 60, i % 60) : Date.UTC(2026, 9, octoberDay ?? 1 + (i % 5), i % 24, (i * 7) % 60, i % 60);
  return {
    eventId: eventIdOf(run, i),
    type,
    agentId: `agent-${(i * 7) % 23}`,
    customerId: `customer-${i % 211}`,
    amount: type === 'customer_onboarded' ? null : i % 333 === 1 ? 2n ** 53n + BigInt(i) : BigInt(100 + ((i * 7919) % 1_000_000)),
    occurredAtMicros: BigInt(occurredMs) * 1000n + BigInt(i % 1000),
    receivedAtMicros: BigInt(occurredMs) * 1000n + 2_000_000n + BigInt(i),
    source: i % 3 === 0 ? 'mobile' : 'web',
    sessionId: i % 5 === 0 ? `session-${i}` : null,
    correlationId: i % 7 === 0 ? `corr-${i}` : null,
    product: type === 'investment_made' ? `fund-${i % 3}` : null,
    metadata: i % 11 === 0 ? JSON.stringify({ note: `n${i}`, product: type === 'investment_made' ? `fund-${i % 3}` : undefined }) : null,
  };
}

/** The lake row of an event as `lakeValues` reads it back (money and times as exact text). */
export function expectedLakeValues(e: OpsEvent): string {
  const money = e.type !== 'customer_onboarded';
  return JSON.stringify([
    e.type,
    e.agentId,
    e.customerId,
    e.amount === null ? null : e.amount.toString(),
    money ? 'USD' : null,
    e.occurredAtMicros.toString(),
    e.receivedAtMicros.toString(),
    e.source,
    e.sessionId,
    e.correlationId,
    e.product,
    e.metadata,
    1,
  ]);
}

export { AgentEventProducer, EVENT_TYPES, type EventType };

/** The shipped lake.yaml for an operations test; the group stays `${SLUICE_LAKE_CONSUMER_GROUP:...}` (set it in the env), as an operator runs the shipped file. */
export function lakePipelineFile(o: { name: string; topic: string; dlq: string; prefix: string; period?: string; count?: number; failAgent?: string }): string {
  return sharedLakePipelineFile(o);
}

export interface LakeContents {
  /** event_id -> values (JSON text); the last one read when an event_id repeats. */
  values: Map<string, string>;
  /** Rows read in all (duplicates included). */
  rows: number;
  /** event_ids seen more than once. */
  duplicates: string[];
  keys: string[];
}

/** The lake under a prefix read back with DuckDB (an independent Parquet reader). */
export async function readLake(s3: S3Client, bucket: string, prefix: string, reader: ParquetReader): Promise<LakeContents> {
  const keys = (await listKeys(s3, bucket, prefix)).filter((k) => k.endsWith('.parquet'));
  const contents: LakeContents = { values: new Map(), rows: 0, duplicates: [], keys };
  if (keys.length === 0) return contents;
  const paths = await localCopies(s3, bucket, keys, reader);
  const rows = await reader.query(
    `SELECT event_id, event_type, agent_id, customer_id, amount_minor::VARCHAR AS amount_minor, currency,
            epoch_us(occurred_at)::VARCHAR AS occurred_at, epoch_us(received_at)::VARCHAR AS received_at,
            source, session_id, correlation_id, product, metadata, schema_version
       FROM read_parquet([${paths.map((p) => `'${p}'`).join(', ')}])`,
  );
  for (const r of rows) {
    const id = String(r.event_id);
    if (contents.values.has(id)) contents.duplicates.push(id);
    contents.values.set(
      id,
      JSON.stringify([r.event_type, r.agent_id, r.customer_id, r.amount_minor, r.currency, r.occurred_at, r.received_at, r.source, r.session_id, r.correlation_id, r.product, r.metadata, r.schema_version]),
    );
    contents.rows++;
  }
  return contents;
}

/** Local copies of lake objects for DuckDB (the reader's files), in the keys' order: `read_parquet([paths])` reads them as they were. */
export async function localCopies(s3: S3Client, bucket: string, keys: readonly string[], reader: ParquetReader): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < keys.length; i += 16) {
    const bodies = await Promise.all(keys.slice(i, i + 16).map((key) => download(s3, bucket, key)));
    for (const body of bodies) {
      reader.table(body);
      paths.push(reader.lastPath);
    }
  }
  return paths;
}

/** The month's commission report (CSV text) over a lake prefix, through the report processor's own code. */
export async function lakeMonthReport(s3: S3Client, bucket: string, o: { lakePrefix: string; reportsPrefix: string; requestId: string }): Promise<string> {
  const result = await generateReport(
    { request_id: o.requestId, report_type: 'agent_commissions', month: '2026-10', format: 'csv', requested_at: new Date().toISOString() },
    { s3, bucket, lakePrefix: o.lakePrefix, reportsPrefix: o.reportsPrefix, currency: 'USD', rules: loadRules() },
  );
  return Buffer.from(await download(s3, bucket, result.key)).toString('utf8');
}

/** partition -> committed offset ('-1' when none), as kafkajs admin reports it. */
export async function committedOffsets(admin: Admin, group: string, topic: string): Promise<Map<number, string>> {
  const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map((t?.partitions ?? []).map((p) => [p.partition, p.offset]));
}

/** partition -> high watermark. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, string>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
}

/** Resolves when the group's committed offset equals the log end on every partition. */
export async function waitCaughtUp(admin: Admin, group: string, topic: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const ends = await endOffsets(admin, topic);
    const committed = await committedOffsets(admin, group, topic);
    if ([...ends].every(([p, end]) => committed.get(p) === end)) return;
    last = JSON.stringify({ ends: Object.fromEntries(ends), committed: Object.fromEntries(committed) });
    if (Date.now() > deadline) throw new Error(`group ${group} did not commit ${topic} to its end within ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Compiles processors/ to dist/ when a source file is newer than the build, so the CLI
 * child processes run the code under test.
 */
export function ensureBuilt(): void {
  const main = join(ROOT, 'dist/processors/cli/main.js');
  const built = existsSync(main) ? statSync(main).mtimeMs : 0;
  const newest = (dir: string): number => {
    let m = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) m = Math.max(m, newest(path));
      else if (entry.name.endsWith('.ts')) m = Math.max(m, statSync(path).mtimeMs);
    }
    return m;
  };
  if (built > newest(join(ROOT, 'processors'))) return;
  const result = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(main)) throw new Error(`the build did not produce ${main}:\n${result.stdout}${result.stderr}`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  pid: number;
  /** Output so far. */
  output(): { stdout: string; stderr: string };
  kill(signal: NodeJS.Signals): void;
  done: Promise<CliResult>;
}

/** Starts `node bin/sluice.mjs ARGS` with the env (quiet logs unless the env says otherwise). */
export function startCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): CliRun {
  const child = spawn(process.execPath, [join(ROOT, 'bin/sluice.mjs'), ...args], {
    cwd: ROOT,
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', NODE_NO_WARNINGS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid!, output: () => ({ stdout, stderr }), kill: (s) => child.kill(s), done };
}

export function cli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return startCli(args, env, timeoutMs).done;
}

/**
 * requireServer, given a while: other suites on the shared stack stop and restart servers
 * (S3 outages, broker restarts), so a server that is down now may be back in seconds. Still
 * fails (never skips), naming the server, when it stays down.
 */
export async function requireServerWithin(name: string, hostPort: string, withinMs = 60_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      await requireServer(name, hostPort);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * The lake tests' start: Kafka, the registry and S3 answering (each given a minute: CI runs
 * these right after the demo restarted nothing, but a test before may have restarted one),
 * the CLI built, a connected admin and a Parquet reader.
 */
export async function connectLakeStack(settings: CoreSettings): Promise<{ kafka: Kafka; admin: Admin; reader: ParquetReader }> {
  await requireServerWithin('Kafka', settings.kafka.brokers[0]!);
  await requireServerWithin('Schema registry', hostPortOf(settings.registry.url));
  await requireServerWithin('S3', hostPortOf(settings.s3.endpoint!));
  ensureBuilt();
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  const admin = kafka.admin();
  await admin.connect();
  return { kafka, admin, reader: await ParquetReader.open() };
}
