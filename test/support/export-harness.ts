import { GetObjectCommand } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka } from '../../processors/core/kafka/client.js';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { listKeys } from '../../processors/core/s3/objects.js';
import { EVENT_TYPES, lakePipelineFile, type AgentEvent } from './agent-events.js';
import { buildDist, ROOT } from './build.js';
import { ParquetReader } from './parquet-reader.js';
import { SluiceProcess } from './sluice-process.js';
import { hostPortOf, requireServer } from './servers.js';

/**
 * The export under test, from the outside: DOMAIN-shaped Avro events produced to a topic of
 * the test's own, the real runner (`sluice run`) as child processes that can be killed,
 * and the lake read back by an independent reader (DuckDB over the downloaded objects).
 */

/** An event the lake must hold. */
export type ExpectedEvent = AgentEvent;

/** Event i of a run: four types, 37 agents, amounts with values beyond 2^53, times over a month and some late. */
export function domainEvent(run: string, i: number): AgentEvent {
  const type = EVENT_TYPES[i % 4]!;
  const day = (i * 7) % 30;
  const late = i % 97 === 0; // received long after it happened: it still lands in its own day
  return {
    eventId: `${run.slice(0, 8)}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    type,
    agentId: `agent-${i % 37}`,
    customerId: `customer-${i % 1009}`,
    amount: type === 'customer_onboarded' ? null : i % 501 === 0 ? 2n ** 53n + BigInt(i) : BigInt(100 + (i % 100_000)),
    occurredAtMicros: BigInt(Date.UTC(2026, 9, 1 + day, i % 24, i % 60)) * 1000n + BigInt(i % 1000),
    receivedAtMicros: BigInt(Date.UTC(2026, 9, 1 + day, i % 24, i % 60)) * 1000n + (late ? 40n * 86_400_000_000n : 1_000_000n),
  };
}

/** The shipped lake.yaml for a test: its topic, DLQ and prefix, its own group (6 s session), checked by `sluice lint`. */
export function testPipeline(o: { topic: string; prefix: string; dlq: string; group: string; period?: string; count?: number; poisonAgent?: string; encodeThreads?: number }): string {
  const file = lakePipelineFile({
    topic: o.topic,
    dlq: o.dlq,
    prefix: o.prefix,
    group: o.group,
    name: o.group,
    ...(o.period ? { period: o.period } : {}),
    ...(o.count ? { count: o.count } : {}),
    ...(o.poisonAgent ? { failAgent: o.poisonAgent } : {}),
    ...(o.encodeThreads !== undefined ? { encodeThreads: o.encodeThreads } : {}),
  });
  return lintedPipeline(file);
}

/** Writes a test pipeline (its YAML lines) to a file of its own and returns its path once `sluice lint` accepts it. */
export function pipelineFromLines(name: string, lines: readonly string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-pipeline-')), `${name}.yaml`);
  writeFileSync(file, [...lines, ''].join('\n'));
  return lintedPipeline(file);
}

/** A pipeline file that `sluice lint` (the built CLI) accepts, else an error with its problems. */
export function lintedPipeline(file: string): string {
  const lint = spawnSync(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'lint', file], { encoding: 'utf8' });
  if (lint.status !== 0) throw new Error(`the test pipeline does not lint:\n${lint.stdout}${lint.stderr}`);
  return file;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

/** One `sluice run` child process of one or more pipeline files; its output goes to test-results/<name>.log. */
export class RunnerProcess extends SluiceProcess {
  constructor(files: string | readonly string[], name: string, port: number) {
    super(name, ['run', ...(typeof files === 'string' ? [files] : files)], { SLUICE_EXPORT_HTTP_PORT: String(port), SLUICE_LOG_LEVEL: 'info' }, port);
  }

  static build(): void {
    buildDist('processors/cli/main.js');
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== null) throw new Error(`runner ${this.name} exited (${this.exitCode}) before it was ready; see ${this.log}`);
      const ok = await fetch(`http://127.0.0.1:${this.port}/readyz`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`runner ${this.name} not ready within ${timeoutMs} ms; see ${this.log}`);
  }

  async metric(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  }
}

