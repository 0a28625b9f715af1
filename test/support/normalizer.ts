import type { Kafka } from 'kafkajs';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { withRetry } from '../../processors/core/errors/retry.js';
import { startNormalizer, type RunningNormalizer } from '../../processors/normalizer/normalizer.js';
import { ensureCdcTopics } from './cdc.js';
import { startGroupAtEnd } from './consume.js';
import { waitForTopic } from './kafka.js';

/** Debezium's topic of staging.agent_events (the normalizer's default cdcTopic). */
export const CDC_TOPIC = 'sluice.staging.agent_events';

export interface TestNormalizerOptions {
  /** Names this run's group (`<name>-normalizer`) and instance. */
  name: string;
  /** The events topic it writes (its registry subject is `<eventsTopic>-value`). */
  eventsTopic: string;
  dlqTopic: string;
  /** SLUICE_LOG_LEVEL when the environment sets none. */
  logLevel?: string;
}

/**
 * An in-process normalizer for a test that follows rows from Postgres staging to the
 * events topic: the CDC topic created as Kafka Connect would (a fresh cluster has it only
 * after Debezium's first change), this run's group started at its end (the shared topic's
 * history is other runs' rows), then the normalizer on its own events topic, DLQ and
 * subject. The caller applies the connector (ensureCdcConnector) and stops the normalizer.
 */
export async function startTestNormalizer(kafka: Kafka, settings: CoreSettings, options: TestNormalizerOptions): Promise<RunningNormalizer> {
  await ensureCdcTopics(kafka, settings);
  await waitForTopic(kafka, CDC_TOPIC, 60_000);
  const groupId = `${options.name}-normalizer`;
  // Right after the topic is created its leader may not be known yet: the offsets call is retried.
  await withRetry(() => startGroupAtEnd(kafka, groupId, CDC_TOPIC), { policy: { maxAttempts: 20, initialMs: 500, maxMs: 3000 } });
  return startNormalizer({
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? options.logLevel ?? 'warn',
      SLUICE_NORMALIZER_GROUP_ID: groupId,
      SLUICE_NORMALIZER_INSTANCE_ID: options.name,
      SLUICE_NORMALIZER_EVENTS_TOPIC: options.eventsTopic,
      SLUICE_NORMALIZER_DLQ_TOPIC: options.dlqTopic,
      SLUICE_NORMALIZER_SUBJECT: `${options.eventsTopic}-value`,
      SLUICE_NORMALIZER_HTTP_PORT: '0',
      SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: '10000',
    },
  });
}
