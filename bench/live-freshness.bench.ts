/**
 * `BENCH_ONLY=live-freshness npm run bench`: how soon a Postgres commit shows in
 * `sluice live` (issue 14's freshness target: commit -> the API shows it, p99 <= 1 s at a
 * steady 200 events/s), through the whole path as the demo runs it: Postgres ->
 * Debezium (Kafka Connect, the shipped connector) -> `sluice normalizer` -> `sluice live`,
 * every processor a real child process with its shipped defaults (only topic, group, port
 * and folder names of the run's own).
 *
 *  1. reference, same run: a kafkajs producer and a read_committed consumer on a scratch
 *     topic at 200 records/s: send -> the consumer has it (the broker's floor at this load);
 *  2. for each rate of BENCH_FRESH_RATES (default 200,500,1000,2000,4000 events/s), for
 *     BENCH_FRESH_SECONDS (default 60): writers insert DOMAIN-valid events (the four types,
 *     BENCH_FRESH_AGENTS agents, default 1,000, round robin) into staging.agent_events, one
 *     row a transaction up to 200 events/s, above it small transactions of rate/100 rows
 *     (BENCH_FRESH_TX_ROWS to fix it), on a fixed schedule over BENCH_FRESH_WRITERS
 *     connections (default 32); each COMMIT's acknowledgement time is kept. Measured from it, per event:
 *       - the CDC record (an observer of the Debezium topic, by event_id),
 *       - the events topic record (a read_committed observer: the normalizer committed it),
 *       - the SSE event of `GET /live/stream` whose totals include it (its agent's `events`
 *         count reaches the event's ordinal among the agent's events),
 *       - `GET /live/agents/{id}/months/{m}` answering those totals: a sample of ~10 events
 *         a second, each polled every 20 ms;
 *     p50/p90/p99/max of each, and the stages between them; the Debezium stage also split
 *     by the CDC record's own clocks (Postgres commit `source.ts_ms` -> the record's
 *     timestamp: Debezium's queue; record timestamp -> observed: Connect's producer, the
 *     broker, a fetch), and events topic -> API for the sampled events.
 *     A rate is held when the writers kept it (>= 95 %), every event reached the SSE stream
 *     within 20 s of the last commit, and the lag did not grow (the p50 of the step's last
 *     third is at most twice the first third's + 250 ms). The steps stop at the first rate
 *     the path did not hold (events missing or the lag growing); a step whose writers fell
 *     short (Postgres commits on a loaded machine) is reported as not held and the next
 *     one runs.
 */
import './support/stack-env.js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type Admin, type Consumer } from 'kafkajs';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { createPool } from '../processors/core/db/pool.js';
import { sleep, withRetry } from '../processors/core/errors/retry.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { RegistryCodec } from '../processors/core/registry/codec.js';
import { changelogTopicName } from '../processors/core/state/changelog.js';
import { waitForTopic } from '../test/support/kafka.js';
import { readSse } from '../test/support/sse.js';
import { ensureCdcConnector } from './support/cdc.js';
import { describeDistribution, distribution, type Distribution } from './support/latency.js';
import { freePort, ROOT, startSluice, type SluiceProcess } from './support/processes.js';

const RATES = (process.env.BENCH_FRESH_RATES ?? '200,500,1000,2000,4000').split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const SECONDS = Number(process.env.BENCH_FRESH_SECONDS ?? 60);
const AGENTS = Number(process.env.BENCH_FRESH_AGENTS ?? 1000);
const WRITERS = Number(process.env.BENCH_FRESH_WRITERS ?? 32);
/** Rows a transaction at a rate: one at 200 events/s and below, then small transactions (at most 100 commits a second, as a back end batching its writes would). */
const txRows = (rate: number) => Number(process.env.BENCH_FRESH_TX_ROWS ?? (rate <= 200 ? 1 : Math.ceil(rate / 100)));
const API_SAMPLES_PER_SECOND = 10;
const DRAIN_MS = 20_000;
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';
const CDC_TOPIC = 'sluice.staging.agent_events';

