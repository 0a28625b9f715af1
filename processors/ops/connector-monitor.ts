import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin } from 'kafkajs';
import type pg from 'pg';
import { z } from 'zod';
import { setting } from '../core/config/settings.js';
import { ConnectClient, type ConnectorSpec } from '../core/connect/client.js';
import { ConnectorMetrics } from '../core/connect/metrics.js';
import { sampleConnector } from '../core/connect/probe.js';
import { assessConnector, connectorTargets, defaultWindowMs, type ConnectorAssessment, type ConnectorSample, type ConnectorTargets } from '../core/connect/stall.js';
import { createPool } from '../core/db/pool.js';
import { withRetry } from '../core/errors/retry.js';
import { createKafka } from '../core/kafka/client.js';
import { createProcessor, serve } from '../core/runtime/processor.js';

/**
 * The connector checks of `sluice connectors status`: one window (sample, wait, sample,
 * compare) for the command line, or a round every window for `--serve`, which exports the
 * result as Prometheus metrics (Kafka Connect's status and the Postgres slot are no
 * metrics by themselves) for the alert rules of infra/prometheus/alerts.yaml.
 */

export const connectorMonitorSettings = {
  connectorsMonitor: {
    httpPort: setting(z.coerce.number().int().min(0).max(65535), { doc: 'port of /healthz, /readyz and /metrics of `sluice connectors status --serve` (0 picks a free one)', default: 9468 }),
  },
};

export interface MonitorDeps {
  connect: ConnectClient;
  db: pg.Pool;
  admin: Admin;
}

interface Watched {
  spec: ConnectorSpec;
  targets: ConnectorTargets;
}

/** The window that fits every connector: the longest of their defaults, unless one is given. */
export function windowFor(specs: ConnectorSpec[], windowMs?: number): number {
  return windowMs ?? Math.max(...specs.map((s) => defaultWindowMs(connectorTargets(s))), 5_000);
}

/** One window over every connector: sample, wait, sample again, and judge each. */
export async function checkConnectors(deps: MonitorDeps, specs: ConnectorSpec[], windowMs: number, signal?: AbortSignal): Promise<{ assessments: ConnectorAssessment[]; samples: ConnectorSample[] }> {
  const watched = specs.map((spec) => ({ spec, targets: connectorTargets(spec) }));
  const before = await Promise.all(watched.map((w) => sampleConnector(deps, w.spec, w.targets)));
  await sleep(windowMs, undefined, signal ? { signal } : {});
  const after = await Promise.all(watched.map((w) => sampleConnector(deps, w.spec, w.targets)));
  return { assessments: watched.map((w, i) => assessConnector(w.spec.name, w.targets, before[i]!, after[i]!)), samples: after };
}

/** `sluice connectors status --serve`: a round every window until SIGTERM, metrics on the monitor's port. */
export async function runConnectorMonitor(options: { specs: ConnectorSpec[]; windowMs?: number; configFile?: string }): Promise<void> {
  const ctx = createProcessor({ name: 'connectors-monitor', spec: connectorMonitorSettings, ...(options.configFile ? { configFile: options.configFile } : {}) });
  const { core, logger, shutdown } = ctx;
  const metrics = new ConnectorMetrics(ctx.metrics);
  const connect = new ConnectClient(core.connect.url);
  const db = createPool(core.database.url, { max: 2, applicationName: 'sluice-connectors-monitor' });
  shutdown.add('postgres pool', () => db.end());
  const kafka = createKafka(core.kafka, { region: core.s3.region, logger, clientId: `${core.kafka.clientId}-connectors-monitor` });
  const admin = kafka.admin();
  // A server that is down at start is waited for, as every processor does.
  await withRetry(() => admin.connect(), {
    policy: { maxAttempts: Infinity },
    signal: shutdown.signal,
    onRetry: (error, attempt) => logger.warn({ err: error, attempt }, 'Kafka is not reachable yet; retrying'),
  });
  shutdown.add('kafka admin', () => admin.disconnect());
  const windowMs = windowFor(options.specs, options.windowMs);
  await serve(
    ctx,
    {
      'kafka connect': async () => void (await connect.plugins()),
      postgres: async () => void (await db.query('SELECT 1')),
      kafka: async () => void (await admin.describeCluster()),
    },
    undefined,
    ctx.settings.connectorsMonitor.httpPort,
  );
  const watched: Watched[] = options.specs.map((spec) => ({ spec, targets: connectorTargets(spec) }));
  const previous = new Map<string, ConnectorSample>();
  const verdicts = new Map<string, string>();
  logger.info({ connectors: watched.map((w) => w.spec.name), windowMs }, 'watching connectors');
  const deps = { connect, db, admin };
  while (!shutdown.signal.aborted) {
    try {
      for (const w of watched) {
        const sample = await sampleConnector(deps, w.spec, w.targets);
        const assessment = assessConnector(w.spec.name, w.targets, previous.get(w.spec.name) ?? sample, sample);
        previous.set(w.spec.name, sample);
        metrics.record(w.spec.name, w.targets, sample, assessment);
        const said = `${assessment.verdict}: ${assessment.reasons.join('; ')}`;
        if (verdicts.get(w.spec.name) !== assessment.verdict) {
          const line = { connector: w.spec.name, verdict: assessment.verdict, reasons: assessment.reasons };
          if (assessment.healthy) logger.info(line, `connector ${w.spec.name} ${said}`);
          else logger.error(line, `connector ${w.spec.name} ${said}`);
        }
        verdicts.set(w.spec.name, assessment.verdict);
      }
      metrics.checks.inc({ outcome: 'ok' });
      metrics.lastCheck.set(Date.now() / 1000);
    } catch (error) {
      metrics.checks.inc({ outcome: 'error' });
      logger.warn({ err: error }, 'connector check failed; trying again next round');
    }
    await sleep(windowMs, undefined, { signal: shutdown.signal }).catch(() => undefined);
  }
}
