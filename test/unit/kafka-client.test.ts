import { describe, expect, it } from 'vitest';
import { coreSettings } from '../../processors/core/config/core-settings.js';
import { loadSettings } from '../../processors/core/config/settings.js';
import { logLevel } from 'kafkajs';
import { createKafka, isRoutineRetry, kafkaConfig, kafkajsLevel } from '../../processors/core/kafka/client.js';
import { createLogger } from '../../processors/core/log/logger.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { SERVERS_ENV } from '../support/servers.js';

const kafkaWith = (env: Record<string, string>) => loadSettings(coreSettings, { env: { ...SERVERS_ENV, ...env } }).kafka;

describe('kafka client factory', () => {
  it('builds a plain client by default', () => {
    const c = kafkaConfig(kafkaWith({}), { region: 'us-east-1' });
    expect(c.brokers).toEqual(['localhost:9092']);
    expect(c.ssl).toBe(false);
    expect(c.sasl).toBeUndefined();
  });

  it('builds SCRAM over TLS', () => {
    const c = kafkaConfig(
      kafkaWith({ SLUICE_KAFKA_SSL: 'true', SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512', SLUICE_KAFKA_SASL_USERNAME: 'u', SLUICE_KAFKA_SASL_PASSWORD: 'p' }),
      { region: 'us-east-1' },
    );
    expect(c.ssl).toBe(true);
    expect(c.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
  });

  it('refuses SCRAM without credentials, naming the settings', () => {
    expect(() => kafkaConfig(kafkaWith({ SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-256' }), { region: 'us-east-1' })).toThrow(ConfigError);
    expect(() => kafkaConfig(kafkaWith({ SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-256' }), { region: 'us-east-1' })).toThrow(/SLUICE_KAFKA_SASL_USERNAME/);
  });

  it('uses OAUTHBEARER with a signed token for MSK IAM, always over TLS', () => {
    const c = kafkaConfig(kafkaWith({ SLUICE_KAFKA_SASL_MECHANISM: 'aws-msk-iam' }), { region: 'eu-west-1' });
    expect(c.ssl).toBe(true);
    expect(c.sasl?.mechanism).toBe('oauthbearer');
    expect(typeof (c.sasl as { oauthBearerProvider?: unknown }).oauthBearerProvider).toBe('function');
  });
});

describe('kafkajs log bridge', () => {
  it('demotes the broker answers kafkajs retries at once as routine', () => {
    expect(isRoutineRetry({ message: 'Response AddPartitionsToTxn(key: 24, version: 1)', error: 'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing' })).toBe(true);
    expect(isRoutineRetry({ message: 'Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing' })).toBe(true);
    expect(isRoutineRetry({ message: 'Response Metadata(key: 3, version: 6)', error: 'This server does not host this topic-partition' })).toBe(false);
  });

  it('logs retried answers at debug or warn, and keeps error for the rest', () => {
    expect(kafkajsLevel(logLevel.ERROR, { message: '[Connection] Response InitProducerId(key: 22, version: 1)', error: "The coordinator is loading and hence can't process requests for this group" })).toBe('debug');
    expect(kafkajsLevel(logLevel.ERROR, { message: 'Response Metadata(key: 3, version: 6)', error: 'This server does not host this topic-partition' })).toBe('warn');
    expect(kafkajsLevel(logLevel.ERROR, { message: 'Response Metadata(key: 3, version: 6)', error: 'There is no leader for this topic-partition as we are in the middle of a leadership election' })).toBe('warn');
    expect(kafkajsLevel(logLevel.ERROR, { message: 'Response Produce(key: 0, version: 7)', error: 'Topic authorization failed' })).toBe('error');
    expect(kafkajsLevel(logLevel.WARN, { message: 'Limiting retries for the idempotent producer may invalidate EoS guarantees' })).toBe('warn');
    expect(kafkajsLevel(logLevel.INFO, { message: 'Starting' })).toBe('info');
    expect(kafkajsLevel(logLevel.DEBUG, { message: 'Request Metadata' })).toBe('debug');
  });

  it('names the default partitioner, so kafkajs prints no partitioner notice', () => {
    const lines: string[] = [];
    const kafka = createKafka(kafkaWith({}), { region: 'eu-west-1', logger: createLogger({ name: 't', level: 'debug', destination: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream }) });
    kafka.producer();
    expect(lines.filter((l) => l.includes('partitioner'))).toEqual([]);
  });
});