const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, logLevel: 'nothing' } as never);
const run = randomUUID().slice(0, 8);
const base = `bench.livefresh.${run}`;
const eventsTopic = `${base}.events`;
const outputTopic = `${base}.out`;
const refTopic = `${base}.reference`;
const groups = {
  normalizer: `bench-livefresh-normalizer-${run}`,
  live: `bench-livefresh-live-${run}`,
  cdcObserver: `bench-livefresh-cdc-${run}`,
  eventsObserver: `bench-livefresh-events-${run}`,
  reference: `bench-livefresh-ref-${run}`,
};
const API_KEY = `bench-livefresh-key-${run}-0123456789`;
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-livefresh-bench-'));
const AGENT_PREFIX = `bench-fresh-${run}-`;
const TYPES = ['deposit_made', 'customer_onboarded', 'withdrawal_made', 'investment_made', 'deposit_made'] as const;
/** Date.now() - performance.now(): wall-clock ms of a performance.now() instant (record timestamps are wall-clock). */
const epochOffset = Date.now() - performance.now();
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const line = (s: string) => console.log(s);

/** One inserted event: when its COMMIT was acknowledged, and its place among its agent's events. */
interface Commit {
  id: string;
  agent: string;
  /** 1 for the agent's first event of the step, 2 for its second... */
  ordinal: number;
  committedAt: number;
  sample: boolean;
}

/** Where each event was first seen (performance.now() of this process). */
const atCdc = new Map<string, number>();
const atEvents = new Map<string, number>();
/**
 * Per CDC record, in wall-clock ms (one machine, one clock): Debezium's `source.ts_ms` (the
 * Postgres commit time it read from the WAL) and the record's timestamp (Connect's producer
 * created the record), so the Debezium hop splits into its queue and Kafka's delivery.
 */
const cdcClock = new Map<string, { sourceTsMs: number; recordTsMs: number }>();
/** Per agent: reachedAt[k] = when an SSE event first showed the agent's count at k or more. */
const sseSeen = new Map<string, number[]>();

/** Reads a topic from where the group stands, noting when each event id was first seen. */
async function observe(topic: string, groupId: string, idOf: (m: { key: Buffer | null; value: Buffer | null; timestamp: string }) => Promise<string | undefined>, seen: Map<string, number>): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const now = performance.now();
      for (const m of batch.messages) {
        const id = await idOf(m).catch(() => undefined);
        if (id && !seen.has(id)) seen.set(id, now);
      }
    },
  });
  return consumer;
}

/** Commits a group's offsets at the topic's end, so it reads only what comes next. */
async function groupAtEnd(admin: Admin, groupId: string, topic: string): Promise<void> {
  // A topic Debezium has just created may not have its leader yet (NOT_LEADER: retried).
  const offsets = await withRetry(() => admin.fetchTopicOffsets(topic));
  await admin.setOffsets({ groupId, topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })) });
}

/** Follows `GET /live/stream`, noting each agent's totals as they come. */
async function followStream(port: number, signal: AbortSignal): Promise<{ done: Promise<void> }> {
  const res = await fetch(`http://127.0.0.1:${port}/live/stream`, { headers: { 'x-api-key': API_KEY }, signal });
  if (res.status !== 200 || !res.body) throw new Error(`GET /live/stream answered ${res.status}`);
  // In an object: an async function returning a promise would wait for it (the stream's end).
  const done = readSse<{ agent_id: string; events: number }>(res.body, (t, now) => {
    if (!t.agent_id.startsWith(AGENT_PREFIX)) return;
    let reachedAt = sseSeen.get(t.agent_id);
    if (!reachedAt) sseSeen.set(t.agent_id, (reachedAt = [0]));
    for (let k = reachedAt.length; k <= t.events; k++) reachedAt.push(now);
  }).catch((error: unknown) => {
    if (!signal.aborted) throw error;
  });
  return { done };
}

/** When the SSE stream first showed totals that include the event (its agent's count reached its ordinal). */
function sseAt(c: Commit): number | undefined {
  return sseSeen.get(c.agent)?.[c.ordinal];
}

const pool = createPool(settings.database.url, { max: WRITERS + 1, applicationName: 'sluice-bench-livefresh' });

/** Inserts rows as one transaction (one statement); resolves when the COMMIT is acknowledged. */
async function insertRows(rows: { id: string; agent: string; i: number }[]): Promise<number> {
  const type = (i: number) => TYPES[i % TYPES.length]!;
  const money = (i: number) => type(i) !== 'customer_onboarded';
  await pool.query(
    `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source)
     SELECT u.id, u.t, u.a, u.c, u.m, u.cur, now(), u.s FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::char(3)[], $7::text[]) AS u(id, t, a, c, m, cur, s)`,
    [
      rows.map((r) => r.id),
      rows.map((r) => type(r.i)),
      rows.map((r) => r.agent),
      rows.map((r) => `${r.agent}-cust-${r.i % 7}`),
      rows.map((r) => (money(r.i) ? String(1000 + ((r.i * 7919) % 500_000)) : null)),
      rows.map((r) => (money(r.i) ? 'USD' : null)),
      rows.map((r) => ['agent_app', 'mobile', 'web', 'backend'][r.i % 4]!),
    ],
  );
  return performance.now();
}

