import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { withTimeout } from '../runtime/timeouts.js';

const LOOPBACK = '127.0.0.1';

/** A readiness probe: resolves when its dependency answers, throws with the reason otherwise. */
export type ReadinessCheck = () => Promise<void>;

export interface HealthServerOptions {
  port: number;
  /** The address to listen on; default 127.0.0.1 (loopback: this machine only). */
  host?: string;
  metrics: Registry;
  logger: Logger;
  /** Named dependency checks for /readyz (Kafka, registry, S3...). */
  readiness?: Record<string, ReadinessCheck>;
}

export interface HealthServer {
  app: FastifyInstance;
  /** The bound port (useful when 0 was asked for). */
  port: number;
  /** The bound address (127.0.0.1, 0.0.0.0, ::...). */
  host: string;
  /** A base URL that reaches it from this machine (a wildcard address is reached on loopback). */
  url: string;
  /** Flip liveness off, e.g. when the consume loop has crashed for good. */
  setLive(live: boolean, reason?: string): void;
  close(): Promise<void>;
}

/**
 * /healthz (the process is alive and its loop is running), /readyz (every dependency
 * answers right now) and /metrics (Prometheus text format). Processors with an API add
 * their routes to `app` before `listen`, so one port serves both.
 */
export async function startHealthServer(options: HealthServerOptions, addRoutes?: (app: FastifyInstance) => void | Promise<void>): Promise<HealthServer> {
  // Probes and scrapes arrive every few seconds: they are not worth a log line each.
  const app: FastifyInstance = Fastify({ logger: false });
  let live = true;
  let liveReason = '';
  app.get('/healthz', async (_req, reply) => {
    if (!live) return reply.code(503).send({ status: 'down', reason: liveReason });
    return { status: 'ok' };
  });
  app.get('/readyz', async (_req, reply) => {
    const results = await Promise.all(
      Object.entries(options.readiness ?? {}).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 3000, `${name} did not answer within 3 s`);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, (error as Error).message] as const;
        }
      }),
    );
    const failed = results.filter(([, r]) => r !== 'ok');
    return reply.code(failed.length === 0 ? 200 : 503).send({ status: failed.length === 0 ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', options.metrics.contentType);
    return options.metrics.metrics();
  });
  if (addRoutes) await addRoutes(app);
  await app.listen({ port: options.port, host: options.host ?? LOOPBACK });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = typeof address === 'object' && address ? address.address : (options.host ?? LOOPBACK);
  const reach = host === '0.0.0.0' ? LOOPBACK : host === '::' ? '::1' : host;
  return {
    app,
    port,
    host,
    url: `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`,
    setLive(value, reason = '') {
      live = value;
      liveReason = reason;
    },
    close: () => app.close(),
  };
}
