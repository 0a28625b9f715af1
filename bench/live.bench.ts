/**
 * `BENCH_ONLY=live npm run bench`: `sluice live` (bench/live.bench.ts).
 *  1. a backlog of N agent events (the export bench's generator: skewed agents, exact
 *     money, 3 % late) on a topic of its own, 6 partitions;
 *  2. raw kafkajs consume of it (read_committed, eachBatch, counting only): the ceiling;
 *  3. `sluice live` (a child process) over the backlog from the start: events/s until its
 *     group has committed the end, peak RSS (VmHWM), local store on disk;
 *  4. restore: stopped (SIGTERM), the local store deleted, started again: the time until
 *     every partition's store is rebuilt from the changelog;
 *  5. freshness at a steady rate (BENCH_LIVE_RATE, default 200 events/s, BENCH_FRESHNESS_SECONDS):
 *     each event a new agent; from the produce acknowledgement to the SSE event and to the
 *     API answering 200 (polled every 10 ms for one event in 10). It starts at the events
 *     topic: Postgres, Debezium and the normalizer are not in this path.
 * BENCH_LIVE_PRODUCE_ONLY=1 BENCH_KEEP=1: only produces the backlog and prints its topic, for
 * runs with BENCH_LIVE_TOPIC=<topic>. The memory figures are the one process's (`sluice live`
 * runs in a worker thread with its V8 heap limits, in the same process), with the peaks of its V8 heap and external memory.
 */
import './support/stack-env.js';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { sleep } from '../processors/core/errors/retry.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { RegistryRestClient } from '../processors/core/registry/ccompat.js';
import { changelogTopicName } from '../processors/core/state/changelog.js';
import { readSse } from '../test/support/sse.js';
import { AgentEventBacklog, agentEventSchemaText, agentEventType } from './support/agent-events.js';
import { freePort, memoryKb, metricSum, startSluice, type SluiceProcess } from './support/processes.js';

let N = Number(process.env.BENCH_LIVE_EVENTS ?? 1_000_000);
/** BENCH_LIVE_TOPIC: the backlog topic of an earlier run (kept with BENCH_KEEP=1), read again instead of producing one: a 5M backlog takes ~17 min to produce on a loaded machine. */
const REUSE = process.env.BENCH_LIVE_TOPIC;
const AGENTS = Number(process.env.BENCH_LIVE_AGENTS ?? 1_000_000);
const RATE = Number(process.env.BENCH_LIVE_RATE ?? 200);
const FRESH_SECONDS = Number(process.env.BENCH_FRESHNESS_SECONDS ?? 30);
const PARTITIONS = 6;
const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, logLevel: 'nothing' } as never);
const run = randomUUID().slice(0, 8);
const topic = REUSE ?? `bench.live.${run}.events`;
const outputTopic = `bench.live.${run}.out`;
const groupId = `bench-live-${run}`;
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-live-bench-'));
const API_KEY = `bench-live-key-${run}-0123456789`;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const line = (s: string) => console.log(s);

async function produceBacklog(): Promise<{ ms: number; bytes: number; schemaId: number }> {
  if (REUSE) {
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    N = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
    const schemaId = await new RegistryRestClient(settings.registry.url).register(`${topic}-value`, agentEventSchemaText());
    return { ms: 0, bytes: 0, schemaId };
  }
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  const schemaText = agentEventSchemaText();
  const schemaId = await new RegistryRestClient(settings.registry.url).register(`${topic}-value`, schemaText);
  const backlog = new AgentEventBacklog({ total: N, schemaId, type: agentEventType(schemaText), monthStart: '2026-10-01', days: 28, agents: AGENTS });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const started = Date.now();
  let bytes = 0;
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < N; i += 6000) {
    const messages = [];
    for (let j = i; j < Math.min(N, i + 6000); j++) {
      const m = backlog.message(j);
      bytes += m.key.length + m.value.length;
      messages.push(m);
    }
    backlog.takeAmountSum();
    const p: Promise<void> = producer.send({ topic, acks: -1, messages }).then(() => void inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 4) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await producer.disconnect();
  return { ms: Date.now() - started, bytes, schemaId };
}

async function rawConsume(): Promise<number> {
  const consumer = kafka.consumer({ groupId: `${groupId}-raw`, readUncommitted: false, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let started = 0;
  const done = new Promise<number>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (started === 0) started = Date.now();
        count += batch.messages.length;
        if (count >= N) resolve(Date.now() - started);
      },
    });
  });
  const ms = await done;
  await consumer.disconnect();
  return (N / ms) * 1000;
}

