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
  /** How long S3 is stopped mid-run (0: no outage, for a sink that does not use S3). */
  s3OutageMs: number;
  logPrefix: string;
  log?: (line: string) => void;
  /** Where the pipeline writes and how the result is checked; the Parquet lake on S3 when absent. */
  sink?: ChaosSink;
}

/** The output under test: its pipeline file for the run's topics and group, and the exactly-once check of what it wrote. */
export interface ChaosSink {
  pipeline(o: { run: string; topic: string; dlq: string; group: string }): Promise<string>;
  verify(expected: readonly ExpectedEvent[]): Promise<void>;
}

/** The s3 output writing the Parquet lake (lake.yaml), checked by DuckDB over the downloaded objects. */
function lakeSink(settings: CoreSettings): ChaosSink {
  let prefix = '';
  return {
    pipeline: async ({ run, topic, dlq, group }) => {
      prefix = `test-export-chaos-${run}/`;
      // Encoding on a worker thread (encode_threads: 1), so kills and rebalances also land while files are with the pool.
      return testPipeline({ topic, dlq, prefix, group, count: 20_000, encodeThreads: 1 });
    },
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

export interface ChaosResult {
  kills: number;
  rebalances: number;
  uploadFailuresDuringOutage: number;
  seconds: number;
}

/**
 * The export's fault run: events trickle in while the runner is SIGKILLed three times at
 * random moments, a second runner joins the group and leaves, and S3 is stopped for a
 * while and started again; then the lake must hold every event exactly once.
 */
export async function runExportChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const run = runId();
  const topic = `test.export-chaos.${run}`;
  const group = `test-export-chaos-${run}`;
  const sink = o.sink ?? lakeSink(o.settings);
  const file = await sink.pipeline({ run, topic, dlq: `${topic}.dlq`, group });
  const producer = new AgentEventProducer(o.kafka, o.settings, topic);
  await producer.setUp();
  const started = Date.now();
  const duration = (o.events / o.perSecond) * 1000;
  const at = (fraction: number) => waitUntil(started + fraction * duration * jitter());
  const result: ChaosResult = { kills: 0, rebalances: 0, uploadFailuresDuringOutage: 0, seconds: 0 };
  let generation = 0;
  const newRunner = async (name: string) => new RunnerProcess(file, `${o.logPrefix}-${run}-${name}-${++generation}`, await freePort()).start();

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
    if (o.s3OutageMs > 0) {
      const failuresBefore = (await a.metric('sluice_export_upload_failures_total')) + (await b.metric('sluice_export_upload_failures_total'));
      stack('down', 's3');
      log(`S3 stopped at ${seconds(started)} s`);
      try {
        await new Promise((r) => setTimeout(r, o.s3OutageMs));
      } finally {
        stack('up', 's3');
      }
      log(`S3 started at ${seconds(started)} s`);
      result.uploadFailuresDuringOutage = (await a.metric('sluice_export_upload_failures_total')) + (await b.metric('sluice_export_upload_failures_total')) - failuresBefore;
    }
    await at(0.75);
    if ((await b.kill('SIGTERM')) !== 0) throw new Error(`runner b did not stop cleanly; see ${b.log}`);
    result.rebalances++;
    log(`runner b left at ${seconds(started)} s`);
    await at(0.85);
    await kill();
    await produced;
    log(`all ${o.events} events produced at ${seconds(started)} s`);
    await waitDrained(o.admin, group, topic, 180_000 + o.events / 5);
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
