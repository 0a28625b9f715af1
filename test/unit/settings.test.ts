import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { coreSettings } from '../../processors/core/config/core-settings.js';
import { describeSettings, envNameFor, loadSettings } from '../../processors/core/config/settings.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { SERVERS_ENV } from '../support/servers.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('settings', () => {
  it('derives env names from paths', () => {
    expect(envNameFor(['kafka', 'saslMechanism'])).toBe('SLUICE_KAFKA_SASL_MECHANISM');
  });

  it('has production defaults only: the servers are required, each named with its env var and the fix', () => {
    const e = configError(() => loadSettings(coreSettings, { env: {} }));
    expect(e.problems.map((p) => [p.source, p.setting])).toEqual([
      ['default', 'kafka.brokers'],
      ['default', 'registry.url'],
      ['default', 'database.url'],
      ['default', 's3.bucket'],
      ['default', 'connect.url'],
    ]);
    expect(e.message).toContain('kafka.brokers: is required');
    expect(e.message).toContain('Fix: set SLUICE_KAFKA_BROKERS, e.g. SLUICE_KAFKA_BROKERS=b-1.msk:9098,b-2.msk:9098');
    expect(e.message).toContain('`infra/local/stack up` writes it to .sluice/stack.env');
    expect(e.message).not.toMatch(/localhost/);
  });

  it('with the servers set, nothing else points at a local server or holds credentials', () => {
    const s = loadSettings(coreSettings, { env: { ...SERVERS_ENV } });
    expect(s.kafka.brokers).toEqual(['localhost:9092']);
    expect(s.kafka.ssl).toBe(false);
    expect(s.s3).toEqual({ bucket: 'sluice-lake', region: 'us-east-1' });
    // No default names a server to talk to (a URL, host:port, localhost) or a credential; bind addresses (127.0.0.1) are not servers.
    for (const d of Object.values(coreSettings).flatMap((g) => Object.values(g))) expect(String(d.default ?? '')).not.toMatch(/localhost|:\/\/|:\d{2,5}\b|sluice-secret/);
  });

  it('lets env win over the file and the file over defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
    const file = join(dir, 'sluice.yaml');
    writeFileSync(file, 'kafka:\n  brokers: a:1,b:2\n  clientId: from-file\n');
    const { SLUICE_KAFKA_BROKERS: _fromFile, ...servers } = SERVERS_ENV;
    const s = loadSettings(coreSettings, { env: { ...servers, SLUICE_KAFKA_CLIENT_ID: 'from-env' }, file });
    expect(s.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(s.kafka.clientId).toBe('from-env');
  });

  it('names the env var, the setting and the fix for a bad env value', () => {
    const e = configError(() => loadSettings(coreSettings, { env: { ...SERVERS_ENV, SLUICE_KAFKA_BROKERS: 'nohost', SLUICE_KAFKA_SASL_MECHANISM: 'kerberos' } }));
    expect(e.problems).toHaveLength(2);
    expect(e.problems[0]).toMatchObject({ source: 'env SLUICE_KAFKA_BROKERS', setting: 'kafka.brokers' });
    expect(e.message).toContain('Fix: set SLUICE_KAFKA_BROKERS');
    expect(e.message).toContain('kafka.saslMechanism');
  });

  it('names the file and line of a bad file value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
    const file = join(dir, 'sluice.yaml');
    writeFileSync(file, '# settings\nlog:\n  level: loud\n');
    const e = configError(() => loadSettings(coreSettings, { env: { ...SERVERS_ENV }, file }));
    expect(e.problems[0]).toMatchObject({ source: `file ${file}:3`, setting: 'log.level' });
  });

  it('reports YAML syntax errors with the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'kafka:\n  brokers: [a:1\n');
    const e = configError(() => loadSettings(coreSettings, { env: {}, file }));
    expect(e.problems[0]!.source).toMatch(new RegExp(`^file ${file}:\\d+$`));
  });

  it('never prints a secret value in an error', () => {
    const e = configError(() => loadSettings(coreSettings, { env: { SLUICE_DATABASE_URL: 'mysql://u:hunter2@h/db' } }));
    expect(e.message).not.toContain('hunter2');
    expect(e.message).toContain('(secret)');
  });

  it('documents every setting', () => {
    const doc = describeSettings(coreSettings);
    expect(doc).toContain('`SLUICE_SCHEMA_REGISTRY_URL`');
    expect(doc).toContain('`AWS_REGION`');
    expect(doc).not.toContain('sluice-secret-key');
    expect(doc).toContain('| `SLUICE_KAFKA_BROKERS` | `kafka.brokers` | required |');
    expect(doc).toContain('| `SLUICE_S3_ENDPOINT` | `s3.endpoint` |  |');
  });
});