interface StepResult {
  rate: number;
  txRows: number;
  achievedRate: number;
  events: number;
  writerLateP99: number;
  loadBefore: string;
  loadAfter: string;
  sse: Distribution;
  api: Distribution;
  cdc: Distribution;
  normalizer: Distribution;
  live: Distribution;
  /** Postgres commit (source.ts_ms) -> the CDC record's timestamp: Debezium reading the WAL, its queue, Connect's conversion. */
  debeziumQueue: Distribution;
  /** The CDC record's timestamp -> the observer has it: Connect's producer batching, the broker, a fetch. */
  cdcDelivery: Distribution;
  /** The events-topic record (read_committed) -> the API answers its totals (sampled events). */
  liveApi: Distribution;
  sseMissing: number;
  apiMissing: number;
  firstThirdP50: number;
  lastThirdP50: number;
  held: boolean;
  /** Not held for the path's sake (events missing, lag growing), not only the writers'. */
  pathFailed: boolean;
  why: string;
}

let apiErrors = 0;

/** Polls the API for a sampled event until its totals include it; the time it did, or undefined after 30 s. */
async function pollApi(port: number, c: Commit, month: string): Promise<number | undefined> {
  const deadline = c.committedAt + 30_000;
  while (performance.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/live/agents/${encodeURIComponent(c.agent)}/months/${month}`, { headers: { 'x-api-key': API_KEY } });
      const at = performance.now();
      if (r.status === 200) {
        const t = (await r.json()) as { events: number };
        if (t.events >= c.ordinal) return at;
      } else await r.arrayBuffer();
    } catch {
      // A kept-alive connection the server closed under load: counted, polled again.
      apiErrors++;
    }
    await sleep(20);
  }
  return undefined;
}

async function step(rate: number, livePort: number, processes: SluiceProcess[]): Promise<StepResult> {
  const loadBefore = load();
  const total = rate * SECONDS;
  const TX_ROWS = txRows(rate);
  const txs = Math.ceil(total / TX_ROWS);
  const sampleEvery = Math.max(1, Math.round(rate / API_SAMPLES_PER_SECOND));
  const agentOf = (i: number) => `${AGENT_PREFIX}r${rate}-a${String(i % AGENTS).padStart(5, '0')}`;
  const month = new Date().toISOString().slice(0, 7);
  const commits: Commit[] = [];
  const lateness: number[] = [];
  const polls: Promise<void>[] = [];
  const apiAt = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  const writer = async () => {
    for (;;) {
      const t = next++;
      if (t >= txs) return;
      const due = started + ((t * TX_ROWS) / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const rows = [];
      for (let i = t * TX_ROWS; i < Math.min(total, (t + 1) * TX_ROWS); i++) rows.push({ id: randomUUID(), agent: agentOf(i), i });
      const committedAt = await insertRows(rows);
      lateness.push(committedAt - due);
      for (const r of rows) {
        const c: Commit = { id: r.id, agent: r.agent, ordinal: Math.floor(r.i / AGENTS) + 1, committedAt, sample: r.i % sampleEvery === 0 };
        commits.push(c);
        if (c.sample) polls.push(pollApi(livePort, c, month).then((at) => void (at !== undefined && apiAt.set(c.id, at))));
      }
    }
  };
  let progress = setInterval(() => {
    const seen = commits.filter((c) => sseAt(c) !== undefined).length;
    line(`  ${rate}/s: ${fmt(commits.length)} committed, ${fmt(seen)} in the SSE stream, load ${load()}`);
  }, 15_000);
  try {
    await Promise.race([Promise.all(Array.from({ length: WRITERS }, writer)), ...processes.map((p) => p.exited)]);
    const writeMs = commits.reduce((latest, c) => Math.max(latest, c.committedAt), -Infinity) - started;
    const lastCommit = started + writeMs;
    while (performance.now() < lastCommit + DRAIN_MS && commits.some((c) => sseAt(c) === undefined)) await Promise.race([sleep(100), ...processes.map((p) => p.exited)]);
    await Promise.all(polls);
    clearInterval(progress);
    progress = undefined as never;

    const at = (m: Map<string, number>, c: Commit) => m.get(c.id);
    const sseLat: number[] = [];
    const byTime = [...commits].sort((a, b) => a.committedAt - b.committedAt);
    const perEvent = byTime.map((c) => {
      const s = sseAt(c);
      return s === undefined ? undefined : s - c.committedAt;
    });
    for (const v of perEvent) if (v !== undefined) sseLat.push(v);
    const third = Math.floor(byTime.length / 3);
    const firstThird = distribution(perEvent.slice(0, third).filter((v): v is number => v !== undefined));
    const lastThird = distribution(perEvent.slice(byTime.length - third).filter((v): v is number => v !== undefined));
    const staged = commits.filter((c) => at(atCdc, c) !== undefined && at(atEvents, c) !== undefined && sseAt(c) !== undefined);
    const sseMissing = commits.length - sseLat.length;
    const sampled = commits.filter((c) => c.sample);
    const achievedRate = (commits.length / Math.max(1, writeMs)) * 1000;
    const reasons: string[] = [];
    const writersShort = achievedRate < rate * 0.95;
    if (writersShort) reasons.push(`the writers reached ${fmt(achievedRate)}/s only`);
    if (sseMissing > 0) reasons.push(`${fmt(sseMissing)} events not in the SSE stream ${DRAIN_MS / 1000} s after the last commit`);
    if (!(lastThird.p50 <= 2 * firstThird.p50 + 250)) reasons.push(`the lag grew: p50 ${fmt(firstThird.p50)} ms in the first third, ${fmt(lastThird.p50)} ms in the last`);
    return {
      rate,
      txRows: TX_ROWS,
      achievedRate,
      events: commits.length,
      writerLateP99: distribution(lateness).p99,
      loadBefore,
      loadAfter: load(),
      sse: distribution(sseLat),
      api: distribution(sampled.flatMap((c) => (apiAt.has(c.id) ? [apiAt.get(c.id)! - c.committedAt] : []))),
      cdc: distribution(staged.map((c) => at(atCdc, c)! - c.committedAt)),
      normalizer: distribution(staged.map((c) => at(atEvents, c)! - at(atCdc, c)!)),
      live: distribution(staged.map((c) => sseAt(c)! - at(atEvents, c)!)),
      debeziumQueue: distribution(staged.flatMap((c) => { const k = cdcClock.get(c.id); return k ? [k.recordTsMs - k.sourceTsMs] : []; })),
      cdcDelivery: distribution(staged.flatMap((c) => { const k = cdcClock.get(c.id); return k ? [at(atCdc, c)! - (k.recordTsMs - epochOffset)] : []; })),
      liveApi: distribution(sampled.flatMap((c) => (apiAt.has(c.id) && atEvents.has(c.id) ? [apiAt.get(c.id)! - atEvents.get(c.id)!] : []))),
      sseMissing,
      apiMissing: sampled.length - sampled.filter((c) => apiAt.has(c.id)).length,
      firstThirdP50: firstThird.p50,
      lastThirdP50: lastThird.p50,
      held: reasons.length === 0,
      pathFailed: reasons.length > (writersShort ? 1 : 0),
      why: reasons.join('; '),
    };
  } finally {
    if (progress) clearInterval(progress);
  }
}

/** The broker's floor at this load: send -> a read_committed consumer has it, 200 records/s for 10 s. */
async function reference(admin: Admin): Promise<Distribution> {
  await admin.createTopics({ topics: [{ topic: refTopic, numPartitions: 1 }], waitForLeaders: true });
  const sent = new Map<string, number>();
  const lat: number[] = [];
  const consumer = kafka.consumer({ groupId: groups.reference, maxWaitTimeInMs: 100, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: refTopic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = performance.now();
      for (const m of batch.messages) {
        const at = sent.get(m.key?.toString() ?? '');
        if (at !== undefined) lat.push(now - at);
      }
    },
  });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const n = 2000;
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const due = started + (i / 200) * 1000;
    if (due > performance.now()) await sleep(due - performance.now());
    sent.set(String(i), performance.now());
    sends.push(producer.send({ topic: refTopic, acks: -1, messages: [{ key: String(i), value: 'x' }] }));
  }
  await Promise.all(sends);
  const deadline = performance.now() + 10_000;
  while (lat.length < n && performance.now() < deadline) await sleep(100);
  await producer.disconnect();
  await consumer.disconnect();
  return distribution(lat);
}

function report(r: StepResult): void {
  line(`rate ${fmt(r.rate)} events/s for ${SECONDS} s (${r.txRows} row(s) a transaction): ${fmt(r.events)} events, writers at ${fmt(r.achievedRate)}/s (commit after its due time: p99 ${fmt(r.writerLateP99)} ms), load ${r.loadBefore} -> ${r.loadAfter}`);
  line(`  commit -> API answers the new total: ${describeDistribution(r.api)}${r.apiMissing > 0 ? `, ${r.apiMissing} samples never answered within 30 s` : ''}${apiErrors > 0 ? `, ${apiErrors} requests failed so far (connection closed)` : ''}`);
  line(`  commit -> SSE event with the new total: ${describeDistribution(r.sse)}${r.sseMissing > 0 ? `, ${fmt(r.sseMissing)} missing` : ''}`);
  line(`  stages: commit -> CDC record ${describeDistribution(r.cdc)}`);
  line(`            of which Postgres commit (source.ts_ms) -> CDC record timestamp (Debezium) ${describeDistribution(r.debeziumQueue)}`);
  line(`            and CDC record timestamp -> observer has it (Connect producer, broker, fetch) ${describeDistribution(r.cdcDelivery)}`);
  line(`          CDC record -> events topic (normalizer committed) ${describeDistribution(r.normalizer)}`);
  line(`          events topic -> SSE (live committed, view, stream) ${describeDistribution(r.live)}`);
  line(`          events topic -> API answers (live committed, view, GET; sampled) ${describeDistribution(r.liveApi)}`);
  line(`  lag: p50 ${fmt(r.firstThirdP50)} ms in the first third, ${fmt(r.lastThirdP50)} ms in the last: ${r.held ? 'HELD' : `NOT held (${r.why})`}`);
}

async function main(): Promise<void> {
  line(`machine: ${cpus().length} cores (${cpus()[0]?.model}), Node ${process.version}, load average ${load()} (shared with other sessions)`);
  line(`settings: rates ${RATES.join(', ')} events/s, ${SECONDS} s each, ${fmt(AGENTS)} agents, ${WRITERS} writer connections, rows a transaction ${RATES.map((r) => `${txRows(r)} at ${r}/s`).join(', ')}`);
  const connector = (JSON.parse(readFileSync(`${ROOT}connectors/debezium/staging-agent-events.json`, 'utf8')) as { config: Record<string, string> }).config;
  line(`Debezium connector (shipped): poll.interval.ms ${connector['poll.interval.ms'] ?? 'unset (Debezium default 500)'}, max.batch.size ${connector['max.batch.size'] ?? 'unset (default 2048)'}, producer linger.ms ${connector['producer.override.linger.ms'] ?? 'unset (worker default)'}`);
  await ensureCdcConnector(settings);
  const admin = kafka.admin();
  await admin.connect();
  const codec = new RegistryCodec(settings.registry.url, settings.registry);
  const children: SluiceProcess[] = [];
  const consumers: Consumer[] = [];
  const streamAbort = new AbortController();
  try {
    const ref = await reference(admin);
    line(`reference, kafkajs send -> read_committed consumer has it, 200 records/s for 10 s: ${describeDistribution(ref)}`);

    // On a new stack the CDC topic appears with Debezium's first write.
    if (!(await admin.listTopics()).includes(CDC_TOPIC)) {
      await insertRows([{ id: randomUUID(), agent: `${AGENT_PREFIX}first`, i: 0 }]);
      await waitForTopic(kafka, CDC_TOPIC, 60_000);
    }
    await groupAtEnd(admin, groups.normalizer, CDC_TOPIC);
    await groupAtEnd(admin, groups.cdcObserver, CDC_TOPIC);

    const nPort = await freePort();
    const normalizer = startSluice(['normalizer'], {
      env: {
        SLUICE_LOG_LEVEL: LOG_LEVEL,
        SLUICE_NORMALIZER_GROUP_ID: groups.normalizer,
        SLUICE_NORMALIZER_INSTANCE_ID: `bench-${run}`,
        SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
        SLUICE_NORMALIZER_DLQ_TOPIC: `${base}.normalizer-dlq`,
        SLUICE_NORMALIZER_SUBJECT: `${eventsTopic}-value`,
        SLUICE_NORMALIZER_STATE_DIR: join(stateDir, 'normalizer'),
        SLUICE_NORMALIZER_HTTP_PORT: String(nPort),
      },
      port: nPort,
      label: 'sluice normalizer',
    });
    children.push(normalizer);
    await normalizer.ready(90_000);
    await waitForTopic(kafka, eventsTopic, 60_000);

    const lPort = await freePort();
    const live = startSluice(['live'], {
      env: {
        SLUICE_LOG_LEVEL: LOG_LEVEL,
        SLUICE_LIVE_EVENTS_TOPIC: eventsTopic,
        SLUICE_LIVE_OUTPUT_TOPIC: outputTopic,
        SLUICE_LIVE_DLQ_TOPIC: `${base}.live-dlq`,
        SLUICE_LIVE_GROUP_ID: groups.live,
        SLUICE_LIVE_INSTANCE_ID: `bench-${run}`,
        SLUICE_LIVE_STATE_DIR: join(stateDir, 'live'),
        SLUICE_LIVE_HTTP_PORT: String(lPort),
        SLUICE_LIVE_API_KEY: API_KEY,
      },
      port: lPort,
      label: 'sluice live',
    });
    children.push(live);
    await live.ready(120_000);

    consumers.push(
      await observe(
        CDC_TOPIC,
        groups.cdcObserver,
        async (m) => {
          const id = (JSON.parse(m.key?.toString() ?? '{}') as { event_id?: string }).event_id;
          const sourceTsMs = (JSON.parse(m.value?.toString() ?? '{}') as { source?: { ts_ms?: number } }).source?.ts_ms;
          if (id && typeof sourceTsMs === 'number' && !cdcClock.has(id)) cdcClock.set(id, { sourceTsMs, recordTsMs: Number(m.timestamp) });
          return id;
        },
        atCdc,
      ),
    );
    consumers.push(await observe(eventsTopic, groups.eventsObserver, async (m) => (m.value ? (await codec.decode<{ id: string }>(m.value)).id : undefined), atEvents));
    const streaming = await followStream(lPort, streamAbort.signal);

    // Warm-up (not measured): the first events pay for schema look-ups, JIT and connections.
    const warm: Commit[] = [];
    for (let i = 0; i < 20; i++) {
      const c: Commit = { id: randomUUID(), agent: `${AGENT_PREFIX}warm-${i}`, ordinal: 1, committedAt: 0, sample: false };
      c.committedAt = await insertRows([{ id: c.id, agent: c.agent, i }]);
      warm.push(c);
      await sleep(50);
    }
    const warmDeadline = performance.now() + 120_000;
    while (warm.some((c) => sseAt(c) === undefined)) {
      if (performance.now() > warmDeadline) throw new Error('the warm-up events did not reach the SSE stream within 120 s');
      await Promise.race([sleep(100), ...children.map((c) => c.exited)]);
    }
    line(`path warm: the first event in the SSE stream ${fmt(sseAt(warm[0]!)! - warm[0]!.committedAt)} ms after its commit`);

    const results: StepResult[] = [];
    for (const rate of RATES) {
      const r = await step(rate, lPort, children);
      results.push(r);
      report(r);
      if (r.pathFailed) break;
      await sleep(3000);
    }
    const held = results.filter((r) => r.held);
    const best = held[held.length - 1];
    line(best ? `highest steady rate held: ${fmt(best.rate)} events/s (commit -> API p50 ${fmt(best.api.p50)} ms, p99 ${fmt(best.api.p99)} ms; -> SSE p50 ${fmt(best.sse.p50)} ms, p99 ${fmt(best.sse.p99)} ms)` : 'no rate held');
    for (const r of results) line(`RESULT ${JSON.stringify(r)}`);
    streamAbort.abort();
    await streaming.done;
  } finally {
    streamAbort.abort();
    for (const c of consumers) await c.disconnect().catch(() => undefined);
    for (const child of children.reverse()) await child.stop();
    if (process.env.BENCH_KEEP !== '1') {
      await pool.query('DELETE FROM staging.agent_events WHERE agent_id LIKE $1', [`${AGENT_PREFIX}%`]).catch(() => undefined);
      const topics = [eventsTopic, outputTopic, refTopic, `${base}.normalizer-dlq`, `${base}.live-dlq`, changelogTopicName(groups.live, 'live'), changelogTopicName(groups.normalizer, 'dedupe')];
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.deleteGroups(Object.values(groups)).catch(() => undefined);
    }
    await admin.disconnect();
    await pool.end();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
