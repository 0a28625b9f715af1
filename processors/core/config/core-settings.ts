import { z } from 'zod';
import { setting, type SettingsOf } from './settings.js';

const brokerList = z
  .string()
  .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port')).min(1, 'at least one broker'));
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')]);
const url = z.string().url();
const bindAddress = z.string().regex(/^[0-9A-Za-z.:-]+$/, 'an address to listen on: 127.0.0.1, 0.0.0.0, ::1, :: or a host name');

/** Connection settings every processor shares. Env names match infra/local and docker-compose. */
export const coreSettings = {
  kafka: {
    brokers: setting(brokerList, { doc: 'Kafka bootstrap brokers, comma-separated host:port', default: ['localhost:9092'].join(','), example: 'b-1.msk:9098,b-2.msk:9098' }),
    clientId: setting(z.string().min(1), { doc: 'client id sent to the brokers', default: 'sluice' }),
    ssl: setting(bool, { doc: 'use TLS to the brokers', default: false }),
    sslCaFile: setting(z.string().optional(), { doc: 'PEM file of CAs to trust for TLS (system CAs when unset)' }),
    saslMechanism: setting(z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512', 'aws-msk-iam']), {
      doc: 'SASL mechanism: none, plain, scram-sha-256, scram-sha-512 or aws-msk-iam',
      default: 'none',
      example: 'scram-sha-512',
    }),
    saslUsername: setting(z.string().optional(), { doc: 'SASL username (plain/scram)' }),
    saslPassword: setting(z.string().optional(), { doc: 'SASL password (plain/scram)', secret: true }),
    topicReplicationFactor: setting(z.coerce.number().int().min(-1).refine((n) => n !== 0, 'must be -1 or positive'), {
      doc: "replication factor of the topics Sluice creates (`sluice topics plan`); -1 = the cluster's default.replication.factor (3 on a 3-AZ MSK cluster)",
      default: -1,
      example: '3',
    }),
    topicMinInsyncReplicas: setting(z.coerce.number().int().positive().optional(), {
      doc: "min.insync.replicas of the topics Sluice creates; unset = the cluster's default (2 on a 3-AZ MSK cluster). Must be below the replication factor for a broker to be able to leave",
      example: '2',
    }),
  },
  registry: {
    url: setting(url, {
      env: 'SLUICE_SCHEMA_REGISTRY_URL',
      doc: 'Confluent-compatible schema registry base URL (Apicurio: .../apis/ccompat/v7)',
      default: 'http://localhost:8081/apis/ccompat/v7',
      example: 'http://registry:8081/apis/ccompat/v7',
    }),
    username: setting(z.string().optional(), { env: 'SLUICE_SCHEMA_REGISTRY_USERNAME', doc: 'registry basic-auth user' }),
    password: setting(z.string().optional(), { env: 'SLUICE_SCHEMA_REGISTRY_PASSWORD', doc: 'registry basic-auth password', secret: true }),
  },
  database: {
    url: setting(z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'), {
      doc: 'PostgreSQL connection URL of the staging database',
      default: 'postgres://sluice:sluice@localhost:5432/sluice',
      secret: true,
      example: 'postgres://user:pass@host:5432/db',
    }),
  },
  s3: {
    endpoint: setting(url.optional(), { doc: 'S3 endpoint for S3-compatible servers; unset for AWS S3', default: 'http://localhost:9000', example: 'http://minio:9000' }),
    bucket: setting(z.string().min(3), { doc: 'bucket of the lake and reports', default: 'sluice-lake' }),
    region: setting(z.string().min(1), { env: 'AWS_REGION', doc: 'AWS region', default: 'us-east-1' }),
    accessKeyId: setting(z.string().optional(), { env: 'AWS_ACCESS_KEY_ID', doc: 'S3 access key (default chain when unset)', default: 'sluice' }),
    secretAccessKey: setting(z.string().optional(), { env: 'AWS_SECRET_ACCESS_KEY', doc: 'S3 secret key', default: 'sluice-secret-key', secret: true }),
    forcePathStyle: setting(bool, { doc: 'path-style addressing (S3-compatible servers need it)', default: true }),
  },
  connect: {
    url: setting(url, { doc: 'Kafka Connect REST URL', default: 'http://localhost:8083' }),
  },
  log: {
    level: setting(z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), { doc: 'log level', default: 'info' }),
    file: setting(z.string().min(1).optional(), { doc: 'append the JSON log lines to this file instead of stdout (its folder is created)', example: '/var/log/sluice/normalizer.log' }),
  },
  http: {
    // Loopback by default: probes and scrapes from elsewhere are a deployment's choice
    // (compose and Kubernetes set 0.0.0.0), never an accident of the defaults.
    host: setting(bindAddress, {
      doc: 'address /healthz, /readyz and /metrics listen on (processors without an API): 127.0.0.1 = this machine only; 0.0.0.0 = every interface (in a container whose port is published)',
      default: '127.0.0.1',
      example: '0.0.0.0',
    }),
    apiHost: setting(bindAddress, {
      doc: 'address the API listeners listen on (the ingest API, the reports REST shim, with their /healthz, /readyz and /metrics on the same port): 127.0.0.1 = this machine only; 0.0.0.0 = every interface',
      default: '127.0.0.1',
      example: '0.0.0.0',
    }),
  },
};

export type CoreSettings = SettingsOf<typeof coreSettings>;
