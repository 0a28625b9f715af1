import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConnectorSpec, pgVarsFromUrl } from '../../processors/core/connect/client.js';

const file = new URL('../../connectors/debezium/staging-agent-events.json', import.meta.url).pathname;

describe('Debezium connector file', () => {
  it('fills PG placeholders from a database URL, escaping JSON; the password only by reference', () => {
    const vars = pgVarsFromUrl('postgres://sl"uice:p%22w-secret@db.internal:6543/lake');
    expect(vars).toEqual({ PGHOST: 'db.internal', PGPORT: '6543', PGUSER: 'sl"uice', PGDATABASE: 'lake' });
    const spec = loadConnectorSpec(file, vars);
    expect(spec.name).toBe('sluice-staging-agent-events');
    expect(spec.config['database.user']).toBe('sl"uice');
    // The worker resolves it (EnvVarConfigProvider): the config, which Connect's REST API shows, holds only the reference.
    expect(spec.config['database.password']).toBe('${env:SLUICE_CONNECT_DATABASE_PASSWORD}');
    expect(JSON.stringify(spec)).not.toContain('p"w-secret');
    expect(spec.config['database.port']).toBe('6543');
    expect(spec.config['plugin.name']).toBe('pgoutput');
    expect(spec.config['table.include.list']).toBe('staging.agent_events');
  });

  it('names every placeholder without a value', () => {
    expect(() => loadConnectorSpec(file, { PGHOST: 'h' })).toThrow(/\$\{PGPORT\}.*\$\{PGUSER\}/);
  });

  it('refuses a secret written as a value (filled or literal); a provider reference passes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-connector-'));
    const write = (config: Record<string, string>) => {
      const path = join(dir, `${Object.keys(config).join('-')}.json`);
      writeFileSync(path, JSON.stringify({ name: 'c', config: { 'connector.class': 'x', ...config } }));
      return path;
    };
    expect(() => loadConnectorSpec(write({ 'database.password': '${PGPASSWORD}' }), { PGPASSWORD: 'hunter2' })).toThrow(/"database.password" must be a config-provider reference/);
    expect(() => loadConnectorSpec(write({ 'database.password': 'hunter2' }), {})).toThrow(/\$\{env:SLUICE_CONNECT_DATABASE_PASSWORD\}/);
    expect(() => loadConnectorSpec(write({ 'sasl.jaas.config': 'org.apache...PlainLoginModule required password="x";' }), {})).toThrow(/sasl.jaas.config/);
    expect(loadConnectorSpec(write({ 'database.password': '${file:/run/secrets/pg.properties:database.password}' }), {}).config['database.password']).toBe(
      '${file:/run/secrets/pg.properties:database.password}',
    );
  });
});
