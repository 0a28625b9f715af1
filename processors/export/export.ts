import { coreSettings } from '../core/config/core-settings.js';
import { loadSettings } from '../core/config/settings.js';
import { StartupState } from '../core/runtime/startup.js';
import type { TopicPlanInput } from '../core/kafka/topic-plan.js';
import { startHealthServer, type HealthServer } from '../core/http/health-server.js';
import { Shutdown } from '../core/lifecycle/shutdown.js';
import { createLogger, type Logger } from '../core/log/logger.js';
import { createMetricsRegistry } from '../core/metrics/metrics.js';
import { loadPipeline } from '../core/pipeline/lint.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { kafkaInputOf, valueDecoding } from '../core/pipeline/input-config.js';
import { RegistryRestClient } from '../core/registry/ccompat.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3ClientFor } from './outputs/s3.js';
import { ExportMetrics } from './metrics.js';
import { PipelineRunner } from './runner.js';
import { kafkaClientFor } from './inputs/kafka.js';

export const PROCESSOR_NAME = 'export';

export interface ExportOptions {
  files: string[];
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers (the CLI does). */
  handleSignals?: boolean;
}

export interface RunningExport {
  port: number;
  runners: PipelineRunner[];
  /** Graceful stop: every open batch flushed and committed, the group left. */
  stop(): Promise<void>;
}

/**
 * `sluice run FILE...`: loads and checks every pipeline file (a bad one stops the start
 * with file:line, path and fix), then runs them side by side in this process, one
 * consumer group each, behind one health and metrics port (the first file's `http.port`).
 */
export async function startExport(options: ExportOptions): Promise<RunningExport> {
  const env = options.env ?? process.env;
  const pipelines = options.files.map((file) => loadPipeline(file, env));
  const first = pipelines[0]!;
  const logger = createLogger({ name: PROCESSOR_NAME, level: first.logger.level, file: first.logger.file });
  const registry = createMetricsRegistry(PROCESSOR_NAME);
  const metrics = new ExportMetrics(registry);
  const shutdown = new Shutdown(logger);
  if (options.handleSignals) shutdown.install();

  const { startup: startupSettings } = loadSettings({ startup: coreSettings.startup }, { env });
  const startup = new StartupState({ logger, signal: shutdown.signal, warnAfterMs: startupSettings.warnAfterMs, timeoutMs: startupSettings.timeoutMs });
  // The replication factor and min.insync.replicas of the topics Sluice creates (SLUICE_KAFKA_TOPIC_*).
  const topics = loadSettings({ kafka: { topicReplicationFactor: coreSettings.kafka.topicReplicationFactor, topicMinInsyncReplicas: coreSettings.kafka.topicMinInsyncReplicas } }, { env }).kafka;
  const runners = pipelines.map((p) => createRunner(p, logger, metrics, topics));
  let server: HealthServer | undefined;
  try {
    server = await startHealthServer({
      port: first.http.port,
      host: first.http.host,
      metrics: registry,
      logger,
      readiness: {
        startup: startup.check,
        ...Object.fromEntries(
          runners.flatMap((r) => [
            [`${r.pipeline.name}: consumer group`, async () => {
              if (r.failure) throw r.failure;
              if (!r.ready) throw new Error('not yet a member of its consumer group');
            }],
            ...(valueDecoding(r.pipeline) === 'avro_registry' ? [[`${r.pipeline.name}: schema registry`, () => r.checkRegistry()] as const] : []),
            [`${r.pipeline.name}: ${r.output.type} output`, () => r.checkOutput()],
          ]),
        ),
      },
    });
    const live = server;
    shutdown.add('http server', () => live.close());
    const liveness = setInterval(() => {
      const failed = runners.find((r) => r.failure);
      live.setLive(!failed, failed ? `pipeline ${failed.pipeline.name} stopped: ${failed.failure!.message}` : '');
    }, 2000);
    liveness.unref();
    shutdown.add('liveness monitor', () => clearInterval(liveness));
    logger.info({ host: server.host, port: server.port, pipelines: pipelines.map((p) => p.file) }, 'serving /healthz, /readyz, /metrics');
    for (const r of runners) {
      shutdown.add(`pipeline ${r.pipeline.name}`, () => r.stop());
      await r.start(startup);
    }
    startup.ready();
  } catch (error) {
    await shutdown.run();
    throw error;
  }
  return { port: server.port, runners, stop: async () => void (await shutdown.run()) };
}

function createRunner(p: PipelineConfig, logger: Logger, metrics: ExportMetrics, topics: TopicPlanInput['kafka']): PipelineRunner {
  // One Kafka client a pipeline with a kafka input: its consumer group, its DLQ and a kafka output's transactions share it.
  const kafka = kafkaInputOf(p) ? kafkaClientFor(kafkaInputOf(p)!, p, logger) : undefined;
  return new PipelineRunner(p, { registry: schemaRegistry(p), logger, metrics, topics, ...(kafka ? { kafka } : {}) });
}

/** The schema registry of a kafka input; an input that is not Avro from a registry has none (asking it is a bug). */
function schemaRegistry(p: PipelineConfig): Pick<RegistryRestClient, 'request'> {
  const kafka = kafkaInputOf(p);
  if (kafka) return new RegistryRestClient(kafka.registry.url, { username: kafka.registry.username, password: kafka.registry.password });
  return {
    request: () => Promise.reject(new Error(`the ${p.input.type} input of ${p.file} decodes no Avro from a schema registry`)),
  };
}

/** The S3 client a pipeline's s3 output writes with (its endpoint, region and credentials). */
export function pipelineS3Client(p: PipelineConfig): S3Client {
  return s3ClientFor(p.output.config);
}
