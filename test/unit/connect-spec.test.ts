import { describe, expect, it } from 'vitest';
import { loadConnectorSpec, pgVarsFromUrl } from '../../processors/core/connect/client.js';

const file = new URL('../../connectors/debezium/staging-agent-events.json', import.meta.url).pathname;

describe('Debezium connector file', () => {
  it('fills PG placeholders from a database URL, escaping JSON', () => {
    const vars = pgVarsFromUrl('postgres://sluice:p%22w@db.internal:6543/lake');
    expect(vars).toEqual({ PGHOST: 'db.internal', PGPORT: '6543', PGUSER: 'sluice', PGPASSWORD: 'p"w', PGDATABASE: 'lake' });
    const spec = loadConnectorSpec(file, vars);
    expect(spec.name).toBe('sluice-staging-agent-events');
    expect(spec.config['database.password']).toBe('p"w');
    expect(spec.config['database.port']).toBe('6543');
    expect(spec.config['plugin.name']).toBe('pgoutput');
    expect(spec.config['table.include.list']).toBe('staging.agent_events');
  });

  it('names every placeholder without a value', () => {
    expect(() => loadConnectorSpec(file, { PGHOST: 'h' })).toThrow(/\$\{PGPORT\}.*\$\{PGUSER\}/);
  });
});
