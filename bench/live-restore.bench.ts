/**
 * `BENCH_ONLY=live-restore npm run bench`: restore time and disk of `sluice live`'s state
 * for many agent-months (issue 14: "restore time and disk for 1M agent-months").
 *  1. the changelog of BENCH_RESTORE_AGENT_MONTHS agent-months (default 1,000,000), written
 *     straight to `<group>-live-changelog` in live's own packed format
 *     (processors/live/changelog.ts, the records live's transactions write): per
 *     agent-month its totals, BENCH_RESTORE_EVENTS_PER_AGENT_MONTH counted event ids
 *     (default 1) and one onboarded customer in three; 6 partitions, the current month;
 *  2. `sluice live` (a child process) with no local store: the time from spawn until every
 *     partition's store is rebuilt from the changelog (sluice_state_restore_seconds, kind
 *     full), the peak RSS meanwhile, and the local store's size on disk;
 *  3. stopped (SIGTERM) and started again with its local store: the time until every
 *     partition is current again (kind catch-up: the store is reused, only the changelog's
 *     tail past the store's offset is read).
 * Producing the changelog directly (not through a backlog of events) builds 1M
 * agent-months in seconds; the records are the bytes live writes, so the restore reads
 * exactly what it would after live counted those events.
 */
import './support/stack-env.js';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { sleep } from '../processors/core/errors/retry.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { changelogTopicName } from '../processors/core/state/changelog.js';
import { encodeEntry, type StateChange } from '../processors/core/state/partition-store.js';
import { encodeTotals, eventKey, totalsKey } from '../processors/live/aggregate.js';
import { customerKey } from '../processors/live/customers.js';
import { hourOf } from '../processors/live/months.js';
import { LIVE_CHANGELOG_CODEC } from '../processors/live/changelog.js';
import { closesAt } from '../processors/live/months.js';
import { freePort, memoryKb, metricSum, startSluice, type SluiceProcess } from './support/processes.js';

const AGENT_MONTHS = Number(process.env.BENCH_RESTORE_AGENT_MONTHS ?? 1_000_000);
const EVENTS_PER = Number(process.env.BENCH_RESTORE_EVENTS_PER_AGENT_MONTH ?? 1);
const PARTITIONS = 6;
/** Agent-months of one changelog write (a live transaction's worth: a fetch of 6 partitions). */
const CHUNK = 5_000;
const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, logLevel: 'nothing' } as never);
const run = randomUUID().slice(0, 8);
const eventsTopic = `bench.live-restore.${run}.events`;
const outputTopic = `bench.live-restore.${run}.out`;
const groupId = `bench-live-restore-${run}`;
const changelog = changelogTopicName(groupId, 'live');
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-live-restore-bench-'));
const API_KEY = `bench-live-key-${run}-0123456789`;
const OPEN_MONTHS = 3;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const line = (s: string) => console.log(s);
const load = () => loadavg()[0]!.toFixed(1);

async function createTopics(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const retentionMs = String((OPEN_MONTHS + 1) * 31 * 86_400_000);
  await admin.createTopics({
    topics: [
      { topic: eventsTopic, numPartitions: PARTITIONS },
      // As topic-plan.ts' liveChangelogTopic creates it (live checks cleanup.policy at its start).
      { topic: changelog, numPartitions: PARTITIONS, configEntries: [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.ms', value: retentionMs }, { name: 'segment.bytes', value: String(64 * 1024 * 1024) }] },
    ],
    waitForLeaders: true,
  });
  await admin.disconnect();
}

/** Writes the agent-months' changelog; returns its bytes (keys + values, before Kafka's framing) and records. */
async function writeChangelog(): Promise<{ bytes: number; records: number; entries: number; ms: number }> {
  const month = new Date().toISOString().slice(0, 7);
  const expiresAt = closesAt(month, OPEN_MONTHS);
  const empty = encodeEntry(Buffer.alloc(0), expiresAt);
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, idempotent: true });
  await producer.connect();
  const started = Date.now();
  let bytes = 0;
  let records = 0;
  let entries = 0;
  const inflight = new Set<Promise<void>>();
  for (let from = 0; from < AGENT_MONTHS; from += CHUNK * PARTITIONS) {
    const messages = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const changes: StateChange[] = [];
      for (let i = from + p; i < Math.min(AGENT_MONTHS, from + CHUNK * PARTITIONS); i += PARTITIONS) {
        const agent = `agent-${String(i).padStart(7, '0')}`;
        for (let k = 0; k < EVENTS_PER; k++) changes.push({ key: eventKey(randomUUID(), BigInt(Date.now()) * 1000n), entry: empty });
        const onboarded = i % 3 === 0 ? 1 : 0;
        if (onboarded) changes.push({ key: customerKey(hourOf(BigInt(Date.now()) * 1000n), agent, month, `customer-${i}`), entry: empty });
        const totals = { events: EVENTS_PER, customersOnboarded: onboarded, depositsMinor: BigInt(i) * 100n, withdrawalsMinor: 0n, investmentsMinor: 0n };
        changes.push({ key: totalsKey(agent, month), entry: encodeEntry(encodeTotals(totals), expiresAt) });
      }
      entries += changes.length;
      for (const m of LIVE_CHANGELOG_CODEC.encode(changes, p)) {
        bytes += Buffer.byteLength(m.key as string) + (m.value as Buffer).length;
        messages.push({ ...m, partition: p });
      }
    }
    records += messages.length;
    const sending: Promise<void> = producer.send({ topic: changelog, acks: -1, messages }).then(() => void inflight.delete(sending));
    inflight.add(sending);
    if (inflight.size >= 2) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await producer.disconnect();
  return { bytes, records, entries, ms: Date.now() - started };
}

