import { randomUUID } from 'node:crypto';
import { SingleBar, Presets } from 'cli-progress';
import { withRetry } from '../../core/errors/retry.js';
import { RegistryCodec } from '../../core/registry/codec.js';
import type { DemoContext } from './context.js';
import { readUntil } from './read.js';
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
export async function pipelineStep(ctx: DemoContext): Promise<Set<string>> {
  const log = ctx.ok;
  const env = { ...ctx.processorEnv, SLUICE_INGEST_API_KEY: process.env.SLUICE_INGEST_API_KEY ?? DEMO_KEY };
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
    const sample = await readEvents(ctx, wanted);
    log(`all ${wanted.size} events are on ${EVENTS_TOPIC} as Avro (read_committed, ${Date.now() - started} ms after the last post)`);
    log(`one of them, decoded through the registry: ${JSON.stringify(sample, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
    return wanted;
  } finally {
    await normalizer.stop();
    await api.close();
  }
}

async function readEvents(ctx: DemoContext, wanted: Set<string>, timeoutMs = 120_000): Promise<unknown> {
  const codec = new RegistryCodec(ctx.settings.registry.url, ctx.settings.registry);
  const missing = new Set(wanted);
  let sample: unknown;
  const admin = ctx.kafka.admin();
  await withRetry(() => admin.connect());
  try {
    // The normalizer made the topic at its start; the demo's ids may be there from an earlier run, so from the start.
    await readUntil(
      ctx.kafka,
      admin,
      EVENTS_TOPIC,
      { timeoutMs, logger: ctx.logger, timeoutMessage: () => `${missing.size} demo events did not reach ${EVENTS_TOPIC} within ${timeoutMs / 1000} s: see the normalizer's lines in ${ctx.logFile}` },
      async (messages) => {
        for (const m of messages) {
          if (!m.value) continue;
          const v = await codec.decode<{ id: string }>(m.value);
          if (missing.delete(v.id)) sample ??= v;
        }
        return missing.size === 0;
      },
    );
    return sample;
  } finally {
    await admin.disconnect();
  }
}
