import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadContracts, SchemaContractError } from '../../processors/core/schemas/contracts.js';
import { envelope, tempSchemasDir } from '../support/schema-dirs.js';

function contractError(fn: () => unknown): SchemaContractError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SchemaContractError) return error;
    throw error;
  }
  throw new Error('expected a SchemaContractError');
}

describe('schema contracts: loading schemas/<contract>/', () => {
  it('loads subject, topic, level and the versions in order', () => {
    const root = tempSchemasDir({
      b: { subject: 's.b-value', topic: 's.b', compatibility: 'FULL', versions: [envelope(), envelope({ extraFields: [{ name: 'x', type: 'int', default: 0 }] })] },
      a: { subject: 's.a-value', topic: 's.a', versions: [envelope()] },
    });
    const contracts = loadContracts(root);
    expect(contracts.map((c) => [c.name, c.subject, c.topic, c.compatibility, c.versions.map((v) => v.version)])).toEqual([
      ['a', 's.a-value', 's.a', 'BACKWARD_TRANSITIVE', [1]],
      ['b', 's.b-value', 's.b', 'FULL', [1, 2]],
    ]);
    expect(contracts[1]!.versions[1]!.file).toBe(join(root, 'b', 'v2.avsc'));
  });

  it('orders v10 after v9', () => {
    const versions = Array.from({ length: 10 }, (_, i) => envelope({ extraFields: Array.from({ length: i }, (_, j) => ({ name: `f${j}`, type: 'int', default: 0 })) }));
    const [c] = loadContracts(tempSchemasDir({ ev: { versions } }));
    expect(c!.versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('names file, line and key of each bad contract.yaml value, and lists every problem at once', () => {
    const root = tempSchemasDir({
      ev: { yaml: '# contract\nsubject: s-value\ncompatability: FULL\ncompatibility: BACKWARDS\n', versions: [envelope()] },
    });
    const e = contractError(() => loadContracts(root));
    const file = join(root, 'ev', 'contract.yaml');
    expect(e.problems).toEqual(
      expect.arrayContaining([
        { file, key: 'topic', message: expect.stringContaining('is required') },
        { file: `${file}:3`, key: 'compatability', message: 'is not a contract key (allowed: subject, topic, compatibility)' },
        { file: `${file}:4`, key: 'compatibility', message: expect.stringMatching(/^got "BACKWARDS": must be one of NONE, BACKWARD, BACKWARD_TRANSITIVE/) },
      ]),
    );
    expect(e.problems).toHaveLength(3);
    expect(e.message).toContain(`${file}:4: compatibility: got "BACKWARDS"`);
  });

  it('reports YAML syntax errors with the line', () => {
    const root = tempSchemasDir({ ev: { yaml: 'subject: a\ntopic: [b\n', versions: [envelope()] } });
    const e = contractError(() => loadContracts(root));
    expect(e.problems[0]!.file).toMatch(/contract\.yaml:\d+$/);
    expect(e.problems[0]!.message).toMatch(/^YAML syntax/);
  });

  it('requires contiguous versions from v1', () => {
    const root = tempSchemasDir({ ev: { versions: [envelope()] } });
    writeFileSync(join(root, 'ev', 'v3.avsc'), JSON.stringify(envelope()));
    const e = contractError(() => loadContracts(root));
    expect(e.problems).toEqual([{ file: join(root, 'ev'), message: 'versions must be contiguous from v1: missing v2.avsc' }]);
  });

  it('names a schema that is not JSON (with its line) or not Avro', () => {
    const root = tempSchemasDir({ ev: { versions: [envelope(), '{\n  "type": "record",\n  "name": "R",\n  "fields": [],\n}\n'] } });
    writeFileSync(join(root, 'ev', 'v4.avsc'), '{\n  "type": "record",\n  "fields": [,]\n}\n');
    writeFileSync(join(root, 'ev', 'v3.avsc'), JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'n', type: 'int', default: 'x' }] }));
    const e = contractError(() => loadContracts(root));
    expect(e.problems).toEqual([
      { file: `${join(root, 'ev', 'v2.avsc')}:5`, message: expect.stringContaining('is not valid JSON') },
      { file: join(root, 'ev', 'v3.avsc'), message: 'is not a valid Avro schema: incompatible field default "x" (invalid "int": "x")' },
      { file: join(root, 'ev', 'v4.avsc'), message: "is not valid JSON: Unexpected token ','" },
    ]);
  });

  it('rejects .avsc files not named vN.avsc, a missing contract.yaml, and a subject used twice', () => {
    const root = tempSchemasDir({
      a: { subject: 'same-value', versions: [envelope()] },
      b: { subject: 'same-value', versions: [envelope()] },
      d: { versions: [envelope()] },
    });
    writeFileSync(join(root, 'd', 'v2-draft.avsc'), JSON.stringify(envelope()));
    mkdirSync(join(root, 'c'));
    writeFileSync(join(root, 'c', 'v1.avsc'), JSON.stringify(envelope()));
    mkdirSync(join(root, 'notes')); // no contract.yaml, no .avsc: not a contract, ignored
    const e = contractError(() => loadContracts(root));
    expect(e.problems).toEqual([
      { file: join(root, 'c', 'contract.yaml'), message: expect.stringContaining('is missing') },
      { file: join(root, 'd', 'v2-draft.avsc'), message: 'is not named vN.avsc (v1.avsc, v2.avsc, ...): rename it' },
      { file: join(root, 'b', 'contract.yaml'), key: 'subject', message: `same-value is already the subject of ${join(root, 'a', 'contract.yaml')}` },
    ]);
  });

  it('says so when the folder is missing or empty', () => {
    const empty = mkdtempSync(join(tmpdir(), 'sluice-schemas-'));
    expect(contractError(() => loadContracts(empty)).problems[0]!.message).toContain('holds no contract');
    expect(contractError(() => loadContracts(join(empty, 'nope'))).problems[0]!.message).toContain('is not a folder');
    const noVersions = tempSchemasDir({ ev: { versions: [] } });
    expect(contractError(() => loadContracts(noVersions)).problems[0]!.message).toBe('has no schema version (expected v1.avsc)');
  });
});
