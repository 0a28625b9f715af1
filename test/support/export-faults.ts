import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { sleep } from '../../processors/core/errors/retry.js';
import { AgentEventProducer, type AgentEvent } from './agent-events.js';
import { readFromStart } from './kafka.js';
import { SlowProxy } from './slow-proxy.js';
import { domainEvent, freePort, LakeCopy, RunnerProcess, runId, stack, testPipeline, verifyLake, waitDrained } from './export-harness.js';

/**
 * The export's fault scenarios, one fault each so that a failure names its fault, sized by
 * the caller: CI-sized in test/integration/export-faults.test.ts, 1,000,000 events in the
 * soak (test/soak). Each produces its own topic, runs the real runner (`sluice run`) as
 * child processes and ends with the lake read back by DuckDB (verifyLake: each event_id
 * once, values, types, partition layout, exact sums per agent).
 */

const MONTHS: readonly [number, number][] = [
  [2026, 7],
  [2026, 8],
  [2026, 9],
  [2026, 10],
  [2026, 11],
  [2027, 0],
];
const DAY_US = 86_400_000_000n;
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Event i of a run, DOMAIN-shaped: domainEvent's types, agents, customers and amounts
 * (values beyond 2^53), spread over six months across a year boundary, with the first and
 * last microsecond of a UTC day, late events (received 40 days after they happened,
 * interleaved with current ones) and a few amounts near the int64 maximum, whose per-agent
 * sums only a 128-bit sum holds.
 */
export function lakeEvent(run: string, i: number): AgentEvent {
  const e = domainEvent(run, i);
  const [year, month] = MONTHS[Math.floor(i / 7) % MONTHS.length]!;
  const dayStartUs = BigInt(Date.UTC(year, month, 1 + ((i * 11) % 28))) * 1000n;
  const timeOfDayUs = i % 211 === 0 ? DAY_US - 1n : i % 211 === 1 ? 0n : BigInt((i * 7919) % 86_400_000) * 1000n + BigInt(i % 1000);
  const occurred = dayStartUs + timeOfDayUs;
  const received = occurred + (i % 97 === 0 ? 40n * DAY_US : 1_000_000n);
  const amount = e.amount !== null && i % 4999 === 3 ? INT64_MAX - BigInt(i) : e.amount;
  return { ...e, amount, occurredAtMicros: occurred, receivedAtMicros: received };
}

export function lakeEvents(run: string, count: number): AgentEvent[] {
  return Array.from({ length: count }, (_, i) => lakeEvent(run, i));
}

/** Produces `event(i)` for i in [from, to) as fast as the broker takes them, a chunk at a time (bounded memory). */
export async function produceBacklog(producer: AgentEventProducer, event: (i: number) => AgentEvent, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 20_000) {
    const chunk: AgentEvent[] = [];
    for (let k = i; k < Math.min(to, i + 20_000); k++) chunk.push(event(k));
    await producer.sendEvents(chunk);
  }
}

export interface GroupPosition {
  /** Records between the committed offsets (or the log start) and the end offsets. */
  behind: bigint;
  /** Records committed past the log start. */
  committed: bigint;
}

/** The group's position on the topic as the broker sees it. */
export async function groupPosition(admin: Admin, group: string, topic: string): Promise<GroupPosition> {
  const ends = await admin.fetchTopicOffsets(topic);
  const offsets = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? [];
  let behind = 0n;
  let committed = 0n;
  for (const e of ends) {
    const c = offsets.find((x) => x.partition === e.partition)?.offset ?? '-1';
    const at = c === '-1' ? BigInt(e.low) : BigInt(c);
    behind += BigInt(e.high) - at;
    committed += at - BigInt(e.low);
  }
  return { behind, committed };
}

/** Records on a topic (0 when it does not exist): the DLQ of a run with only valid events must stay empty. */
export async function recordsOn(admin: Admin, topic: string): Promise<bigint> {
  if (!(await admin.listTopics()).includes(topic)) return 0n;
  return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + BigInt(p.high) - BigInt(p.low), 0n);
}

