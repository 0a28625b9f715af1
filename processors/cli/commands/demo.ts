import { Command } from 'commander';
import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createKafka } from '../../core/kafka/client.js';
import { RegistryCodec } from '../../core/registry/codec.js';
import { createS3Client } from '../../core/s3/client.js';
import { createPool } from '../../core/db/pool.js';
import { ConnectClient, loadConnectorSpec, pgVarsFromUrl } from '../../core/connect/client.js';
import { withRetry } from '../../core/errors/retry.js';
import type { CoreSettings } from '../../core/config/core-settings.js';
import { cliSettings, useStackEnv } from '../context.js';
import { runStack } from './stack.js';
import { CONNECTORS_DIR } from './connectors.js';
import { pipelineStep } from '../demo/pipeline-step.js';
import { lakeStep } from '../demo/lake-step.js';
import { reportStep } from '../demo/report-step.js';
import { DEMO_MONTH } from '../demo/pipeline-step.js';

const CDC_TOPIC = 'sluice.staging.agent_events';

const step = (n: number, text: string) => console.log(`\n[${n}/7] ${text}`);
const ok = (text: string) => console.log(`      ok  ${text}`);

/**
 * The main job until the processors land: the stack up, then one round trip through
 * every component, printed as it goes. Each step fails loudly, naming the server.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('start the local stack, run a round trip through every server, then post a month of demo events through the ingest API and the normalizer export them to the Parquet lake and request their commission report')
    .option('--no-stack', 'use servers already running (e.g. docker compose) instead of starting the local stack')
    .action(async (opts: { stack: boolean }, cmd: Command) => {
      if (opts.stack) {
        step(1, 'local stack (infra/local/stack up)');
        const code = runStack(['up']);
        if (code !== 0) throw new Error(`the local stack did not start (exit ${code})`);
        useStackEnv(); // the endpoints of the stack just started (stack up rewrote .sluice/stack.env)
      }
      const settings = cliSettings(cmd);
      await registryRoundTrip(settings);
      await cdcRoundTrip(settings);
      await s3RoundTrip(settings);
      step(5, 'demo events: ingest API -> Postgres -> Debezium -> normalizer -> Avro events');
      const wanted = await pipelineStep(settings, ok);
      step(6, 'the lake: connectors/exports/lake.yaml -> Parquet on S3, read back');
      await lakeStep(settings, wanted, ok);
      step(7, 'the report: REST shim -> report-requests -> report processor -> CSV on S3 -> link');
      await reportStep(settings, DEMO_MONTH, ok);
      console.log('\ndone: every component answered, the demo month is in the Parquet lake and its commission report is on S3');
    });
}

async function registryRoundTrip(s: CoreSettings): Promise<void> {
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
  const id = await codec.register('sluice.demo.roundtrip-value', schema);
  ok(`schema registered, id ${id}`);
  const value = { id: randomUUID(), amount_minor: 2n ** 53n + 1n };
  const kafka = createKafka(s.kafka, { region: s.s3.region });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const [meta] = await producer.send({ topic: 'sluice.demo.roundtrip', acks: -1, messages: [{ key: value.id, value: await codec.encode(id, value) }] });
  await producer.disconnect();
  ok(`produced to sluice.demo.roundtrip partition ${meta?.partition} offset ${meta?.baseOffset}`);
  const decoded = await consumeUntil(s, 'sluice.demo.roundtrip', async (m) => {
    const v = await codec.decode<typeof value>(m);
    return v.id === value.id ? v : undefined;
  });
  ok(`consumed and decoded: ${JSON.stringify(decoded, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
}

async function cdcRoundTrip(s: CoreSettings): Promise<void> {
  step(3, `Postgres insert -> Debezium (${s.connect.url}) -> ${CDC_TOPIC}`);
  const connect = new ConnectClient(s.connect.url);
  const spec = loadConnectorSpec(`${CONNECTORS_DIR}/staging-agent-events.json`, { ...process.env, ...pgVarsFromUrl(s.database.url) });
  const { created } = await withRetry(() => connect.apply(spec));
  ok(`connector ${spec.name} ${created ? 'created' : 'already applied'}`);
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
  ok(`inserted event ${eventId}`);
  const change = await consumeUntil(s, CDC_TOPIC, async (m) => {
    const v = JSON.parse(m.toString('utf8')) as { op: string; after?: { event_id: string } };
    return v.after?.event_id === eventId ? v : undefined;
  });
  ok(`change event op=${change.op} arrived ${Date.now() - started} ms after the insert`);
}

async function s3RoundTrip(s: CoreSettings): Promise<void> {
  step(4, `S3 at ${s.s3.endpoint ?? 'AWS'}: multipart upload, list, presigned download`);
  const s3 = createS3Client(s.s3);
  await s3.send(new HeadBucketCommand({ Bucket: s.s3.bucket })).catch(() => s3.send(new CreateBucketCommand({ Bucket: s.s3.bucket })));
  const key = 'demo/roundtrip.bin'; // one fixed key: rerunning the demo overwrites it
  const body = randomBytes(20 * 1024 * 1024);
  await new Upload({ client: s3, params: { Bucket: s.s3.bucket, Key: key, Body: body }, partSize: 5 * 1024 * 1024, queueSize: 2 }).done();
  ok(`uploaded s3://${s.s3.bucket}/${key} (20 MiB in 4 parts)`);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: s.s3.bucket, Prefix: 'demo/' }));
  ok(`listed ${listed.KeyCount} object(s) under demo/`);
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: s.s3.bucket, Key: key }), { expiresIn: 300 });
  const fetched = Buffer.from(await (await fetch(url)).arrayBuffer());
  if (!fetched.equals(body)) throw new Error('presigned download differs from the upload');
  ok(`presigned link (5 min) returned the same 20 MiB: ${url.split('?')[0]}?...`);
}

/** Reads a topic from the beginning with a throwaway group until `match` returns a value. */
async function consumeUntil<T>(s: CoreSettings, topic: string, match: (value: Buffer) => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const kafka = createKafka(s.kafka, { region: s.s3.region });
  const consumer = kafka.consumer({ groupId: `sluice-demo-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing matching arrived on ${topic} within ${timeoutMs} ms`)), timeoutMs);
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (!message.value) return;
          const found = await match(message.value);
          if (found !== undefined) {
            clearTimeout(timer);
            resolve(found);
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}
