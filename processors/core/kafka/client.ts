import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions, type LogEntry } from 'kafkajs';
import { generateAuthToken } from 'aws-msk-iam-sasl-signer-js';
import type { CoreSettings } from '../config/core-settings.js';
import { ConfigError } from '../errors/errors.js';
import type { Logger } from '../log/logger.js';

/** The connection part of the kafka settings (the topic ones are the topic plan's). */
export type KafkaSettings = Omit<CoreSettings['kafka'], 'topicReplicationFactor' | 'topicMinInsyncReplicas'>;

/** The SASL block for kafkajs, or undefined for none. MSK IAM signs an OAUTHBEARER token. */
export function saslOptions(settings: KafkaSettings, region: string): SASLOptions | undefined {
  switch (settings.saslMechanism) {
    case 'none':
      return undefined;
    case 'aws-msk-iam':
      return {
        mechanism: 'oauthbearer',
        oauthBearerProvider: async () => {
          const { token } = await generateAuthToken({ region });
          return { value: token };
        },
      };
    case 'plain':
    case 'scram-sha-256':
    case 'scram-sha-512': {
      if (!settings.saslUsername || !settings.saslPassword) {
        throw new ConfigError([
          {
            source: 'env',
            setting: 'kafka.saslUsername/kafka.saslPassword',
            message: `SASL mechanism ${settings.saslMechanism} needs a username and a password`,
            fix: 'set SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD',
          },
        ]);
      }
      return { mechanism: settings.saslMechanism, username: settings.saslUsername, password: settings.saslPassword };
    }
  }
}

/** The kafkajs config for plain, TLS, SASL/SCRAM and MSK IAM clusters. */
export function kafkaConfig(settings: KafkaSettings, options: { region: string; logger?: Logger; clientId?: string }): KafkaConfig {
  const sasl = saslOptions(settings, options.region);
  // MSK IAM only runs over TLS; SCRAM without TLS would send credentials to a sniffer.
  const ssl = settings.sslCaFile
    ? { ca: [readFileSync(settings.sslCaFile, 'utf8')] }
    : settings.ssl || settings.saslMechanism === 'aws-msk-iam';
  return {
    clientId: options.clientId ?? settings.clientId,
    brokers: settings.brokers,
    ssl,
    ...(sasl ? { sasl } : {}),
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 30_000 },
    logLevel: logLevel.WARN,
    ...(options.logger ? { logCreator: kafkajsLogCreator(options.logger) } : {}),
  };
}

export function createKafka(settings: KafkaSettings, options: { region: string; logger?: Logger; clientId?: string }): Kafka {
  return new Kafka(kafkaConfig(settings, options));
}

/**
 * Broker answers kafkajs logs at ERROR although it retries them at once and they are
 * routine: a transaction started right after a commit meets CONCURRENT_TRANSACTIONS
 * until the commit markers are written (the Java client logs these at debug).
 */
const ROUTINE_RETRIES = [
  'another concurrent operation on the same transaction was ongoing', // CONCURRENT_TRANSACTIONS
  'The coordinator is loading and hence can', // COORDINATOR_LOAD_IN_PROGRESS
];

export function isRoutineRetry(log: { message?: unknown; error?: unknown }): boolean {
  const text = `${String(log.message ?? '')} ${String(log.error ?? '')}`;
  return ROUTINE_RETRIES.some((r) => text.includes(r));
}

/** Routes kafkajs's own logs into pino, so every line stays structured JSON. */
function kafkajsLogCreator(logger: Logger) {
  const child = logger.child({ component: 'kafkajs' });
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      if (isRoutineRetry(log)) child.debug(extra, message);
      else if (level === logLevel.ERROR) child.error(extra, message);
      else if (level === logLevel.WARN) child.warn(extra, message);
      else if (level === logLevel.INFO) child.info(extra, message);
      else child.debug(extra, message);
    };
}
