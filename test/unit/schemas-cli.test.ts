import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSchemasCheck, schemasCommand, type CliOutput } from '../../processors/cli/commands/schemas.js';
import { envelope, tempSchemasDir } from '../support/schema-dirs.js';

function capture(): CliOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, log: (l) => out.push(l), error: (l) => err.push(l) };
}

describe('sluice schemas check (offline)', () => {
  it('exits 0 with a summary per contract', async () => {
    const root = tempSchemasDir({ ev: { subject: 'test.ev-value', topic: 'test.ev', versions: [envelope(), envelope({ extraFields: [{ name: 'r', type: 'int', default: 0 }] })] } });
    const o = capture();
    expect(await runSchemasCheck({ dir: root }, o)).toBe(0);
    expect(o.err).toEqual([]);
    expect(o.out).toEqual([
      'ev: subject test.ev-value, topic test.ev, level BACKWARD_TRANSITIVE, versions v1..v2 (current v2)',
      '  offline: compatible; v2 compared with v1',
      expect.stringMatching(/^ {2}note: .* is not in a git repository/),
      'schemas check: 1 contract compatible, offline only (--online asks the registry too)',
    ]);
  });

  it('exits 1 printing each problem, and names the failing contract in the summary', async () => {
    const root = tempSchemasDir({
      ok: { versions: [envelope()] },
      ev: { versions: [envelope(), envelope({ extraFields: [{ name: 'region', type: 'string' }] })] },
    });
    const o = capture();
    expect(await runSchemasCheck({ dir: root, history: false }, o)).toBe(1);
    expect(o.err).toEqual([
      `${join(root, 'ev', 'v2.avsc')}: field AgentEvent.region was added without a default: consumers using v2 cannot read events written with v1 (BACKWARD_TRANSITIVE)`,
    ]);
    expect(o.out).toContain('  offline: INCOMPATIBLE (1 problem, listed above)');
    expect(o.out.at(-1)).toBe('schemas check: 1 of 2 contracts INCOMPATIBLE, offline only (--online asks the registry too)');
  });

  it('exits 1 naming the file and key of an invalid contract', async () => {
    const root = tempSchemasDir({ ev: { yaml: 'subject: s\ntopic: t\ncompatibility: SOMETIMES\n', versions: [envelope()] } });
    const o = capture();
    expect(await runSchemasCheck({ dir: root }, o)).toBe(1);
    expect(o.err[0]).toContain(`${join(root, 'ev', 'contract.yaml')}:3: compatibility: got "SOMETIMES": must be one of`);
  });

  it('declares check and register with their options', () => {
    const cmd = schemasCommand();
    const check = cmd.commands.find((c) => c.name() === 'check')!;
    expect(check.options.map((o) => o.long)).toEqual(['--dir', '--online', '--registry', '--no-history']);
    expect(cmd.commands.find((c) => c.name() === 'register')!.options.map((o) => o.long)).toEqual(['--dir', '--registry']);
  });
});