/** Waits until the group has committed every partition of the topic to its end. */
export async function waitDrained(admin: Admin, group: string, topic: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let behind = -1n;
  while (Date.now() < deadline) {
    const ends = await admin.fetchTopicOffsets(topic);
    const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? [];
    behind = 0n;
    for (const e of ends) {
      const c = committed.find((x) => x.partition === e.partition)?.offset ?? '-1';
      behind += BigInt(e.high) - (c === '-1' ? BigInt(e.low) : BigInt(c));
    }
    if (behind === 0n) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`group ${group} still ${behind} records behind on ${topic} after ${timeoutMs} ms`);
}

/** The lake under a prefix, downloaded and opened with DuckDB (an independent Parquet reader). */
export class LakeCopy {
  private constructor(
    readonly reader: ParquetReader,
    private readonly dir: string,
    readonly keys: string[],
    private readonly filter?: string,
  ) {}

  /** The same copy, its `LAKE` narrowed to the rows where `condition` holds. */
  where(condition: string): LakeCopy {
    return new LakeCopy(this.reader, this.dir, this.keys, condition);
  }

  static async download(settings: CoreSettings, prefix: string): Promise<LakeCopy> {
    const s3 = createS3Client(settings.s3);
    const keys = (await listKeys(s3, settings.s3.bucket, prefix)).filter((k) => k.endsWith('.parquet'));
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lake-copy-'));
    for (const key of keys) {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: settings.s3.bucket, Key: key }))).Body!.transformToByteArray();
      const path = join(dir, key.slice(prefix.length));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, body);
    }
    return new LakeCopy(await ParquetReader.open(), dir, keys);
  }

  get glob(): string {
    return `${this.dir}/**/*.parquet`;
  }

  /** `read_parquet(...)` over every file, with the hive partition columns. */
  get table(): string {
    const all = `read_parquet('${this.glob}', hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true)`;
    return this.filter ? `(SELECT * FROM ${all} WHERE ${this.filter})` : all;
  }

  query(sql: string): Promise<Record<string, unknown>[]> {
    return this.reader.query(sql.replaceAll('LAKE', this.table)) as Promise<Record<string, unknown>[]>;
  }

  close(): void {
    this.reader.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function runId(): string {
  return randomUUID().slice(0, 8);
}

/** Stops, starts or SIGKILLs (a crash) one component of the local stack. */
export function stack(action: 'up' | 'down' | 'kill', component: string): void {
  const r = spawnSync(join(ROOT, 'infra/local/stack'), [action, component], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`infra/local/stack ${action} ${component} failed (${r.status}):\n${r.stdout}${r.stderr}`);
}

/**
 * Checks the lake against the events that should be in it: each event_id exactly once, the
 * values and types of docs/domain.md (exact int64 money, UTC timestamps), and every file in the
 * partition of its rows (event type, UTC day of occurred_at). Throws naming what is wrong.
 */
export async function verifyLake(lake: LakeCopy, expected: readonly ExpectedEvent[], options: { only?: string } = {}): Promise<void> {
  // `only`: a SQL condition on the rows checked (a lake other writers share, e.g. a CDC-fed one).
  if (options.only) lake = lake.where(options.only);
  const [totals] = await lake.query('SELECT count(*)::VARCHAR AS n, count(DISTINCT event_id)::VARCHAR AS d FROM LAKE');
  const repeated = await lake.query('SELECT event_id, count(*)::VARCHAR AS n FROM LAKE GROUP BY 1 HAVING count(*) > 1 LIMIT 5');
  if (repeated.length > 0) throw new Error(`the lake holds event ids more than once: ${JSON.stringify(repeated)} (total ${totals!.n}, distinct ${totals!.d})`);
  if (Number(totals!.n) !== expected.length) throw new Error(`the lake holds ${totals!.n} rows, expected ${expected.length}`);
  // The set and the values: expected rows loaded as CSV, compared both ways.
  const csv = join(mkdtempSync(join(tmpdir(), 'sluice-expected-')), 'expected.csv');
  writeFileSync(
    csv,
    'event_id,event_type,agent_id,customer_id,amount_minor,occurred_us\n' +
      expected.map((e) => `${e.eventId},${e.type},${e.agentId},${e.customerId},${e.amount ?? ''},${e.occurredAtMicros}`).join('\n') +
      '\n',
  );
  const expectedTable = `read_csv('${csv}', header = true, columns = {'event_id': 'VARCHAR', 'event_type': 'VARCHAR', 'agent_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'amount_minor': 'BIGINT', 'occurred_us': 'BIGINT'})`;
  const actual = 'SELECT event_id, event_type, agent_id, customer_id, amount_minor, epoch_us(occurred_at) AS occurred_us FROM LAKE';
  const missing = await lake.query(`SELECT * FROM ${expectedTable} EXCEPT ALL ${actual} LIMIT 5`);
  const extra = await lake.query(`${actual} EXCEPT ALL SELECT * FROM ${expectedTable} LIMIT 5`);
  if (missing.length > 0 || extra.length > 0) throw new Error(`lake differs from the events: missing ${JSON.stringify(missing, big)}, unexpected ${JSON.stringify(extra, big)}`);
  const types = Object.fromEntries((await lake.query('SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM LAKE)')).map((r) => [r.column_name, r.column_type]));
  for (const [column, type] of Object.entries({ event_id: 'VARCHAR', amount_minor: 'BIGINT', occurred_at: 'TIMESTAMP WITH TIME ZONE', received_at: 'TIMESTAMP WITH TIME ZONE', schema_version: 'INTEGER' })) {
    if (types[column] !== type) throw new Error(`column ${column} reads as ${String(types[column])}, expected ${type}`);
  }
  const misplaced = await lake.query(
    `SELECT filename, event_type, strftime(occurred_at AT TIME ZONE 'UTC', '%Y-%m-%d') AS day FROM read_parquet('${lake.glob}', filename = true, hive_partitioning = false)
      WHERE ${options.only ?? 'true'} AND filename NOT LIKE '%/event_type=' || event_type || '/dt=' || strftime(occurred_at AT TIME ZONE 'UTC', '%Y-%m-%d') || '/%' LIMIT 3`,
  );
  if (misplaced.length > 0) throw new Error(`rows outside their partition: ${JSON.stringify(misplaced)}`);
  // Exact sums beyond 2^53, per agent.
  const sums = new Map<string, bigint>();
  for (const e of expected) if (e.amount !== null) sums.set(e.agentId, (sums.get(e.agentId) ?? 0n) + e.amount);
  for (const r of await lake.query('SELECT agent_id, sum(amount_minor::HUGEINT)::VARCHAR AS s FROM LAKE GROUP BY 1')) {
    const want = sums.get(String(r.agent_id)) ?? 0n;
    if (BigInt(String(r.s ?? '0')) !== want) throw new Error(`sum of amount_minor for ${String(r.agent_id)}: lake ${String(r.s)}, expected ${want}`);
  }
}

function big(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/**
 * What every export test file starts with: Kafka, the registry and S3 answer (else a clear
 * error naming `npm run stack:up`), the runner is built, and a Kafka admin is connected (the
 * caller disconnects it after the file).
 */
export async function connectExportStack(settings: CoreSettings): Promise<{ kafka: Kafka; admin: Admin }> {
  await requireServer('Kafka', settings.kafka.brokers[0]!);
  await requireServer('Schema registry', hostPortOf(settings.registry.url));
  await requireServer('S3', hostPortOf(settings.s3.endpoint!));
  RunnerProcess.build();
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  const admin = kafka.admin();
  await admin.connect();
  return { kafka, admin };
}
