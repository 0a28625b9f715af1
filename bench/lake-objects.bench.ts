/**
 * The lake's object budget (issue 15): objects written per hour and their sizes at a steady
 * live rate (event time = now), with the shipped lake.yaml and with longer batch periods;
 * then `sluice compact`'s code over what the 1 s run wrote: objects before and after, bytes
 * written (write amplification), rows/s and peak RSS.
 *
 * Time can be compressed: a variant runs at BENCH_LAKE_RATE x speedup events/s with the
 * period divided by the speedup, which writes the same objects a flush (same rows each) as
 * the real rate and period; per hour figures are scaled back by the speedup.
 * Run: `BENCH_ONLY=lake-objects npm run bench` (or `tsc -p tsconfig.bench.json && node
 * dist/bench/lake-objects.bench.js` with the stack up). Env: BENCH_LAKE_RATE (200),
 * BENCH_LAKE_SECONDS (60 a variant), BENCH_LAKE_VARIANTS (`1s:1,10s:2,60s:6`: period:speedup).
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { createLogger } from '../processors/core/log/logger.js';
import { loadPipeline } from '../processors/core/pipeline/lint.js';
import { parseDuration } from '../processors/core/pipeline/units.js';
import { RegistryRestClient } from '../processors/core/registry/ccompat.js';
import { createS3Client } from '../processors/core/s3/client.js';
import { deletePrefix, listObjects } from '../processors/core/s3/objects.js';
import { compactLake } from '../processors/compact/compactor.js';
import { AgentEventBacklog, agentEventSchemaText, agentEventType } from './support/agent-events.js';
import { freePort, ROOT, startSluice } from './support/processes.js';

const RATE = Number(process.env.BENCH_LAKE_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_LAKE_SECONDS ?? 60);
const VARIANTS = (process.env.BENCH_LAKE_VARIANTS ?? '1s:1,10s:2,60s:6').split(',').map((v) => {
  const [period, speedup] = v.split(':');
  return { period: period!, speedup: Number(speedup ?? 1) };
});
const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: 'sluice-bench-lake' });
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const registry = new RegistryRestClient(settings.registry.url, settings.registry);
const run = randomUUID().slice(0, 8);
const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-lake-'));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

function pipelineFile(name: string, topic: string, prefix: string, period: string): string {
  let text = readFileSync(`${ROOT}connectors/exports/lake.yaml`, 'utf8');
  const swap = (from: string, to: string) => {
    if (!text.includes(from)) throw new Error(`connectors/exports/lake.yaml no longer holds "${from}": update bench/lake-objects.bench.ts`);
    text = text.split(from).join(to);
  };
  swap('topics: [sluice.agent-events]', `topics: [${topic}]`);
  swap('topic: sluice.agent-events.export.dlq', `topic: ${topic}.dlq`);
  swap('path: lake/agent_events/', `path: ${prefix}`);
  swap('period: 10s', `period: ${period}`);
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function variant(period: string, speedup: number): Promise<{ file: string; prefix: string; group: string; objects: number; bytes: number; events: number }> {
  const topic = `bench.lake.${run}.${period}`;
  const prefix = `bench/lake-objects-${run}/${period}/agent_events/`;
  const group = `bench-lake-${run}-${period}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }, { topic: `${topic}.dlq`, numPartitions: 1 }], waitForLeaders: true });
  const schemaText = agentEventSchemaText();
  const schemaId = await registry.register(`${topic}-value`, schemaText);
  const type = agentEventType(schemaText);
  const gen = new AgentEventBacklog({ total: 1, schemaId, type, monthStart: '2026-01-01', days: 1, agents: 300 });
  const header = Buffer.alloc(5);
  header.writeInt32BE(schemaId, 1);
  const file = pipelineFile(period, topic, prefix, `${parseDuration(period)! / speedup}ms`);
  const port = await freePort();
  const proc = startSluice(['run', file], { env: { SLUICE_LAKE_CONSUMER_GROUP: group, SLUICE_EXPORT_HTTP_PORT: String(port), SLUICE_LOG_LEVEL: 'warn' }, port, label: `export ${period}` });
  await proc.ready(60_000);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const perSecond = RATE * speedup;
  const started = Date.now();
  let sent = 0;
  // Live traffic: event time and received time = now; 10 sends a second.
  while (Date.now() - started < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * perSecond);
    const messages = [];
    for (; sent < due; sent++) {
      const { agent, value } = gen.envelope(0);
      const nowUs = Date.now() * 1000;
      value.time = nowUs;
      value.received_at = nowUs;
      value.id = randomUUID();
      const body = type.toBuffer(value);
      messages.push({ key: `agent-${String(agent + 1).padStart(4, '0')}`, value: Buffer.concat([header, body]) });
    }
    if (messages.length > 0) await producer.send({ topic, messages });
    await new Promise((r) => setTimeout(r, 100));
  }
  await producer.disconnect();
  // Let the last flush go out and commit.
  await new Promise((r) => setTimeout(r, Math.max(3000, (2 * parseDuration(period)!) / speedup)));
  await proc.stop(30_000);
  await admin.disconnect();
  const objects = (await listObjects(s3, bucket, prefix)).filter((o) => o.key.endsWith('.parquet'));
  const sizes = objects.map((o) => o.size).sort((a, b) => a - b);
  const bytes = sizes.reduce((n, b) => n + b, 0);
  const liveSeconds = SECONDS * speedup;
  console.log(
    `period ${period} (${speedup > 1 ? `compressed ${speedup}x: ${fmt(perSecond)} events/s, period ${parseDuration(period)! / speedup} ms` : 'real time'}): ` +
      `${fmt(sent)} events, ${objects.length} objects = ${fmt((objects.length / liveSeconds) * 3600)} objects/hour (${fmt((objects.length / liveSeconds) * 86400)}/day), ` +
      `${fmt(sent / Math.max(1, objects.length))} rows an object; sizes p10 ${kib(quantile(sizes, 0.1))}, p50 ${kib(quantile(sizes, 0.5))}, p90 ${kib(quantile(sizes, 0.9))}, max ${kib(quantile(sizes, 1))}; ${((bytes / liveSeconds) * 3600 / 2 ** 20).toFixed(1)} MiB/hour`,
  );
  return { file, prefix, group, objects: objects.length, bytes, events: sent };
}

async function main(): Promise<void> {
  console.log(`lake objects bench: ${RATE} events/s of live traffic, ${SECONDS} s a variant; ${cpus().length} cores, ${fmt(totalmem() / 2 ** 20)} MiB, Node ${process.version}`);
  const results = [];
  for (const v of VARIANTS) results.push({ ...v, ...(await variant(v.period, v.speedup)) });
  // Compaction of the first variant's lake (the shipped period): its day is closed by a clock moved 2 days on.
  const first = results[0]!;
  const pipeline = loadPipeline(first.file);
  const output = pipeline.output.config;
  const admin = kafka.admin();
  await admin.connect();
  const rssBefore = process.memoryUsage().rss;
  const started = Date.now();
  const { outcomes, failed } = await compactLake({
    s3,
    bucket,
    prefix: first.prefix,
    schema: { columns: output.columns!.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })) },
    compression: output.compression === 'none' ? 'none' : output.compression,
    targetBytes: 128 * 2 ** 20,
    rowGroupSize: 131_072,
    graceMs: 0,
    now: () => new Date(Date.now() + 2 * 86_400_000),
    pipelineName: pipeline.name,
    logger: createLogger({ name: 'compact', level: 'warn' }),
    committedOffsets: async (topic) => {
      const [t] = await admin.fetchOffsets({ groupId: first.group, topics: [topic] });
      return new Map((t?.partitions ?? []).filter((x) => x.offset !== '-1').map((x) => [x.partition, BigInt(x.offset)] as const));
    },
  });
  const ms = Date.now() - started;
  await admin.disconnect();
  const after = (await listObjects(s3, bucket, first.prefix)).filter((o) => o.key.endsWith('.parquet'));
  const written = outcomes.reduce((n, x) => n + x.outputBytes, 0);
  const rows = outcomes.reduce((n, x) => n + x.rows, 0);
  console.log(
    `compaction of the ${first.period} lake: ${first.objects} objects -> ${after.length} (${outcomes.length} partitions, ${failed} failed); ${fmt(rows)} rows in ${(ms / 1000).toFixed(1)} s = ${fmt(rows / (ms / 1000))} rows/s; ` +
      `bytes exported ${kib(first.bytes)}, compaction wrote ${kib(written)}: write amplification ${((first.bytes + written) / first.bytes).toFixed(2)}x; peak RSS of the bench process ${fmt(process.resourceUsage().maxRSS / 1024)} MiB (RSS before compaction ${fmt(rssBefore / 2 ** 20)} MiB)`,
  );
  for (const r of results) await deletePrefix(s3, bucket, r.prefix.replace(/agent_events\/$/, ''));
}

await main();
