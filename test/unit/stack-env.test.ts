import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeStackEnv, loadStackEnv, projectRoot, stackEnvFile } from '../../processors/core/config/stack-env.js';

function stateDir(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-stack-env-'));
  writeFileSync(join(dir, 'stack.env'), text);
  return dir;
}

describe('the local stack env file', () => {
  it('is $SLUICE_STATE_DIR/stack.env, else .sluice/stack.env of the project root, and SLUICE_STACK_ENV overrides or switches it off', () => {
    expect(stackEnvFile({ SLUICE_STATE_DIR: '/srv/state' })).toBe('/srv/state/stack.env');
    expect(stackEnvFile({})).toBe(join(projectRoot(), '.sluice', 'stack.env'));
    expect(projectRoot()).toMatch(/[^/]$/);
    expect(stackEnvFile({ SLUICE_STACK_ENV: '/x/other.env', SLUICE_STATE_DIR: '/srv/state' })).toBe('/x/other.env');
    expect(stackEnvFile({ SLUICE_STACK_ENV: 'off', SLUICE_STATE_DIR: '/srv/state' })).toBeUndefined();
  });

  it('fills unset and empty variables from the file; variables set explicitly win', () => {
    const dir = stateDir(
      ['# written by infra/local/stack up', 'export SLUICE_KAFKA_BROKERS=localhost:22092', 'export SLUICE_S3_ENDPOINT=http://localhost:22000', 'export AWS_REGION=us-east-1', 'export SLUICE_DATABASE_URL=postgres://sluice:sluice@localhost:22432/sluice'].join('\n'),
    );
    const env: NodeJS.ProcessEnv = { SLUICE_STATE_DIR: dir, SLUICE_KAFKA_BROKERS: 'b-1.msk:9098', SLUICE_S3_ENDPOINT: '' };
    const load = loadStackEnv(env);
    expect(load?.file).toBe(join(dir, 'stack.env'));
    expect(load?.applied.sort()).toEqual(['AWS_REGION', 'SLUICE_DATABASE_URL', 'SLUICE_S3_ENDPOINT']);
    expect(env.SLUICE_KAFKA_BROKERS).toBe('b-1.msk:9098');
    expect(env.SLUICE_S3_ENDPOINT).toBe('http://localhost:22000');
    expect(env.SLUICE_DATABASE_URL).toBe('postgres://sluice:sluice@localhost:22432/sluice');
    expect(describeStackEnv(load)).toContain(join(dir, 'stack.env'));
  });

  it('a second load (after `stack up` rewrote the file with other ports) replaces what the first took, not explicit values', () => {
    const dir = stateDir('export SLUICE_S3_ENDPOINT=http://localhost:9000\nexport SLUICE_KAFKA_BROKERS=localhost:9092\n');
    const env: NodeJS.ProcessEnv = { SLUICE_STATE_DIR: dir, SLUICE_KAFKA_BROKERS: 'explicit:1' };
    loadStackEnv(env);
    writeFileSync(join(dir, 'stack.env'), 'export SLUICE_S3_ENDPOINT=http://localhost:22000\nexport SLUICE_KAFKA_BROKERS=localhost:22092\n');
    loadStackEnv(env);
    expect(env.SLUICE_S3_ENDPOINT).toBe('http://localhost:22000');
    expect(env.SLUICE_KAFKA_BROKERS).toBe('explicit:1');
  });

  it('loads nothing when there is no file (production) or loading is off', () => {
    expect(loadStackEnv({ SLUICE_STATE_DIR: mkdtempSync(join(tmpdir(), 'sluice-none-')) })).toBeUndefined();
    const dir = stateDir('export SLUICE_S3_ENDPOINT=http://localhost:9000\n');
    const env: NodeJS.ProcessEnv = { SLUICE_STATE_DIR: dir, SLUICE_STACK_ENV: 'off' };
    expect(loadStackEnv(env)).toBeUndefined();
    expect(env.SLUICE_S3_ENDPOINT).toBeUndefined();
    expect(describeStackEnv(undefined)).toBeUndefined();
  });
});
