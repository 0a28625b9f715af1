import { randomUUID } from 'node:crypto';
import { SingleBar, Presets } from 'cli-progress';
import { createKafka } from '../../core/kafka/client.js';
import { RegistryCodec } from '../../core/registry/codec.js';
import type { CoreSettings } from '../../core/config/core-settings.js';
import { startIngestApi } from '../../ingest-api/ingest-api.js';
import { startNormalizer } from '../../normalizer/normalizer.js';
import { demoEvents } from './events.js';

const DEMO_KEY = 'sluice-demo-ingest-key';
const EVENTS_TOPIC = 'sluice.agent-events';
/** The month of the demo events (and of the demo report). */
export const DEMO_MONTH = '2026-10';

/**
 * Demo events through the product: the ingest API (in-process, a free port) takes them
 * with a progress bar, Debezium streams the rows, the normalizer turns them into Avro
 * events; the step ends when every demo event id is on the events topic, read back by a
 * read_committed consumer through the registry.
 */
export async function pipelineStep(s: CoreSettings, log: (line: string) => void): Promise<Set<string>> {
  const env = { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn', SLUICE_INGEST_API_KEY: process.env.SLUICE_INGEST_API_KEY ?? DEMO_KEY };
  const api = await startIngestApi({ env, port: 0 });
  const normalizer = await startNormalizer({ env: { ...env, SLUICE_NORMALIZER_HTTP_PORT: '0', SLUICE_NORMALIZER_INSTANCE_ID: 'demo' } });
  try {
    const { events, customers } = demoEvents(DEMO_MONTH, 20, 50);
    const headers = { 'content-type': 'application/json', 'x-api-key': env.SLUICE_INGEST_API_KEY!, 'x-sluice-channel': 'backend' };
    for (const [customer, agent] of customers) {
      const res = await fetch(`${api.url}/customers/${encodeURIComponent(customer)}`, { method: 'PUT', headers, body: JSON.stringify({ agent_id: agent }) });
      if (!res.ok) throw new Error(`PUT /customers/${customer} answered ${res.status}: ${await res.text()}`);
    }
    log(`ingest API at ${api.url}: ${customers.size} customers assigned to 20 agents`);
    const bar = new SingleBar({ format: '      posting  [{bar}] {value}/{total} events | {inserted} new, {duplicates} already there', hideCursor: true }, Presets.shades_classic);
    let inserted = 0;
    let duplicates = 0;
    bar.start(events.length, 0, { inserted, duplicates });
    for (let i = 0; i < events.length; i += 100) {
      const batch = events.slice(i, i + 100);
      const res = await fetch(`${api.url}/events`, { method: 'POST', headers, body: JSON.stringify(batch) });
      const body = (await res.json()) as { inserted?: number; duplicates?: number; message?: string };
      if (res.status !== 200 && res.status !== 201) throw new Error(`POST /events answered ${res.status}: ${body.message ?? JSON.stringify(body)}`);
      inserted += body.inserted ?? 0;
      duplicates += body.duplicates ?? 0;
      bar.update(i + batch.length, { inserted, duplicates });
    }
    bar.stop();
    log(`posted ${events.length} events: ${inserted} new, ${duplicates} already there (event ids are deterministic: a rerun adds nothing)`);
    const bad = await fetch(`${api.url}/events`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ event_id: randomUUID(), event_type: 'deposit_made', customer_id: 'cust-1-0', amount_minor: '-5', currency: 'EUR', occurred_at: '2026-10-01T00:00:00Z' }),
    });
    const badBody = (await bad.json()) as { errors?: { field: string; code: string }[] };
    log(`a bad event is refused: ${bad.status} ${badBody.errors?.map((e) => `${e.field}: ${e.code}`).join(', ')}`);

    const wanted = new Set(events.map((e) => e.event_id));
    const started = Date.now();
    const sample = await readEvents(s, wanted);
    log(`all ${wanted.size} events are on ${EVENTS_TOPIC} as Avro (read_committed, ${Date.now() - started} ms after the last post)`);
    log(`one of them, decoded through the registry: ${JSON.stringify(sample, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
    return wanted;
  } finally {
    await normalizer.stop();
    await api.close();
  }
}

async function readEvents(s: CoreSettings, wanted: Set<string>, timeoutMs = 120_000): Promise<unknown> {
  const kafka = createKafka(s.kafka, { region: s.s3.region });
  const codec = new RegistryCodec(s.registry.url, s.registry);
  const consumer = kafka.consumer({ groupId: `sluice-demo-${randomUUID()}`, readUncommitted: false });
  const missing = new Set(wanted);
  let sample: unknown;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: EVENTS_TOPIC, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${missing.size} demo events did not reach ${EVENTS_TOPIC} within ${timeoutMs} ms`)), timeoutMs);
      void consumer
        .run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              if (!m.value) continue;
              const v = await codec.decode<{ id: string }>(m.value);
              if (missing.delete(v.id)) sample ??= v;
            }
            if (missing.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    return sample;
  } finally {
    await consumer.disconnect();
  }
}
