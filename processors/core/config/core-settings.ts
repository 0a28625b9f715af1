import { z } from 'zod';
import { setting, type SettingsOf } from './settings.js';

const brokerList = z
  .string()
  .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port')).min(1, 'at least one broker'));
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')]);
const url = z.string().url();
/** An empty value (`endpoint: ""` in YAML) means unset, as an empty env var does. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' || v === null ? undefined : v), schema.optional());

/**
 * Production defaults only: no setting defaults to a local server or to credentials. The
 * servers Sluice talks to (brokers, registry, database, Kafka Connect, the bucket) have no
 * sensible default on AWS, so they are required, and the error names the env var. S3 left
 * unset is AWS S3 with the SDK's default credential chain. The local stack's values come
 * from .sluice/stack.env (written by `infra/local/stack up`, loaded by the CLI and the
 * tests: core/config/stack-env.ts) and from docker-compose.yml.
 */
const LOCAL = 'for the local stack, `infra/local/stack up` writes it to .sluice/stack.env, which every sluice command loads';
const bindAddress = z.string().regex(/^[0-9A-Za-z.:-]+$/, 'an address to listen on: 127.0.0.1, 0.0.0.0, ::1, :: or a host name');

/** Connection settings every processor shares. Env names match infra/local and docker-compose. */
export const coreSettings = {
  kafka: {
    brokers: setting(brokerList, { doc: 'Kafka bootstrap brokers, comma-separated host:port', example: 'b-1.msk:9098,b-2.msk:9098', whenUnset: LOCAL }),
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
      example: 'http://registry:8081/apis/ccompat/v7',
      whenUnset: LOCAL,
    }),
    username: setting(z.string().optional(), { env: 'SLUICE_SCHEMA_REGISTRY_USERNAME', doc: 'registry basic-auth user' }),
    password: setting(z.string().optional(), { env: 'SLUICE_SCHEMA_REGISTRY_PASSWORD', doc: 'registry basic-auth password', secret: true }),
  },
  database: {
    url: setting(z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'), {
      doc: 'PostgreSQL connection URL of the staging database',
      secret: true,
      example: 'postgres://user:pass@host:5432/db',
      whenUnset: LOCAL,
    }),
  },
  s3: {
    endpoint: setting(optional(url), {
      doc: 'endpoint of an S3-compatible server (MinIO, S3Proxy); unset: AWS S3, or the standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when set',
      example: 'http://minio:9000',
    }),
    bucket: setting(z.string().min(3), { doc: 'bucket of the lake and reports', example: 'acme-sluice-lake', whenUnset: LOCAL }),
    region: setting(z.string().min(1), {
      env: 'AWS_REGION',
      doc: "AWS region of the bucket (a bucket in another region is still found, through S3's redirect)",
      default: 'us-east-1',
      example: 'eu-west-1',
    }),
    accessKeyId: setting(optional(z.string()), {
      env: 'AWS_ACCESS_KEY_ID',
      doc: "S3 access key; unset: the AWS SDK's default chain (env, shared config and SSO profiles via AWS_PROFILE, web identity/IRSA, ECS task and EC2 instance roles)",
    }),
    secretAccessKey: setting(optional(z.string()), { env: 'AWS_SECRET_ACCESS_KEY', doc: 'S3 secret key (with the access key)', secret: true }),
    sessionToken: setting(optional(z.string()), { env: 'AWS_SESSION_TOKEN', doc: 'session token of temporary credentials (with the access key)', secret: true }),
    forcePathStyle: setting(optional(bool), {
      doc: 'path-style addressing (bucket in the path); unset: on when an endpoint is set (S3-compatible servers need it), off for AWS S3 (virtual-hosted)',
      example: 'true',
    }),
    serverSideEncryption: setting(optional(z.enum(['AES256', 'aws:kms'])), {
      doc: "server-side encryption of every object Sluice writes: AES256 (SSE-S3) or aws:kms (SSE-KMS); unset: the bucket's default encryption",
      example: 'aws:kms',
    }),
    kmsKeyId: setting(optional(z.string().min(1)), {
      doc: "KMS key (id, alias/name or ARN) for SSE-KMS; implies aws:kms; unset with aws:kms: the account's aws/s3 key",
      example: 'alias/sluice-lake',
    }),
  },
  connect: {
    url: setting(url, { doc: 'Kafka Connect REST URL (required by `sluice connectors` and the demo)', example: 'http://connect:8083', whenUnset: LOCAL }),
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
  startup: {
    warnAfterMs: setting(z.coerce.number().int().min(1000), {
      doc: 'a processor started before a server it needs (Kafka, registry, S3, PostgreSQL) or a topic another component creates waits for it; after this long (and again as often) a warning names what to check',
      default: 60_000,
    }),
    timeoutMs: setting(z.coerce.number().int().min(1000).optional(), {
      doc: 'give up such a wait after this long and exit non-zero (the orchestrator restarts the process); unset: wait until it comes',
      example: '600000',
    }),
  },
};

export type CoreSettings = SettingsOf<typeof coreSettings>;