/** A Prometheus counter of a runner's /metrics, summed over the series whose labels include `labels`. */
export async function metricOf(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A record read back with where it was. */
export interface PlacedMessage {
  partition: number;
  message: KafkaMessage;
}

/** Reads a topic from the beginning until `count` records are seen (read_committed); fails naming how many came. */
export async function readTopic(kafka: Kafka, topic: string, count: number, keep: (m: KafkaMessage) => boolean, timeoutMs = 60_000): Promise<PlacedMessage[]> {
  const kept: PlacedMessage[] = [];
  let seen = 0;
  await readFromStart(kafka, topic, timeoutMs, () => `${seen} of ${count} records read within ${timeoutMs} ms`, (partition, messages) => {
    for (const message of messages) if (keep(message)) kept.push({ partition, message });
    seen += messages.length;
    return seen >= count;
  });
  return kept;
}

export interface FaultOptions {
  kafka: Kafka;
  admin: Admin;
  settings: CoreSettings;
  events: number;
  /** Names the runners' log files under test-results/. */
  logPrefix: string;
  /** Records per batch of the test pipeline (lake.yaml ships 50,000). */
  count?: number;
  /** The runners reach S3 through a proxy that delays every request chunk this long (a slow or throttled S3). */
  s3LatencyMs?: number;
  log?: (line: string) => void;
}

export interface FaultRun {
  run: string;
  topic: string;
  group: string;
  prefix: string;
  dlq: string;
  file: string;
  producer: AgentEventProducer;
  started: number;
  log: (line: string) => void;
  newRunner: (name: string) => Promise<{ runner: RunnerProcess; port: number }>;
  close: () => Promise<void>;
}

async function setUpRun(o: FaultOptions, kind: string): Promise<FaultRun> {
  const run = runId();
  const topic = `test.export-${kind}.${run}`;
  const group = `test-export-${kind}-${run}`;
  const prefix = `test-export-${kind}-${run}/`;
  const dlq = `${topic}.dlq`;
  const file = testPipeline({ topic, dlq, prefix, group, count: o.count ?? 10_000 });
  const producer = new AgentEventProducer(o.kafka, o.settings, topic);
  await producer.setUp();
  const started = Date.now();
  const log = (line: string) => (o.log ?? (() => undefined))(`[${kind} ${run} +${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`);
  let generation = 0;
  const s3 = new URL(o.settings.s3.endpoint!);
  const proxy = o.s3LatencyMs ? await SlowProxy.start({ host: s3.hostname, port: Number(s3.port || 80) }, o.s3LatencyMs) : undefined;
  const newRunner = async (name: string) => {
    const port = await freePort();
    const runner = new RunnerProcess(file, `${o.logPrefix}-${kind}-${run}-${name}-${++generation}`, port);
    // The child takes its environment at spawn: point it at the slow proxy for that moment.
    const endpoint = process.env.SLUICE_S3_ENDPOINT;
    if (proxy) process.env.SLUICE_S3_ENDPOINT = proxy.endpoint;
    try {
      runner.start();
    } finally {
      if (endpoint === undefined) delete process.env.SLUICE_S3_ENDPOINT;
      else process.env.SLUICE_S3_ENDPOINT = endpoint;
    }
    await runner.ready();
    return { runner, port };
  };
  return { run, topic, group, prefix, dlq, file, producer, started, log, newRunner, close: async () => proxy?.close() };
}

/** The end of every scenario: the lake holds each event once with its values, and nothing went to the DLQ. */
async function verifyRun(o: FaultOptions, r: FaultRun): Promise<void> {
  const dead = await recordsOn(o.admin, r.dlq);
  if (dead !== 0n) throw new Error(`${dead} valid events went to the DLQ ${r.dlq} (a fault must block and retry, never dead-letter)`);
  const lake = await LakeCopy.download(o.settings, r.prefix);
  try {
    r.log(`lake: ${lake.keys.length} objects`);
    await verifyLake(lake, lakeEvents(r.run, o.events));
  } finally {
    lake.close();
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>, pollMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

function drainTimeout(events: number): number {
  return 120_000 + events / 5;
}

export interface KillResult {
  /** Per kill: records the killed runner had consumed, and the group's backlog left at that moment. */
  kills: { consumed: number; behind: bigint }[];
  seconds: number;
}

/**
 * A backlog of `events`, drained by a runner that is SIGKILLed three times at random
 * moments (after a random share of what is left was consumed, plus a random delay, so the
 * kill falls anywhere in the consume/encode/upload/commit cycle) and restarted each time.
 * Every kill must land with records still uncommitted, or the scenario proves nothing and fails.
 */
export async function killsWhileDraining(o: FaultOptions, killCount = 3): Promise<KillResult> {
  const r = await setUpRun(o, 'kills');
  await produceBacklog(r.producer, (i) => lakeEvent(r.run, i), 0, o.events);
  r.log(`${o.events} events produced`);
  const result: KillResult = { kills: [], seconds: 0 };
  let current = await r.newRunner('runner');
  try {
    for (let k = 1; k <= killCount; k++) {
      const left = Number((await groupPosition(o.admin, r.group, r.topic)).behind);
      const share = 0.05 + Math.random() * 0.5;
      const threshold = Math.max(1, Math.floor(left * share));
      const { runner, port } = current;
      await until(`runner ${runner.name} to consume ${threshold} records before kill ${k} (see ${runner.log})`, drainTimeout(o.events), async () => {
        if (runner.exitCode !== null) throw new Error(`runner ${runner.name} exited (${runner.exitCode}) before kill ${k}; see ${runner.log}`);
        return (await metricOf(port, 'sluice_export_records_in_total')) >= threshold;
      });
      await sleep(Math.random() * 300);
      const consumed = await metricOf(port, 'sluice_export_records_in_total').catch(() => -1);
      await runner.kill('SIGKILL');
      const { behind } = await groupPosition(o.admin, r.group, r.topic);
      result.kills.push({ consumed, behind });
      r.log(`SIGKILL ${k} of ${runner.name} after ${consumed} records consumed (${(share * 100).toFixed(0)}% of ${left} left); ${behind} not committed`);
      if (behind === 0n) throw new Error(`kill ${k} came after the backlog was committed: it proves nothing; produce more events (now ${o.events})`);
      current = await r.newRunner('runner');
    }
    await waitDrained(o.admin, r.group, r.topic, drainTimeout(o.events));
    r.log('drained');
    const code = await current.runner.kill('SIGTERM');
    if (code !== 0) throw new Error(`the last runner exited ${code} on SIGTERM; see ${current.runner.log}`);
  } finally {
    await current.runner.kill('SIGKILL');
    await r.close();
  }
  await verifyRun(o, r);
  result.seconds = (Date.now() - r.started) / 1000;
  return result;
}

export interface OutageResult {
  /** Records uncommitted while S3 was down (work the runner had to hold and retry). */
  behindDuringOutage: bigint;
  /** Records committed between 3 s into the outage and its end: must be 0, offsets follow uploads. */
  committedDuringOutage: bigint;
  seconds: number;
}

/**
 * S3 stopped for `outageMs` while one runner drains half the events as a backlog and the
 * other half arrives during the outage; S3 started again, the same runner process (never
 * restarted) must finish alone: no loss, no duplicate, no dead letter, and no offset
 * committed while nothing could be uploaded. S3 is always started again.
 */
export async function s3OutageWhileDraining(o: FaultOptions, outageMs = 30_000): Promise<OutageResult> {
  const r = await setUpRun(o, 's3-outage');
  const half = Math.floor(o.events / 2);
  await produceBacklog(r.producer, (i) => lakeEvent(r.run, i), 0, half);
  r.log(`${half} events produced`);
  const { runner, port } = await r.newRunner('runner');
  const result: OutageResult = { behindDuringOutage: 0n, committedDuringOutage: 0n, seconds: 0 };
  let arriving: Promise<void> | undefined;
  try {
    // Mid-run: some of the backlog is in the lake and committed, the rest is not.
    await until(`the group to commit a tenth of the backlog (see ${runner.log})`, drainTimeout(half), async () => (await groupPosition(o.admin, r.group, r.topic)).committed >= BigInt(Math.ceil(half / 10)));
    r.log(`${(await groupPosition(o.admin, r.group, r.topic)).committed} records committed, ${await metricOf(port, 'sluice_export_records_in_total')} consumed`);
    stack('down', 's3');
    const down = Date.now();
    r.log('S3 stopped');
    try {
      // The rest arrives during the outage, over the first half of it.
      arriving = r.producer.trickle((i) => lakeEvent(r.run, i), half, o.events, Math.max(1000, Math.ceil((o.events - half) / (outageMs / 2000))));
      arriving.catch(() => undefined);
      await sleep(3000);
      const early = await groupPosition(o.admin, r.group, r.topic);
      await sleep(Math.max(0, down + outageMs - Date.now()));
      const late = await groupPosition(o.admin, r.group, r.topic);
      result.behindDuringOutage = late.behind;
      result.committedDuringOutage = late.committed - early.committed;
      r.log(`S3 down for ${Date.now() - down} ms: ${late.behind} records uncommitted, ${result.committedDuringOutage} committed from 3 s in; runner ${runner.exitCode === null ? 'alive' : `exited ${runner.exitCode}`}`);
      if (runner.exitCode !== null) throw new Error(`the runner exited (${runner.exitCode}) while S3 was down; it must block and retry; see ${runner.log}`);
    } finally {
      stack('up', 's3');
      r.log('S3 started');
    }
    await arriving;
    await waitDrained(o.admin, r.group, r.topic, drainTimeout(o.events));
    r.log('drained');
    if (runner.exitCode !== null) throw new Error(`the runner exited (${runner.exitCode}) after the outage instead of resuming; see ${runner.log}`);
    const code = await runner.kill('SIGTERM');
    if (code !== 0) throw new Error(`the runner exited ${code} on SIGTERM; see ${runner.log}`);
  } finally {
    await runner.kill('SIGKILL');
    await arriving?.catch(() => undefined);
    await r.close();
  }
  await verifyRun(o, r);
  result.seconds = (Date.now() - r.started) / 1000;
  return result;
}

export interface RebalanceResult {
  /** Per visit of runner b: records it consumed while in the group (> 0: it really took partitions) and its exit code. */
  visits: { consumed: number; exit: number | null }[];
  seconds: number;
}

/**
 * Runner a drains a backlog of 40% of the events while the rest keeps arriving; `visits`
 * times, a runner b joins the group mid-run, takes partitions (it must consume records)
 * and leaves again with SIGTERM, each join and leave a rebalance that can land in the
 * middle of a's flushes; a finishes alone. Exactly once throughout.
 */
export async function rebalanceWhileDraining(o: FaultOptions, visits = 3): Promise<RebalanceResult> {
  const r = await setUpRun(o, 'rebalance');
  const backlog = Math.floor(o.events * 0.4);
  await produceBacklog(r.producer, (i) => lakeEvent(r.run, i), 0, backlog);
  r.log(`${backlog} events produced`);
  const a = await r.newRunner('a');
  const result: RebalanceResult = { visits: [], seconds: 0 };
  let b: { runner: RunnerProcess; port: number } | undefined;
  // Records must still be arriving when the last visit joins (a visit takes ~8-12 s: join, consume, 1-3 s, SIGTERM, 1-3 s),
  // or runner b finds its partitions drained and never consumes: ~16 s of trickle a visit.
  const arriving = r.producer.trickle((i) => lakeEvent(r.run, i), backlog, o.events, Math.max(500, Math.ceil((o.events - backlog) / (16 * visits))));
  arriving.catch(() => undefined);
  try {
    await until(`runner a to consume records (see ${a.runner.log})`, 60_000, async () => (await metricOf(a.port, 'sluice_export_records_in_total')) > 0);
    for (let v = 1; v <= visits; v++) {
      b = await r.newRunner('b');
      r.log(`runner b joined (visit ${v})`);
      const bPort = b.port;
      await until(`runner b to get partitions and consume records (see ${b.runner.log})`, 60_000, async () => (await metricOf(bPort, 'sluice_export_records_in_total')) > 0);
      await sleep(1000 + Math.random() * 2000);
      const consumed = await metricOf(bPort, 'sluice_export_records_in_total');
      const exit = await b.runner.kill('SIGTERM');
      result.visits.push({ consumed, exit });
      r.log(`runner b left (exit ${exit}) after consuming ${consumed} records`);
      if (exit !== 0) throw new Error(`runner b exited ${exit} on SIGTERM; see ${b.runner.log}`);
      if (a.runner.exitCode !== null) throw new Error(`runner a exited (${a.runner.exitCode}) during the rebalance; see ${a.runner.log}`);
      await sleep(1000 + Math.random() * 2000);
    }
    await arriving;
    r.log('all events produced');
    await waitDrained(o.admin, r.group, r.topic, drainTimeout(o.events));
    r.log('drained');
    if (a.runner.exitCode !== null) throw new Error(`runner a exited (${a.runner.exitCode}) during the rebalances; see ${a.runner.log}`);
    const code = await a.runner.kill('SIGTERM');
    if (code !== 0) throw new Error(`runner a exited ${code} on SIGTERM; see ${a.runner.log}`);
  } finally {
    await a.runner.kill('SIGKILL');
    await b?.runner.kill('SIGKILL');
    await arriving.catch(() => undefined);
    await r.close();
  }
  await verifyRun(o, r);
  result.seconds = (Date.now() - r.started) / 1000;
  return result;
}