function liveProcess(port: number, instance: string): SluiceProcess {
  return startSluice(['live'], {
    label: `sluice live ${instance}`,
    port,
    // e.g. BENCH_LIVE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the processor.
    ...(process.env.BENCH_LIVE_NODE_ARGS ? { nodeArgs: process.env.BENCH_LIVE_NODE_ARGS.split(' ').filter(Boolean) } : {}),
    // BENCH_LIVE_LOG=1: the processor's JSON log (at BENCH_LOG_LEVEL) on our stdout, e.g. debug for each transaction's timings.
    ...(process.env.BENCH_LIVE_LOG === '1' ? { stdout: 'inherit' as const } : {}),
    env: {
      SLUICE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      SLUICE_LIVE_EVENTS_TOPIC: topic,
      SLUICE_LIVE_OUTPUT_TOPIC: outputTopic,
      SLUICE_LIVE_DLQ_TOPIC: `bench.live.${run}.dlq`,
      SLUICE_LIVE_GROUP_ID: groupId,
      SLUICE_LIVE_INSTANCE_ID: instance,
      SLUICE_LIVE_STATE_DIR: stateDir,
      SLUICE_LIVE_HTTP_PORT: String(port),
      SLUICE_LIVE_API_KEY: API_KEY,
      SLUICE_LIVE_OPEN_MONTHS: '120',
      ...(process.env.BENCH_LIVE_BATCH ? { SLUICE_LIVE_MAX_BATCH_RECORDS: process.env.BENCH_LIVE_BATCH } : {}),
    },
  });
}

async function drained(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      const ends = await admin.fetchTopicOffsets(topic);
      const committed = new Map(((await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      if (ends.every((e) => (committed.get(e.partition) ?? -1n) >= BigInt(e.high))) return;
      await sleep(200);
    }
  } finally {
    await admin.disconnect();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function freshness(p: SluiceProcess, schemaId: number): Promise<void> {
  const schemaText = agentEventSchemaText();
  const type = agentEventType(schemaText);
  const sent = new Map<string, number>();
  const sse: number[] = [];
  const api: number[] = [];
  const ctrl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${p.port}/live/stream`, { headers: { 'x-api-key': API_KEY }, signal: ctrl.signal });
  const reading = readSse<{ agent_id: string }>(res.body, ({ agent_id: agent }) => {
    const at = sent.get(agent);
    if (at !== undefined) {
      sse.push(performance.now() - at);
      sent.delete(agent);
    }
  }).catch(() => undefined);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const head = Buffer.alloc(5);
  head.writeInt32BE(schemaId, 1);
  const total = RATE * FRESH_SECONDS;
  const polls: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i / RATE) * 1000;
    if (due > performance.now()) await sleep(due - performance.now());
    const agent = `fresh-${run}-${i}`;
    const now = Date.now() * 1000;
    const value = Buffer.concat([head, type.toBuffer({ specversion: '1.0', id: randomUUID(), type: 'io.sluice.agent.deposit_made', source: '/channels/web', time: now, subject: agent, schema_version: 1, received_at: now, correlation_id: null, session_id: null, data: { 'io.sluice.events.DepositMade': { customer_id: 'c', amount_minor: 1000, currency: 'USD', metadata: null } } })]);
    const sending = producer.send({ topic, acks: -1, messages: [{ key: agent, value }] });
    void sending.then(() => {
      const at = performance.now();
      if (!sent.has(agent)) sent.set(agent, at);
      if (i % 10 === 0) {
        polls.push(
          (async () => {
            const month = new Date().toISOString().slice(0, 7);
            for (let k = 0; k < 1000; k++) {
              const r = await fetch(`http://127.0.0.1:${p.port}/live/agents/${agent}/months/${month}`, { headers: { 'x-api-key': API_KEY } });
              await r.arrayBuffer();
              if (r.status === 200) return void api.push(performance.now() - at);
              await sleep(10);
            }
          })(),
        );
      }
    });
  }
  await Promise.all(polls);
  await sleep(2000);
  ctrl.abort();
  await reading;
  await producer.disconnect();
  line(`freshness at ${RATE} events/s for ${FRESH_SECONDS} s (${fmt(total)} events, each a new agent; from the produce ack on the events topic):`);
  line(`  -> SSE event: p50 ${pct(sse, 50).toFixed(0)} ms, p99 ${pct(sse, 99).toFixed(0)} ms (${sse.length} seen)`);
  line(`  -> API 200:   p50 ${pct(api, 50).toFixed(0)} ms, p99 ${pct(api, 99).toFixed(0)} ms (${api.length} sampled, polled every 10 ms)`);
}

