import type { Admin, Kafka } from 'kafkajs';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { AgentEventProducer } from './agent-events.js';
import { domainEvent, freePort, LakeCopy, RunnerProcess, runId, stack, testPipeline, verifyLake, waitDrained, type ExpectedEvent } from './export-harness.js';

export interface ChaosOptions {
  kafka: Kafka;
  admin: Admin;
  settings: CoreSettings;
  events: number;
  /** Produce rate: the run lasts events / perSecond seconds. */
  perSecond: number;
  /** How long S3 is stopped mid-run by the default (lake) sink (0: no outage). */
  s3OutageMs: number;
  logPrefix: string;
  log?: (line: string) => void;
  /** Where the pipeline writes and how the result is checked; the Parquet lake on S3 when absent. */
  sink?: ChaosSink;
}

/**
 * The output under test: its pipeline file(s) for the run's topic and group, the server it
 * writes to (stopped mid-run), how to know it drained, and the exactly-once check of what it
 * wrote. The fault choreography itself is the same for every output (runExportChaos).
 */
export interface ChaosSink {
  /** Also the place to send poison records first (`producer`), so every runner generation meets them. */
  pipeline(o: { run: string; topic: string; dlq: string; group: string; producer: AgentEventProducer }): Promise<string | string[]>;
  /** The sink's server, stopped mid-run for `ms` and started again (`failures`: a counter of the runners' write failures, read before and after). */
  outage?: { service: 's3' | 'postgres'; label: string; ms: number; failures?(runners: readonly RunnerProcess[]): Promise<number> };
  /** Waits until every produced event is durable in the sink; default: the group's committed offsets reach the end of the topic. */
  drain?(timeoutMs: number): Promise<void>;
  verify(expected: readonly ExpectedEvent[]): Promise<void>;
}

export interface ChaosResult {
  kills: number;
  rebalances: number;
  outages: number;
  /** Write failures the runners counted while the sink's server was down (sinks that count them). */
  failuresDuringOutage: number;
  seconds: number;
}

/** The s3 output writing the Parquet lake (lake.yaml), checked by DuckDB over the downloaded objects; S3 stopped for `s3OutageMs`. */
function lakeSink(settings: CoreSettings, s3OutageMs: number): ChaosSink {
  let prefix = '';
  return {
    pipeline: async ({ run, topic, dlq, group }) => {
      prefix = `test-export-chaos-${run}/`;
      // Encoding on a worker thread (encode_threads: 1), so kills and rebalances also land while files are with the pool.
      return testPipeline({ topic, dlq, prefix, group, count: 20_000, encodeThreads: 1 });
    },
    ...(s3OutageMs > 0
      ? {
          outage: {
            service: 's3' as const,
            label: 'S3',
            ms: s3OutageMs,
            failures: (runners: readonly RunnerProcess[]) => Promise.all(runners.map((r) => r.metric('sluice_export_upload_failures_total'))).then((n) => n.reduce((x, y) => x + y, 0)),
          },
        }
      : {}),
    verify: async (expected) => {
      const lake = await LakeCopy.download(settings, prefix);
      try {
        await verifyLake(lake, expected);
      } finally {
        lake.close();
      }
    },
  };
}

/**
 * The export's fault run, one choreography for every output (the sink): events trickle in
 * while the runner is SIGKILLed three times at random moments, a second runner joins the
 * group and leaves, and the sink's server is stopped for a while and started again; then the
 * sink must hold every event exactly once.
 */
export async function runExportChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const run = runId();
  const topic = `test.export-chaos.${run}`;
  const group = `test-export-chaos-${run}`;
  const sink = o.sink ?? lakeSink(o.settings, o.s3OutageMs);
  const producer = new AgentEventProducer(o.kafka, o.settings, topic);
  await producer.setUp();
  const files = await sink.pipeline({ run, topic, dlq: `${topic}.dlq`, group, producer });
  const started = Date.now();
  const duration = (o.events / o.perSecond) * 1000;
  const at = (fraction: number) => waitUntil(started + fraction * duration * jitter());
  const result: ChaosResult = { kills: 0, rebalances: 0, outages: 0, failuresDuringOutage: 0, seconds: 0 };
  let generation = 0;
  const newRunner = async (name: string) => new RunnerProcess(files, `${o.logPrefix}-${run}-${name}-${++generation}`, await freePort()).start();

  let a = await newRunner('a');
  let b: RunnerProcess | undefined;
  const produced = producer.trickle((i) => domainEvent(run, i), 0, o.events, o.perSecond);
  produced.catch(() => undefined);
  try {
    await a.ready();
    const kill = async () => {
      await a.kill('SIGKILL');
      result.kills++;
      log(`SIGKILL runner a at ${seconds(started)} s`);
      a = await newRunner('a');
      await a.ready();
    };
    await at(0.15);
    await kill();
    await at(0.25);
    b = await newRunner('b');
    await b.ready();
    result.rebalances++;
    log(`runner b joined at ${seconds(started)} s`);
    await at(0.35);
    await kill();
    await at(0.45);
    const outage = sink.outage;
    if (outage) {
      const failuresBefore = (await outage.failures?.([a, b])) ?? 0;
      stack('down', outage.service);
      log(`${outage.label} stopped at ${seconds(started)} s`);
      try {
        await new Promise((r) => setTimeout(r, outage.ms));
      } finally {
        stack('up', outage.service);
      }
      result.outages++;
      log(`${outage.label} started at ${seconds(started)} s`);
      result.failuresDuringOutage = ((await outage.failures?.([a, b])) ?? 0) - failuresBefore;
    }
    await at(0.75);
    if ((await b.kill('SIGTERM')) !== 0) throw new Error(`runner b did not stop cleanly; see ${b.log}`);
    result.rebalances++;
    log(`runner b left at ${seconds(started)} s`);
    await at(0.85);
    await kill();
    await produced;
    log(`all ${o.events} events produced at ${seconds(started)} s`);
    const drainMs = 180_000 + o.events / 5;
    await (sink.drain ? sink.drain(drainMs) : waitDrained(o.admin, group, topic, drainMs));
    log(`drained at ${seconds(started)} s`);
    if ((await a.kill('SIGTERM')) !== 0) throw new Error(`runner a did not stop cleanly; see ${a.log}`);
  } finally {
    await a.kill('SIGKILL');
    await b?.kill('SIGKILL');
  }
  const expected: ExpectedEvent[] = Array.from({ length: o.events }, (_, i) => domainEvent(run, i));
  await sink.verify(expected);
  result.seconds = seconds(started);
  return result;
}

function jitter(): number {
  return 0.95 + Math.random() * 0.1;
}

async function waitUntil(t: number): Promise<void> {
  const wait = t - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}