function liveProcess(port: number): SluiceProcess {
  return startSluice(['live'], {
    label: 'sluice live (restore bench)',
    port,
    env: {
      SLUICE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      SLUICE_LIVE_EVENTS_TOPIC: eventsTopic,
      SLUICE_LIVE_OUTPUT_TOPIC: outputTopic,
      SLUICE_LIVE_DLQ_TOPIC: `bench.live-restore.${run}.dlq`,
      SLUICE_LIVE_GROUP_ID: groupId,
      SLUICE_LIVE_INSTANCE_ID: 'restore-0',
      SLUICE_LIVE_STATE_DIR: stateDir,
      SLUICE_LIVE_HTTP_PORT: String(port),
      SLUICE_LIVE_API_KEY: API_KEY,
      SLUICE_LIVE_OPEN_MONTHS: String(OPEN_MONTHS),
    },
  });
}

/** Spawns live and waits until every partition's restore of `kind` is done: seconds from spawn, the restores' own sum, records, entries, peak RSS. */
async function timedRestore(kind: 'full' | 'catch-up'): Promise<{ p: SluiceProcess; spawnS: number; sumS: number; records: number; entries: number; peakMb: number; load: string }> {
  const port = await freePort();
  const startLoad = load();
  const started = Date.now();
  const p = liveProcess(port);
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, memoryKb(p.pid, 'VmHWM'));
    } catch {
      /* exited */
    }
  }, 500);
  try {
    for (;;) {
      const text = await Promise.race([p.metrics().catch(() => undefined), p.exited]);
      const pattern = (name: string) => new RegExp(`^${name}\\{[^}]*kind="${kind}"[^}]*\\} ([0-9.e+-]+)`, 'gm');
      const count = [...(text ?? '').matchAll(pattern('sluice_state_restore_seconds_count'))].reduce((n, x) => n + Number(x[1]), 0);
      if (count >= PARTITIONS) {
        const spawnS = (Date.now() - started) / 1000;
        const sumS = [...text!.matchAll(pattern('sluice_state_restore_seconds_sum'))].reduce((n, x) => n + Number(x[1]), 0);
        peak = Math.max(peak, memoryKb(p.pid, 'VmHWM'));
        return { p, spawnS, sumS, records: metricSum(text, 'sluice_state_restored_records_total'), entries: metricSum(text, 'sluice_state_entries'), peakMb: peak / 1024, load: `${startLoad} -> ${load()}` };
      }
      await sleep(250);
    }
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  line(`machine: ${cpus().length} cores (${cpus()[0]?.model}), Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (shared with other sessions)`);
  await createTopics();
  const c = await writeChangelog();
  line(`changelog ${changelog}: ${fmt(AGENT_MONTHS)} agent-months (${EVENTS_PER} event id${EVENTS_PER === 1 ? '' : 's'} each, a customer in three), ${fmt(c.entries)} entries in ${fmt(c.records)} packed records, ${(c.bytes / 1048576).toFixed(1)} MiB (keys + values), written in ${(c.ms / 1000).toFixed(1)} s`);

  const full = await timedRestore('full');
  line(`restore, no local store: ${full.spawnS.toFixed(1)} s from spawn to every partition restored (restores ${full.sumS.toFixed(1)} s in all, in parallel), ${fmt(full.records)} changelog records, ${fmt(full.entries)} entries; peak RSS ${full.peakMb.toFixed(0)} MB; load ${full.load}`);
  await full.p.stop();
  const disk = execFileSync('du', ['-sm', stateDir]).toString().split('\t')[0];
  line(`local store on disk: ${disk} MiB (SQLite, ${PARTITIONS} partitions, ${fmt(full.entries)} entries)`);

  const again = await timedRestore('catch-up');
  line(`restart with the local store current: ${again.spawnS.toFixed(1)} s from spawn to every partition current (catch-ups ${again.sumS.toFixed(1)} s in all), ${fmt(again.records)} changelog records read; peak RSS ${again.peakMb.toFixed(0)} MB; load ${again.load}`);
  await again.p.stop();

  const admin = kafka.admin();
  await admin.connect();
  if (process.env.BENCH_KEEP !== '1') await admin.deleteTopics({ topics: [eventsTopic, outputTopic, `bench.live-restore.${run}.dlq`, changelog] }).catch(() => undefined);
  await admin.disconnect();
  rmSync(stateDir, { recursive: true, force: true });
}

await main();
process.exit(0);