async function main(): Promise<void> {
  line(`machine: ${cpus().length} cores (${cpus()[0]?.model}), Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (shared with other sessions)`);
  const b = await produceBacklog();
  line(REUSE ? `backlog: ${fmt(N)} events of the kept topic ${topic}` : `backlog: ${fmt(N)} events over ${fmt(AGENTS)} possible agents, ${(b.bytes / 1048576).toFixed(1)} MiB, produced in ${(b.ms / 1000).toFixed(1)} s on the topic ${topic}`);
  // BENCH_LIVE_PRODUCE_ONLY=1: only the backlog (kept), for later runs with BENCH_LIVE_TOPIC=<topic>.
  if (process.env.BENCH_LIVE_PRODUCE_ONLY === '1') return;
  const raw = await rawConsume();
  line(`raw kafkajs consume (read_committed, count only): ${fmt(raw)} events/s`);

  const port = await freePort();
  const p = liveProcess(port, 'bench-0');
  const started = Date.now();
  let peak = 0;
  let peakAnon = 0;
  let peakFile = 0;
  // The one process `node bin/sluice.mjs live` is (its worker thread included: core/runtime/v8-heap.ts).
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, memoryKb(p.pid, 'VmHWM'));
      peakAnon = Math.max(peakAnon, memoryKb(p.pid, 'RssAnon'));
      peakFile = Math.max(peakFile, memoryKb(p.pid, 'RssFile'));
    } catch {
      /* exited */
    }
  }, 500);
  // The private part's pieces, from the process's own metrics (prom-client's defaults), every second.
  const heap = { used: 0, total: 0, external: 0 };
  const heapSampler = setInterval(() => {
    void p.metrics().then((m) => {
      heap.used = Math.max(heap.used, metricSum(m, 'sluice_nodejs_heap_size_used_bytes'));
      heap.total = Math.max(heap.total, metricSum(m, 'sluice_nodejs_heap_size_total_bytes'));
      heap.external = Math.max(heap.external, metricSum(m, 'sluice_nodejs_external_memory_bytes'));
    }, () => undefined);
  }, 1000);
  await Promise.race([p.ready(120_000), p.exited]);
  await Promise.race([drained(), p.exited]);
  const ms = Date.now() - started;
  peak = Math.max(peak, memoryKb(p.pid, 'VmHWM'));
  const metrics = await p.metrics();
  const agentMonths = metricSum(metrics, 'sluice_state_entries');
  line(`sluice live over the backlog: ${fmt((N / ms) * 1000)} events/s (${(ms / 1000).toFixed(1)} s from spawn to the group committing the end; ${(((N / ms) * 1000) / raw * 100).toFixed(0)} % of raw consume), counted ${fmt(metricSum(metrics, 'sluice_live_events_total'))}`);
  line(`state: ${fmt(agentMonths)} entries (event ids + customers + agent-month totals); view ${fmt(metricSum(metrics, 'sluice_live_view_agent_months'))} agent-months; peak RSS (VmHWM) ${(peak / 1024).toFixed(0)} MB, of which at most ${(peakAnon / 1024).toFixed(0)} MB private (RssAnon: heap, buffers) and ${(peakFile / 1024).toFixed(0)} MB mapped files (RssFile: code, the view's LMDB pages; sampled every 0.5 s)`);
  clearInterval(heapSampler);
  line(`  V8 heap (sampled every 1 s, peaks): used ${(heap.used / 1048576).toFixed(0)} MB, total ${(heap.total / 1048576).toFixed(0)} MB; external (Buffers outside the heap) ${(heap.external / 1048576).toFixed(0)} MB`);
  await freshness(p, b.schemaId);
  await p.stop();
  clearInterval(sampler);
  const disk = execFileSync('du', ['-sm', stateDir]).toString().split('\t')[0];
  line(`local store on disk: ${disk} MiB (SQLite, all partitions, and the view)`);

  // Restore: the local store is gone; the changelog rebuilds it.
  rmSync(stateDir, { recursive: true, force: true });
  const port2 = await freePort();
  const q = liveProcess(port2, 'bench-0');
  const restoreStarted = Date.now();
  await Promise.race([q.ready(120_000), q.exited]);
  for (;;) {
    const m = await q.metrics();
    const text = m ?? '';
    const count = [...text.matchAll(/^sluice_state_restore_seconds_count\{[^}]*kind="full"[^}]*\} (\d+)/gm)].reduce((n, x) => n + Number(x[1]), 0);
    if (count >= PARTITIONS) {
      const sum = [...text.matchAll(/^sluice_state_restore_seconds_sum\{[^}]*kind="full"[^}]*\} ([0-9.e+-]+)/gm)].reduce((n, x) => n + Number(x[1]), 0);
      line(`restore from the changelog ${changelogTopicName(groupId, 'live')} (local store deleted): ${((Date.now() - restoreStarted) / 1000).toFixed(1)} s from spawn to every partition restored (restores ${sum.toFixed(1)} s in all), ${fmt(metricSum(text, 'sluice_state_restored_records_total'))} changelog records`);
      break;
    }
    await sleep(500);
  }
  await q.stop();
  const admin = kafka.admin();
  await admin.connect();
  if (process.env.BENCH_KEEP !== '1') await admin.deleteTopics({ topics: [...(REUSE ? [] : [topic]), outputTopic, `bench.live.${run}.dlq`, changelogTopicName(groupId, 'live')] }).catch(() => undefined);
  await admin.disconnect();
  rmSync(stateDir, { recursive: true, force: true });
}

await main();
process.exit(0);
