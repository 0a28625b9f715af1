/**
 * Normalizer scale-out: one instance vs two over the same backlog of a 6-partition CDC
 * topic, and what a partition move costs when an instance dies or leaves.
 *   1. prefill BENCH_RECORDS (300,000) synthetic Debezium records into 6 partitions;
 *   2. one normalizer process (`sluice normalizer`) over the backlog: records/s, first to
 *      last commit;
 *   3. two processes (one group, distinct instance ids) over the same backlog, from a
 *      fresh group: records/s from the first commit of either to the last of both;
 *   4. partition moves, each from a fresh group with two processes mid-backlog: one is
 *      SIGKILLed (session timeout 30 s, the default, then 10 s) or SIGTERMed (it leaves the
 *      group); seconds until the survivor holds all 6 partitions, until it has committed
 *      a batch of each moved partition, and until the events topic's last stable offset
 *      moves on (a transaction the killed instance left open holds it, and every
 *      read_committed reader with it, until the broker aborts it: the transaction timeout).
 * Run: `BENCH_ONLY=normalizer-scale npm run bench`. Env: BENCH_RECORDS, BENCH_PARTITIONS (6).
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { randomUUID } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { sleep } from '../processors/core/errors/retry.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { groupAssignment } from '../test/support/kafka.js';
import { prefillCdcTopic } from './support/cdc-backlog.js';
import { freePort, metricSum, startSluice, type SluiceProcess } from './support/processes.js';

const N = Number(process.env.BENCH_RECORDS ?? 300_000);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 6);

const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: 'sluice-bench' });
const run = randomUUID().slice(0, 8);
const cdcTopic = `bench.normalizer-scale.${run}.cdc`;
const topics = new Set<string>([cdcTopic]);
const groups = new Set<string>();
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
const seconds = (ms: number) => (ms / 1000).toFixed(1);

async function startInstances(label: string, count: number, env: Record<string, string> = {}): Promise<{ procs: SluiceProcess[]; eventsTopic: string; groupId: string }> {
  const groupId = `bench-normalizer-scale-${run}-${label}`;
  const eventsTopic = `bench.normalizer-scale.${run}.${label}.events`;
  groups.add(groupId);
  topics.add(eventsTopic).add(`${eventsTopic}.dlq`);
  const procs: SluiceProcess[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    procs.push(
      startSluice(['normalizer'], {
        label: `normalizer ${label}-${i}`,
        port,
        env: {
          SLUICE_LOG_LEVEL: 'warn',
          // A client id of its own, so the group's description tells which partitions it holds.
          SLUICE_KAFKA_CLIENT_ID: `sluice-${label}-${i}`,
          SLUICE_NORMALIZER_CDC_TOPIC: cdcTopic,
          SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
          SLUICE_NORMALIZER_DLQ_TOPIC: `${eventsTopic}.dlq`,
          SLUICE_NORMALIZER_SUBJECT: `bench.normalizer-scale.${run}.events-value`,
          SLUICE_NORMALIZER_GROUP_ID: groupId,
          SLUICE_NORMALIZER_INSTANCE_ID: `${label}-${i}-${run}`,
          SLUICE_NORMALIZER_HTTP_PORT: String(port),
          ...env,
        },
      }),
    );
  }
  return { procs, eventsTopic, groupId };
}

const committed = async (p: SluiceProcess) => metricSum(await p.metrics(), 'sluice_normalizer_records_total');

/** The whole backlog by `count` instances from a fresh group: records/s from the first commit to the last. */
async function throughput(count: number): Promise<{ steadyRate: number; withStartRate: number; ms: number; startMs: number; shares: number[]; load: number }> {
  const started = Date.now();
  const { procs } = await startInstances(`x${count}`, count);
  let first = 0;
  let firstCount = 0;
  for (;;) {
    const counts = await Promise.all(procs.map(committed));
    const total = counts.reduce((a, b) => a + b, 0);
    if (!first && total > 0) {
      first = Date.now();
      firstCount = total;
    }
    if (total >= N) {
      const end = Date.now();
      const load = loadavg()[0]!;
      await Promise.all(procs.map((p) => p.stop()));
      return { steadyRate: rate(N - firstCount, end - first), withStartRate: rate(N, end - started), ms: end - first, startMs: first - started, shares: counts, load };
    }
    await Promise.race([sleep(100), ...procs.map((p) => p.exited)]);
  }
}

interface Move {
  how: string;
  assignedS: number;
  consumedS: number;
  visibleS: number;
}

