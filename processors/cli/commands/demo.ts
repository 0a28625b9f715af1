import { Command } from 'commander';
import type { Admin } from 'kafkajs';
import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { RegistryCodec } from '../../core/registry/codec.js';
import { createS3Client } from '../../core/s3/client.js';
import { createPool } from '../../core/db/pool.js';
import { ConnectClient, loadConnectorSpec } from '../../core/connect/client.js';
import { withRetry } from '../../core/errors/retry.js';
import { PermanentError } from '../../core/errors/errors.js';
import { ensureTopics, waitForTopic } from '../../core/kafka/topics.js';
import { cliSettings, useStackEnv } from '../context.js';
import { runStack } from './stack.js';
import { CONNECTORS_DIR, connectorVars } from './connectors.js';
import { demoContext, type DemoContext } from '../demo/context.js';
import { endOffsets, readUntil } from '../demo/read.js';
import { pipelineStep } from '../demo/pipeline-step.js';
import { lakeStep } from '../demo/lake-step.js';
import { reportStep } from '../demo/report-step.js';
import { liveStep } from '../demo/live-step.js';
import { DEMO_MONTH } from '../demo/pipeline-step.js';

const CDC_TOPIC = 'sluice.staging.agent_events';
const ROUNDTRIP_TOPIC = 'sluice.demo.roundtrip';
/** How long the demo waits for a topic another component creates (Debezium's on its first change). */
const TOPIC_WAIT_MS = 120_000;

let currentStep = 0;
const step = (n: number, text: string) => {
  currentStep = n;
  console.log(`\n[${n}/8] ${text}`);
};

