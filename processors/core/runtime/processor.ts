import type { FastifyInstance } from 'fastify';
import { coreSettings, type CoreSettings } from '../config/core-settings.js';
import { loadSettings, type SettingsOf, type SettingsSpec } from '../config/settings.js';
import { startHealthServer, type HealthServer, type ReadinessCheck } from '../http/health-server.js';
import { Shutdown } from '../lifecycle/shutdown.js';
import { createLogger, type Logger } from '../log/logger.js';
import { createMetricsRegistry } from '../metrics/metrics.js';
import { StartupState } from './startup.js';
import type { Registry } from 'prom-client';

export interface ProcessorContext<S extends SettingsSpec> {
  name: string;
  core: CoreSettings;
  /** The processor's own settings, declared in its spec. */
  settings: SettingsOf<S>;
  logger: Logger;
  metrics: Registry;
  shutdown: Shutdown;
  /** What the processor waits for until it consumes: /readyz answers it (see `serve`). */
  startup: StartupState;
}

export interface ProcessorOptions<S extends SettingsSpec> {
  name: string;
  /** The processor's own settings (its env names are SLUICE_<PATH> like the core ones). */
  spec: S;
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers (off in tests that run processors in-process). */
  handleSignals?: boolean;
  /** Where the JSON log lines go (default: stdout); tests capture them to check what is logged. */
  logDestination?: NodeJS.WritableStream;
}

/**
 * The common start of every long-running processor: validated settings (core + its own),
 * a JSON logger, a metrics registry, and graceful shutdown. `serve` then opens the health
 * port with /healthz, /readyz, /metrics and any routes the processor adds.
 */
export function createProcessor<S extends SettingsSpec>(options: ProcessorOptions<S>): ProcessorContext<S> {
  const load = { ...(options.env ? { env: options.env } : {}), ...(options.configFile ? { file: options.configFile } : {}) };
  const core = loadSettings(coreSettings, load);
  const settings = loadSettings(options.spec, load);
  const logger = createLogger({ name: options.name, level: core.log.level, file: core.log.file, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  const metrics = createMetricsRegistry(options.name);
  const shutdown = new Shutdown(logger);
  if (options.handleSignals ?? true) shutdown.install();
  const startup = new StartupState({ logger, signal: shutdown.signal, warnAfterMs: core.startup.warnAfterMs, timeoutMs: core.startup.timeoutMs });
  return { name: options.name, core, settings, logger, metrics, shutdown, startup };
}

/** What every `start<Processor>(options)` takes: where its settings come from and how it runs. */
export interface StartOptions {
  /** Settings source (default: process.env); tests pass their own. */
  env?: NodeJS.ProcessEnv;
  configFile?: string;
  /** Install SIGTERM/SIGINT handlers that shut down and exit (the CLI and main.ts do). */
  handleSignals?: boolean;
  /** Where the JSON log lines go (default: stdout). */
  logDestination?: NodeJS.WritableStream;
}

/**
 * Creates the processor's context and runs its `start` with it; when the start fails,
 * everything registered for shutdown so far (clients, ports, timers) is closed before the
 * error reaches the caller, so a failed start leaves nothing running.
 */
export async function startProcessor<S extends SettingsSpec, R>(
  name: string,
  spec: S,
  options: StartOptions,
  start: (ctx: ProcessorContext<S>) => Promise<R>,
): Promise<R> {
  const ctx = createProcessor({
    name,
    spec,
    ...(options.env ? { env: options.env } : {}),
    ...(options.configFile ? { configFile: options.configFile } : {}),
    handleSignals: options.handleSignals ?? false,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
  });
  try {
    return await start(ctx);
  } catch (error) {
    await ctx.shutdown.run();
    throw error;
  }
}

/**
 * Opens the processor's HTTP port. A port that serves an API (addRoutes) listens on
 * SLUICE_HTTP_API_HOST, one with only /healthz, /readyz and /metrics on SLUICE_HTTP_HOST;
 * both are 127.0.0.1 unless the deployment says otherwise. /readyz checks `readiness` and,
 * first, `startup`: it is false while the processor waits for a dependency or a topic,
 * until it calls `ctx.startup.ready()`.
 */
export async function serve<S extends SettingsSpec>(
  ctx: ProcessorContext<S>,
  readiness: Record<string, ReadinessCheck>,
  addRoutes: ((app: FastifyInstance) => void | Promise<void>) | undefined,
  /** Each processor has its own port setting (SLUICE_NORMALIZER_HTTP_PORT, ...), so several run on one host. */
  port: number,
): Promise<HealthServer> {
  const host = addRoutes ? ctx.core.http.apiHost : ctx.core.http.host;
  const server = await startHealthServer({ port, host, metrics: ctx.metrics, logger: ctx.logger, readiness: { startup: ctx.startup.check, ...readiness } }, addRoutes);
  ctx.shutdown.add('http server', () => server.close());
  ctx.logger.info({ host: server.host, port: server.port }, 'serving /healthz, /readyz, /metrics');
  return server;
}
