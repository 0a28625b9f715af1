import type { Registry } from 'prom-client';
import { createPool } from '../core/db/pool.js';
import { serve, startProcessor, type ProcessorContext, type StartOptions } from '../core/runtime/processor.js';
import { ApiKeyCheck } from '../core/http/api-key.js';
import { IngestService } from './ingest.js';
import { IngestApiMetrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { IngestRepository } from './repository.js';
import { registerIngestRoutes } from './routes.js';
import { ingestApiSettings } from './settings.js';

export const PROCESSOR_NAME = 'ingest-api';

export interface IngestApiOptions extends StartOptions {
  /** Overrides SLUICE_INGEST_API_PORT (0 picks a free port). */
  port?: number;
}

export interface RunningIngestApi {
  /** Base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  port: number;
  /** The address it listens on (SLUICE_HTTP_API_HOST: 127.0.0.1 unless set). */
  host: string;
  metrics: Registry;
  /** Graceful stop: the server stops taking requests and finishes those in flight, then the pool closes. */
  close(): Promise<void>;
}

/**
 * Starts the ingest API: validated settings (a missing API key stops it with a
 * ConfigError naming SLUICE_INGEST_API_KEY), a PostgreSQL pool, and one HTTP port with
 * the API, /healthz, /readyz (PostgreSQL and the staging tables), /metrics and
 * /openapi.json. It starts even when PostgreSQL is away: /readyz says so and requests
 * get 503 until it is back.
 */
export async function startIngestApi(options: IngestApiOptions = {}): Promise<RunningIngestApi> {
  return startProcessor(PROCESSOR_NAME, ingestApiSettings, options, (ctx) => start(ctx, options));
}

async function start(ctx: ProcessorContext<typeof ingestApiSettings>, options: IngestApiOptions): Promise<RunningIngestApi> {
  const { logger, core } = ctx;
  const s = ctx.settings.ingestApi;
  const pool = createPool(core.database.url, { max: s.dbPoolMax, applicationName: `sluice-${PROCESSOR_NAME}` });
  // An idle connection that breaks (a PostgreSQL restart) must not crash the process.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle PostgreSQL connection failed'));
  // Registered before the server, so it closes after it (closers run in reverse).
  ctx.shutdown.add('postgres pool', () => pool.end());

  const repository = new IngestRepository(pool);
  const metrics = new IngestApiMetrics(ctx.metrics);
  const service = new IngestService(repository, { baseCurrency: s.baseCurrency, maxBatchEvents: s.maxBatchEvents }, metrics);
  const server = await serve(
    ctx,
    { postgres: () => repository.checkReady() },
    (app) =>
      registerIngestRoutes(app, {
        service,
        repository,
        apiKeys: new ApiKeyCheck(s.apiKey),
        metrics,
        logger,
        bodyLimit: s.bodyLimit,
        openApi: buildOpenApiDocument({ baseCurrency: s.baseCurrency, maxBatchEvents: s.maxBatchEvents, bodyLimit: s.bodyLimit }),
        shuttingDown: ctx.shutdown.signal,
      }),
    options.port ?? s.port,
  );
  logger.info(
    { host: server.host, port: server.port, baseCurrency: s.baseCurrency, bodyLimit: s.bodyLimit, maxBatchEvents: s.maxBatchEvents, apiKeys: s.apiKey.length },
    'ingest API listening: POST /events, PUT|GET /customers/{customer_id}, GET /openapi.json',
  );
  // It serves requests from here on; /readyz still follows PostgreSQL (requests get 503 while it is away).
  ctx.startup.ready();
  repository.checkReady().catch((error: Error) => logger.warn({ reason: error.message }, 'PostgreSQL is not ready yet: requests get 503 until it is'));
  return {
    url: server.url,
    port: server.port,
    host: server.host,
    metrics: ctx.metrics,
    close: async () => {
      await ctx.shutdown.run();
    },
  };
}