/**
 * The main job until the processors land: the stack up, then one round trip through
 * every component, printed as it goes. The terminal shows the steps only; every library
 * and processor log goes to one file (named at the start). A step that fails prints one
 * line naming the server to check, and the command exits non-zero.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('start the local stack, run a round trip through every server, then post a month of demo events through the ingest API and the normalizer export them to the Parquet lake and request their commission report')
    .option('--no-stack', 'use servers already running (e.g. docker compose) instead of starting the local stack')
    .addHelpText('after', '\nLogs (the demo\'s clients and the processors it runs, JSON lines): .sluice/logs/demo.log, or SLUICE_LOG_FILE; level SLUICE_LOG_LEVEL (default info).')
    .action(async (opts: { stack: boolean }, cmd: Command) => {
      if (opts.stack) {
        step(1, 'local stack (infra/local/stack up)');
        const code = runStack(['up']);
        if (code !== 0) throw new PermanentError(`the local stack did not start (exit ${code}): see the lines above and infra/local/stack status`);
        useStackEnv(); // the endpoints of the stack just started (stack up rewrote .sluice/stack.env)
      }
      const ctx = demoContext(cliSettings(cmd));
      console.log(`\nlogs of this run (its clients and the processors it starts): ${ctx.logFile}`);
      try {
        await runSteps(ctx);
      } catch (error) {
        // One line on the terminal; the stack trace and the libraries' lines are in the log file.
        ctx.logger.error({ err: error, step: currentStep }, 'demo failed');
        const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
        throw new DemoFailed(`demo failed at step ${currentStep}/8: ${message} (details: ${ctx.logFile})`);
      }
      console.log('\ndone: every component answered, the demo month is in the Parquet lake, its commission report is on S3, and live equals the report');
    });
}

class DemoFailed extends PermanentError {}

async function runSteps(ctx: DemoContext): Promise<void> {
  const admin = ctx.kafka.admin();
  await withRetry(() => admin.connect());
  try {
    await registryRoundTrip(ctx, admin);
    await cdcRoundTrip(ctx, admin);
  } finally {
    await admin.disconnect();
  }
  await s3RoundTrip(ctx);
  step(5, 'demo events: ingest API -> Postgres -> Debezium -> normalizer -> Avro events');
  const wanted = await pipelineStep(ctx);
  step(6, 'the lake: connectors/exports/lake.yaml -> Parquet on S3, read back');
  await lakeStep(ctx, wanted);
  step(7, 'the report: REST shim -> report-requests -> report processor -> CSV on S3 -> link');
  const csv = await reportStep(ctx, DEMO_MONTH);
  step(8, 'live: events -> sluice live -> agent-commissions.live -> GET /live/agents/{agent}/months/{month}, next to the report');
  await liveStep(ctx, DEMO_MONTH, csv);
}

async function registryRoundTrip(ctx: DemoContext, admin: Admin): Promise<void> {
  const s = ctx.settings;
  step(2, `Avro through the registry (${s.registry.url}) and Kafka (${s.kafka.brokers.join(',')})`);
  const codec = new RegistryCodec(s.registry.url, s.registry);
  const schema = {
    type: 'record',
    name: 'RoundTrip',
    namespace: 'io.sluice.demo',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'amount_minor', type: 'long' },
    ],
  };
  const id = await withRetry(() => codec.register('sluice.demo.roundtrip-value', schema));
  ctx.ok(`schema registered, id ${id}`);
  // The demo's own topic, made as the broker would have (clusters such as MSK create none on their own).
  await withRetry(() => ensureTopics(admin, [{ topic: ROUNDTRIP_TOPIC, numPartitions: 1 }], ctx.logger));
  const from = await endOffsets(admin, ROUNDTRIP_TOPIC);
  const value = { id: randomUUID(), amount_minor: 2n ** 53n + 1n };
  const producer = ctx.kafka.producer({ idempotent: true, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 } });
  await withRetry(() => producer.connect());
  let meta;
  try {
    [meta] = await withRetry(async () => producer.send({ topic: ROUNDTRIP_TOPIC, acks: -1, messages: [{ key: value.id, value: await codec.encode(id, value) }] }));
  } finally {
    await producer.disconnect();
  }
  ctx.ok(`produced to ${ROUNDTRIP_TOPIC} partition ${meta?.partition} offset ${meta?.baseOffset}`);
  let decoded: typeof value | undefined;
  await readUntil(ctx.kafka, admin, ROUNDTRIP_TOPIC, { from, timeoutMs: 30_000, logger: ctx.logger, timeoutMessage: () => `the record produced to ${ROUNDTRIP_TOPIC} was not read back within 30 s: check the broker log ${ctx.serverLog('kafka')}` }, async (messages) => {
    for (const m of messages) {
      const v = m.value ? await codec.decode<typeof value>(m.value) : undefined;
      if (v?.id === value.id) decoded = v;
    }
    return decoded !== undefined;
  });
  ctx.ok(`consumed and decoded: ${JSON.stringify(decoded, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
}

async function cdcRoundTrip(ctx: DemoContext, admin: Admin): Promise<void> {
  const s = ctx.settings;
  step(3, `Postgres insert -> Debezium (${s.connect.url}) -> ${CDC_TOPIC}`);
  const connect = new ConnectClient(s.connect.url);
  const spec = loadConnectorSpec(`${CONNECTORS_DIR}/staging-agent-events.json`, connectorVars(s));
  const { created } = await withRetry(() => connect.apply(spec));
  ctx.ok(`connector ${spec.name} ${created ? 'created' : 'already applied'}`);
  const checkDebezium = `check the Debezium connector with \`sluice connectors status\` and the connect log ${ctx.serverLog('connect')}`;
  // Where the topic ends before the insert (it does not exist before Debezium's first change).
  const from = await endOffsets(admin, CDC_TOPIC);
  const pool = createPool(s.database.url);
  const eventId = randomUUID();
  const started = Date.now();
  try {
    await pool.query(
      `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, occurred_at, source)
       VALUES ($1, 'customer_onboarded', 'agent-demo', 'customer-demo', now(), 'backend')`,
      [eventId],
    );
  } finally {
    await pool.end();
  }
  ctx.ok(`inserted event ${eventId}`);
  await waitForTopic(admin, CDC_TOPIC, {
    timeoutMs: TOPIC_WAIT_MS,
    intervalMs: 500,
    logger: ctx.logger,
    hint: checkDebezium,
    onWaiting: () => ctx.waiting(`waiting for Debezium to create ${CDC_TOPIC} with its first change (up to ${TOPIC_WAIT_MS / 1000} s)`),
  });
  let change: { op: string } | undefined;
  await readUntil(ctx.kafka, admin, CDC_TOPIC, { from, timeoutMs: 60_000, logger: ctx.logger, timeoutMessage: () => `the change event of ${eventId} did not reach ${CDC_TOPIC} within 60 s: ${checkDebezium}` }, (messages) => {
    for (const m of messages) {
      if (!m.value || !m.key?.toString('utf8').includes(eventId)) continue;
      const v = JSON.parse(m.value.toString('utf8')) as { op: string; after?: { event_id: string } };
      if (v.after?.event_id === eventId) change = v;
    }
    return change !== undefined;
  });
  ctx.ok(`change event op=${change!.op} arrived ${Date.now() - started} ms after the insert`);
}

async function s3RoundTrip(ctx: DemoContext): Promise<void> {
  const s = ctx.settings;
  step(4, `S3 at ${s.s3.endpoint ?? 'AWS'}: multipart upload, list, presigned download`);
  const s3 = createS3Client(s.s3);
  await s3.send(new HeadBucketCommand({ Bucket: s.s3.bucket })).catch(() => s3.send(new CreateBucketCommand({ Bucket: s.s3.bucket })));
  const key = 'demo/roundtrip.bin'; // one fixed key: rerunning the demo overwrites it
  const body = randomBytes(20 * 1024 * 1024);
  await new Upload({ client: s3, params: { Bucket: s.s3.bucket, Key: key, Body: body }, partSize: 5 * 1024 * 1024, queueSize: 2 }).done();
  ctx.ok(`uploaded s3://${s.s3.bucket}/${key} (20 MiB in 4 parts)`);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: s.s3.bucket, Prefix: 'demo/' }));
  ctx.ok(`listed ${listed.KeyCount} object(s) under demo/`);
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: s.s3.bucket, Key: key }), { expiresIn: 300 });
  const fetched = Buffer.from(await (await fetch(url)).arrayBuffer());
  if (!fetched.equals(body)) throw new Error('presigned download differs from the upload');
  ctx.ok(`presigned link (5 min) returned the same 20 MiB: ${url.split('?')[0]}?...`);
}
