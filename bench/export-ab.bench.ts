/**
 * The S3 export before/after a change, on ONE backlog (issue 13: the S3 output after the
 * runner split, no regression beyond +-10 %). Another built checkout of Sluice
 * (BENCH_AB_OTHER: its root, `npm run build` done in it) and this one run `sluice run` in
 * turn on the same topic, each in a new consumer group writing under its own prefix, with
 * the same pipeline file (the other checkout's connectors/exports/lake.yaml, topic, DLQ and
 * path replaced, so both read the same settings); pairs alternate which goes first, so a
 * drift of the machine's load does not favour one side. Per run: records/s from the first
 * commit to the last (the group's committed offsets against the end offsets, every 250 ms),
 * peak RSS (VmRSS every 250 ms, VmHWM at the end), the load average at its start.
 * Env: BENCH_AB_OTHER (required), BENCH_AB_EVENTS (200,000), BENCH_AB_PAIRS (3).
 * Run: `tsc -p tsconfig.bench.json && BENCH_AB_OTHER=/path/to/old/ node dist/bench/export-ab.bench.js` with the stack up.
 */
import './support/stack-env.js'; // first: the local stack's endpoints before the settings load
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { coreSettings } from '../processors/core/config/core-settings.js';
import { loadSettings } from '../processors/core/config/settings.js';
import { sleep } from '../processors/core/errors/retry.js';
import { createKafka } from '../processors/core/kafka/client.js';
import { RegistryRestClient } from '../processors/core/registry/ccompat.js';
import { produceAgentEventBacklog } from './support/agent-events.js';
import { freePort, memoryKb, ROOT, startSluice } from './support/processes.js';

const OTHER = process.env.BENCH_AB_OTHER?.replace(/\/?$/, '/');
if (!OTHER) throw new Error('BENCH_AB_OTHER: set it to the root of another built checkout of Sluice (git worktree add DIR COMMIT; cd DIR; npm run build)');
const N = Number(process.env.BENCH_AB_EVENTS ?? 200_000);
const PAIRS = Number(process.env.BENCH_AB_PAIRS ?? 3);
const PARTITIONS = 6;

const settings = loadSettings(coreSettings);
const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: 'sluice-bench-ab' });
const registry = new RegistryRestClient(settings.registry.url, settings.registry);
const run = randomUUID().slice(0, 8);
const topic = `bench.ab.${run}.events`;
const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-ab-'));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

/** The other checkout's lake.yaml with this run's topic, DLQ topic and a path prefix of its own. */
function pipelineFile(label: string): string {
  let text = readFileSync(`${OTHER}connectors/exports/lake.yaml`, 'utf8');
  const swap = (from: RegExp, to: string) => {
    if (!from.test(text)) throw new Error(`${OTHER}connectors/exports/lake.yaml: ${from} not found; update bench/export-ab.bench.ts`);
    text = text.replace(from, to);
  };
  swap(/topics: \[sluice\.agent-events\]/, `topics: [${topic}]`);
  swap(/topic: sluice\.agent-events\.export\.dlq/, `topic: ${topic}.${label}.dlq`);
  swap(/path: lake\/agent_events\//, `path: bench/ab-${run}/${label}/lake/`);
  const file = join(tmp, `lake-${label}.yaml`);
  writeFileSync(file, text);
  return file;
}

async function committed(admin: Admin, groupId: string): Promise<number> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (offsets?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
}

async function exportOnce(side: 'before' | 'after', label: string): Promise<{ perSec: number; seconds: number; peakRssMiB: number; load: string }> {
  const admin = kafka.admin();
  await admin.connect();
  const group = `bench-ab-${label}-${run}`;
  const port = await freePort();
  const loadAtStart = load();
  const proc = startSluice(['run', pipelineFile(label)], {
    env: { SLUICE_LAKE_CONSUMER_GROUP: group, SLUICE_EXPORT_HTTP_PORT: String(port), SLUICE_LOG_LEVEL: 'warn' },
    port,
    label: `sluice run (${side})`,
    ...(side === 'before' ? { root: OTHER } : { root: ROOT }),
  });
  let peakKb = 0;
  let first = 0;
  let firstCount = 0;
  let last = 0;
  let lastProgressAt = Date.now();
  try {
    for (;;) {
      await Promise.race([sleep(250), proc.exited]);
      const now = Date.now();
      peakKb = Math.max(peakKb, memoryKb(proc.pid, 'VmRSS'));
      const done = await committed(admin, group);
      if (!first && done > 0) [first, firstCount] = [now, done];
      if (done > last) [last, lastProgressAt] = [done, now];
      if (done >= N) {
        peakKb = Math.max(peakKb, memoryKb(proc.pid, 'VmHWM'));
        const seconds = (now - first) / 1000;
        return { perSec: (N - firstCount) / Math.max(0.001, seconds), seconds, peakRssMiB: Math.round(peakKb / 1024), load: loadAtStart };
      }
      if (now - lastProgressAt > 120_000) throw new Error(`${side}: the export committed nothing for 120 s (${fmt(done)} of ${fmt(N)})`);
    }
  } finally {
    await proc.stop();
    await admin.disconnect();
  }
}

async function main(): Promise<void> {
  console.log(`export A/B bench: ${fmt(N)} events, ${PAIRS} pairs; before = ${OTHER}, after = ${ROOT}; load ${load()}`);
  await produceAgentEventBacklog(kafka, registry, { topic, partitions: PARTITIONS, total: N });
  const ratios: number[] = [];
  for (let pair = 1; pair <= PAIRS; pair++) {
    const order: ('before' | 'after')[] = pair % 2 === 1 ? ['before', 'after'] : ['after', 'before'];
    const results: Record<string, Awaited<ReturnType<typeof exportOnce>>> = {};
    for (const side of order) results[side] = await exportOnce(side, `${side}-${pair}`);
    const { before, after } = results as { before: Awaited<ReturnType<typeof exportOnce>>; after: Awaited<ReturnType<typeof exportOnce>> };
    const ratio = after.perSec / before.perSec;
    ratios.push(ratio);
    console.log(
      `  pair ${pair} (${order.join(' then ')}): before ${fmt(before.perSec)} records/s (${before.seconds.toFixed(1)} s, peak RSS ${before.peakRssMiB} MiB, load ${before.load}); after ${fmt(after.perSec)} records/s (${after.seconds.toFixed(1)} s, peak RSS ${after.peakRssMiB} MiB, load ${after.load}); after / before = ${(ratio * 100).toFixed(0)} %`,
    );
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  console.log(`  median after / before = ${(sorted[Math.floor(sorted.length / 2)]! * 100).toFixed(0)} % over ${PAIRS} pairs; load at the end ${load()}`);
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