/** Two instances mid-backlog; one dies (SIGKILL) or leaves (SIGTERM); what the move costs. */
async function partitionMove(how: 'SIGKILL' | 'SIGTERM', sessionTimeoutMs: number): Promise<Move> {
  const label = `${how.toLowerCase()}-${sessionTimeoutMs}`;
  const { procs, eventsTopic, groupId } = await startInstances(label, 2, { SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: String(sessionTimeoutMs) });
  const [victim, survivor] = procs as [SluiceProcess, SluiceProcess];
  let victimPartitions: number[] = [];
  for (;;) {
    const g = await groupAssignment(kafka, groupId, cdcTopic);
    if (g.state === 'Stable' && g.members.length === 2 && g.members.every((m) => m.partitions.length > 0) && (await committed(victim)) > 0 && (await committed(survivor)) > 0) {
      victimPartitions = g.members.find((m) => m.clientId.startsWith(`sluice-${label}-0-`))!.partitions;
      break;
    }
    await Promise.race([sleep(100), victim.exited, survivor.exited]);
  }
  const at = Date.now();
  if (how === 'SIGKILL') {
    victim.child.kill('SIGKILL');
    await new Promise((r) => (victim.child.exitCode !== null || victim.child.signalCode !== null ? r(undefined) : victim.child.once('exit', r)));
  }
  await victim.stop(); // SIGTERM: a graceful stop (it commits and leaves the group); after a SIGKILL: marks the exit as expected
  // The moved partitions' committed offsets once the victim is gone: they advance when the survivor commits a batch of each.
  const admin = kafka.admin();
  await admin.connect();
  const offsetsOf = async () => new Map((await admin.fetchOffsets({ groupId, topics: [cdcTopic] }))[0]!.partitions.map((p) => [p.partition, BigInt(p.offset)]));
  const left = await offsetsOf();
  // The events topic's last stable offsets (ListOffsets read_committed): a transaction the
  // victim left open holds them until the broker aborts it; they pass it then.
  const stableOf = async () => new Map((await admin.fetchTopicOffsets(eventsTopic)).map((o) => [o.partition, BigInt(o.high)]));
  const stableAtKill = await stableOf();
  let assigned = 0;
  let consumed = 0;
  let visible = 0;
  while (!assigned || !consumed || !visible) {
    if (!assigned) {
      const g = await groupAssignment(kafka, groupId, cdcTopic);
      if (g.state === 'Stable' && g.members.length === 1 && g.members[0]!.partitions.length === PARTITIONS) assigned = Date.now();
    }
    if (!consumed) {
      const now = await offsetsOf();
      if (victimPartitions.every((p) => now.get(p)! > left.get(p)!)) consumed = Date.now();
    }
    if (!visible) {
      const now = await stableOf();
      if ([...stableAtKill].every(([p, o]) => now.get(p)! > o)) visible = Date.now();
    }
    if (Date.now() - at > 600_000) throw new Error(`${how}: the move did not complete within 600 s (assigned ${!!assigned}, consumed ${!!consumed}, visible ${!!visible})`);
    await Promise.race([sleep(100), survivor.exited]);
  }
  await admin.disconnect();
  await survivor.stop();
  return { how: `${how}${how === 'SIGKILL' ? `, session timeout ${sessionTimeoutMs / 1000} s` : ''}`, assignedS: (assigned - at) / 1000, consumedS: (consumed - at) / 1000, visibleS: (visible - at) / 1000 };
}

async function cleanup(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const ours = [...topics].filter((t) => existing.has(t));
  if (ours.length > 0) await admin.deleteTopics({ topics: ours }).catch(() => undefined);
  await admin.deleteGroups([...groups]).catch(() => undefined);
  await admin.disconnect();
}

try {
  console.log(`normalizer scale-out bench: ${N} records, ${PARTITIONS} CDC partitions, ${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const fill = await prefillCdcTopic(kafka, cdcTopic, N, PARTITIONS);
  console.log(`prefill: ${N} Debezium JSON records, ${(fill.bytes / 2 ** 20).toFixed(1)} MiB, in ${seconds(fill.ms)} s`);
  const one = await throughput(1);
  console.log(`one instance: ${one.steadyRate} records/s first to last commit (${seconds(one.ms)} s), ${one.withStartRate} records/s with its ${seconds(one.startMs)} s start; load average at the end ${one.load.toFixed(1)}`);
  const two = await throughput(2);
  console.log(
    `two instances: ${two.steadyRate} records/s first to last commit (${seconds(two.ms)} s), ${two.withStartRate} records/s with the ${seconds(two.startMs)} s start; ` +
      `shares ${two.shares.join(' / ')}; ${(two.steadyRate / one.steadyRate).toFixed(2)}x one instance; load average at the end ${two.load.toFixed(1)}`,
  );
  const moves: Move[] = [];
  for (const [how, session] of [['SIGKILL', 30_000], ['SIGKILL', 10_000], ['SIGTERM', 30_000]] as const) {
    const m = await partitionMove(how, session);
    moves.push(m);
    console.log(`partition move (${m.how}): survivor holds all ${PARTITIONS} partitions after ${m.assignedS.toFixed(1)} s, has committed a batch of each moved partition after ${m.consumedS.toFixed(1)} s; the events topic's last stable offset (read_committed) moves on after ${m.visibleS.toFixed(1)} s`);
  }
  console.log(JSON.stringify({ records: N, partitions: PARTITIONS, oneRecordsPerSec: one.steadyRate, twoRecordsPerSec: two.steadyRate, oneWithStart: one.withStartRate, twoWithStart: two.withStartRate, shares: two.shares, moves, loadavg: loadavg() }));
} finally {
  await cleanup();
}
