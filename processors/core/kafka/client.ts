import { readFileSync } from 'node:fs';
import { Kafka, Partitioners, logLevel, type KafkaConfig, type LogEntry, type Producer, type ProducerConfig, type SASLOptions } from 'kafkajs';
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

export interface KafkaClientOptions {
  region: string;
  logger?: Logger;
  clientId?: string;
  /** Per request (default 30 s); the connection timeout is at most this (default 5 s). */
  requestTimeoutMs?: number;
  /** kafkajs's own retries of connections and metadata (default 10, up to 30 s apart). */
  retries?: number;
}

/** The kafkajs config for plain, TLS, SASL/SCRAM and MSK IAM clusters. */
export function kafkaConfig(settings: KafkaSettings, options: KafkaClientOptions): KafkaConfig {
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
    connectionTimeout: Math.min(5_000, options.requestTimeoutMs ?? 5_000),
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    retry: { initialRetryTime: 300, retries: options.retries ?? 10, maxRetryTime: 30_000 },
    logLevel: logLevel.WARN,
    ...(options.logger ? { logCreator: kafkajsLogCreator(options.logger) } : {}),
  };
}

/**
 * kafkajs with its v2 default partitioner named explicitly: the same partitioning (murmur2,
 * as the Java client), without the notice kafkajs prints on every producer that does not
 * name one.
 */
class SluiceKafka extends Kafka {
  override producer(config: ProducerConfig = {}): Producer {
    return super.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...config });
  }
}

export function createKafka(settings: KafkaSettings, options: KafkaClientOptions): Kafka {
  return new SluiceKafka(kafkaConfig(settings, options));
}

/**
 * Broker answers kafkajs logs at ERROR although it retries them at once and they are
 * routine: a transaction started right after a commit meets CONCURRENT_TRANSACTIONS
 * until the commit markers are written, and a fresh broker answers
 * COORDINATOR_LOAD_IN_PROGRESS while it loads its internal topics (the Java client logs
 * these at debug).
 */
const ROUTINE_RETRIES = [
  'another concurrent operation on the same transaction was ongoing', // CONCURRENT_TRANSACTIONS
  'The coordinator is loading and hence can', // COORDINATOR_LOAD_IN_PROGRESS
];

/**
 * Answers kafkajs also retries, but that say something an operator may need when they
 * last: a topic not there (yet: one Debezium or another processor creates), a partition
 * without a leader, a coordinator moving. Logged at warn, not error: the call that needs
 * the topic fails on its own, with its own error, once kafkajs's retries are spent.
 */
const RETRIED_WARNINGS = [
  'This server does not host this topic-partition', // UNKNOWN_TOPIC_OR_PARTITION
  'There is no leader for this topic-partition', // LEADER_NOT_AVAILABLE
  'This is not the correct coordinator for this group', // NOT_COORDINATOR
  'The group coordinator is not available', // COORDINATOR_NOT_AVAILABLE (a fresh broker)
];

const textOf = (log: { message?: unknown; error?: unknown }) => `${String(log.message ?? '')} ${String(log.error ?? '')}`;

export function isRoutineRetry(log: { message?: unknown; error?: unknown }): boolean {
  const text = textOf(log);
  return ROUTINE_RETRIES.some((r) => text.includes(r));
}

/** The pino level of one kafkajs log entry. */
export function kafkajsLevel(level: logLevel, log: { message?: unknown; error?: unknown }): 'debug' | 'info' | 'warn' | 'error' {
  if (isRoutineRetry(log)) return 'debug';
  const text = textOf(log);
  if (level === logLevel.ERROR) return RETRIED_WARNINGS.some((r) => text.includes(r)) ? 'warn' : 'error';
  if (level === logLevel.WARN) return 'warn';
  if (level === logLevel.INFO) return 'info';
  return 'debug';
}

/** Routes kafkajs's own logs into pino, so every line stays structured JSON. */
function kafkajsLogCreator(logger: Logger) {
  const child = logger.child({ component: 'kafkajs' });
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      child[kafkajsLevel(level, log)](extra, message);
    };
}
