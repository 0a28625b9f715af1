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
import type { Override } from '../core/pipeline/overrides.js';
import { kafkaClientFor } from './inputs/kafka.js';

export const PROCESSOR_NAME = 'export';

export interface ExportOptions {
  files: string[];
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers (the CLI does). */
  handleSignals?: boolean;
  /** `--set path=value` changes applied to every file (core/pipeline/overrides.ts). */
  overrides?: readonly Override[];
}

export interface RunningExport {
  /** The health and metrics port; undefined for a run of finite inputs only (no server). */
  port: number | undefined;
  /**
   * A run whose every input is finite (stdin, generate with a count): resolves once every
   * record is flushed and the run stopped, rejects when an input gave up. Undefined otherwise.
   */
  done: Promise<void> | undefined;
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
  const pipelines = options.files.map((file) => loadPipeline(file, env, options.overrides ? { overrides: options.overrides } : {}));
  const first = pipelines[0]!;
  // While an output writes records to stdout, stdout holds only them: the logs go to stderr.
  const toStdout = pipelines.some((p) => (p.output.type as string) === 'stdout') && !first.logger.file;
  const logger = createLogger({ name: PROCESSOR_NAME, level: first.logger.level, file: first.logger.file, ...(toStdout ? { destination: process.stderr } : {}) });
  const registry = createMetricsRegistry(PROCESSOR_NAME);
  const metrics = new ExportMetrics(registry);
  const shutdown = new Shutdown(logger);
  if (options.handleSignals) shutdown.install();

  const { startup: startupSettings } = loadSettings({ startup: coreSettings.startup }, { env });
  const startup = new StartupState({ logger, signal: shutdown.signal, warnAfterMs: startupSettings.warnAfterMs, timeoutMs: startupSettings.timeoutMs });
  // The replication factor and min.insync.replicas of the topics Sluice creates (SLUICE_KAFKA_TOPIC_*).
  const topics = loadSettings({ kafka: { topicReplicationFactor: coreSettings.kafka.topicReplicationFactor, topicMinInsyncReplicas: coreSettings.kafka.topicMinInsyncReplicas } }, { env }).kafka;
  const runners = pipelines.map((p) => createRunner(p, logger, metrics, topics));
  // A terminal run of finite inputs (stdin, generate with a count) ends by itself: it serves no
  // health port (nothing scrapes it, and it never clashes with a running export's).
  const finite = runners.every((r) => r.input.finite);
  let server: HealthServer | undefined;
  try {
    if (!finite) server = await startHealthServer({
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
    if (live) {
      shutdown.add('http server', () => live.close());
      const liveness = setInterval(() => {
        const failed = runners.find((r) => r.failure);
        live.setLive(!failed, failed ? `pipeline ${failed.pipeline.name} stopped: ${failed.failure!.message}` : '');
      }, 2000);
      liveness.unref();
      shutdown.add('liveness monitor', () => clearInterval(liveness));
      logger.info({ host: live.host, port: live.port, pipelines: pipelines.map((p) => p.file) }, 'serving /healthz, /readyz, /metrics');
    } else logger.info({ pipelines: pipelines.map((p) => p.file) }, 'finite inputs: the run ends when they do (no health port)');
    for (const r of runners) {
      shutdown.add(`pipeline ${r.pipeline.name}`, () => r.stop());
      await r.start(startup);
    }
    startup.ready();
  } catch (error) {
    await shutdown.run();
    throw error;
  }
  const stop = async () => void (await shutdown.run());
  const done = finite
    ? Promise.all(runners.map((r) => r.finished)).then(
        () => stop(),
        async (error: unknown) => {
          await stop();
          throw error;
        },
      )
    : undefined;
  return { port: server?.port, done, runners, stop };
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
