import avro from 'avsc';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSchemasOffline, type ContractReport } from '../../processors/core/schemas/check.js';
import { checkAgainst, displayType, levelRule, type SchemaSnapshot } from '../../processors/core/schemas/compatibility.js';
import { envelope, tempSchemasDir } from '../support/schema-dirs.js';

/** Checks one contract `ev` with versions v1..vN under `compatibility` (files only, no git). */
function check(versions: object[], compatibility = 'BACKWARD_TRANSITIVE'): { report: ContractReport; messages: string[]; dir: string } {
  const root = tempSchemasDir({ ev: { compatibility, versions } });
  const [report] = checkSchemasOffline(root, { history: false });
  return { report: report!, messages: report!.problems.flatMap((p) => p.messages), dir: join(root, 'ev') };
}

const optionalRegion = { name: 'region', type: ['null', 'string'], default: null };
const requiredRegion = { name: 'region', type: 'string' };

describe('schema evolution gate: BACKWARD_TRANSITIVE (the default)', () => {
  it('passes a new optional field with a default', () => {
    const { report, messages } = check([envelope(), envelope({ extraFields: [optionalRegion] })]);
    expect(messages).toEqual([]);
    expect(report.compared).toEqual(['v1']);
    expect(report.level).toBe('BACKWARD_TRANSITIVE');
  });

  it('defaults the level to BACKWARD_TRANSITIVE when contract.yaml has none', () => {
    const { report } = check([envelope()], undefined);
    expect(report.level).toBe('BACKWARD_TRANSITIVE');
  });

  it('fails a new field without a default, naming the file, the field and the rule', () => {
    const { messages, dir } = check([envelope(), envelope({ extraFields: [requiredRegion] })]);
    expect(messages).toEqual([
      `${join(dir, 'v2.avsc')}: field AgentEvent.region was added without a default: consumers using v2 cannot read events written with v1 (BACKWARD_TRANSITIVE)`,
    ]);
  });

  it('fails a changed type inside a union branch, naming the path through the branch', () => {
    const deposit = [
      { name: 'customer_id', type: 'string' },
      { name: 'amount_minor', type: 'string' },
      { name: 'currency', type: 'string' },
    ];
    const { messages } = check([envelope(), envelope({ deposit })]);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('v2.avsc: field AgentEvent.data.DepositMade.amount_minor changed type long -> string');
    expect(messages[0]).toContain('consumers using v2 cannot read events written with v1 (BACKWARD_TRANSITIVE)');
  });

  it('accepts a promotion the Avro spec allows (int -> long)', () => {
    const v1 = { type: 'record', name: 'R', fields: [{ name: 'n', type: 'int' }] };
    const v2 = { type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }] };
    expect(check([v1, v2]).messages).toEqual([]);
    expect(check([v2, v1]).messages[0]).toContain('field R.n changed type long -> int');
  });

  it('fails a removed union branch', () => {
    const onlyDeposit = (envelope() as { fields: Array<{ name: string; type: unknown }> }).fields.find((f) => f.name === 'data')!.type as object[];
    const { messages } = check([envelope(), envelope({ branches: [onlyDeposit[0]!] })]);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('v2.avsc: union branch WithdrawalMade of field AgentEvent.data was removed');
    expect(messages[0]).toContain('(BACKWARD_TRANSITIVE)');
  });

  it('fails a removed null branch of an optional field', () => {
    const v1 = envelope({ extraFields: [optionalRegion] });
    const v2 = envelope({ extraFields: [{ name: 'region', type: 'string', default: 'eu' }] });
    expect(check([v1, v2]).messages[0]).toContain('field AgentEvent.region changed type [null, string] -> string (its null branch cannot be read)');
  });

  it('fails a removed enum symbol, and passes it when the enum has a default', () => {
    const status = (symbols: string[], extra: object = {}) => ({
      type: 'record',
      name: 'R',
      fields: [{ name: 'status', type: { type: 'enum', name: 'Status', symbols, ...extra } }],
    });
    const { messages } = check([status(['OPEN', 'CLOSED']), status(['OPEN'])]);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('symbol CLOSED was removed from enum Status of field R.status, which has no enum default');
    expect(check([status(['OPEN', 'CLOSED']), status(['OPEN', 'UNKNOWN'], { default: 'UNKNOWN' })]).messages).toEqual([]);
  });

  it('names a field nested in arrays and maps', () => {
    const v = (t: string) => ({
      type: 'record',
      name: 'R',
      fields: [{ name: 'lines', type: { type: 'array', items: { type: 'map', values: t } } }],
    });
    expect(check([v('long'), v('boolean')]).messages[0]).toContain('field R.lines[]{} changed type long -> boolean');
  });

  it('walks a recursive schema once', () => {
    const node = (valueType: string) => ({
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'value', type: valueType },
        { name: 'next', type: ['null', 'Node'], default: null },
      ],
    });
    expect(check([node('long'), node('string')]).messages).toEqual([expect.stringContaining('field Node.value changed type long -> string')]);
  });

  it('fails a renamed record without an alias, and passes it with one', () => {
    const v1 = { type: 'record', name: 'R', namespace: 'a', fields: [{ name: 'x', type: 'string' }] };
    const v2 = { type: 'record', name: 'S', namespace: 'a', fields: [{ name: 'x', type: 'string' }] };
    expect(check([v1, v2]).messages[0]).toContain('record R was renamed to S without an alias for R');
    expect(check([v1, v2], 'FORWARD').messages[0]).toContain('record R was renamed to S (v1 has no alias for S)');
    expect(check([v1, { ...v2, aliases: ['R'] }]).messages).toEqual([]);
  });

  it('matches named types on their unqualified name, as the Avro specification does', () => {
    const v1 = { type: 'record', name: 'R', namespace: 'a', fields: [{ name: 'x', type: 'string' }] };
    expect(check([v1, { ...v1, namespace: 'b' }]).messages).toEqual([]);
  });

  it('checks the current version against every earlier one, and names which', () => {
    const v1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] };
    const v2 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }, { name: 'b', type: 'int', default: 0 }] };
    const v3 = { type: 'record', name: 'R', fields: [{ name: 'b', type: 'int' }] }; // reads v2, not v1
    const { report, messages } = check([v1, v2, v3]);
    expect(report.compared).toEqual(['v1', 'v2']);
    expect(messages).toEqual([expect.stringContaining('v3.avsc: field R.b was added without a default: consumers using v3 cannot read events written with v1 (BACKWARD_TRANSITIVE)')]);
  });
});

describe('schema evolution gate: the other levels', () => {
  const v1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] };
  const v2 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }, { name: 'b', type: 'int', default: 0 }] };
  const v3 = { type: 'record', name: 'R', fields: [{ name: 'b', type: 'int' }] };

  it('BACKWARD compares with the latest earlier version only', () => {
    const { report, messages } = check([v1, v2, v3], 'BACKWARD');
    expect(report.compared).toEqual(['v2']);
    expect(messages).toEqual([]);
  });

  it('FORWARD: old readers must read new data; removing a field they need fails, adding one does not', () => {
    const removed = check([v2, { type: 'record', name: 'R', fields: [{ name: 'b', type: 'int', default: 0 }] }], 'FORWARD').messages;
    expect(removed).toHaveLength(1);
    expect(removed[0]).toContain('v2.avsc: field R.a was removed, and v1 declares it without a default: consumers using v1 cannot read events written with v2 (FORWARD)');
    expect(check([v1, { ...v1, fields: [...v1.fields, { name: 'c', type: 'long' }] }], 'FORWARD').messages).toEqual([]);
  });

  it('FORWARD: a new union branch fails, because old readers cannot read it', () => {
    const t = (types: string[]) => ({ type: 'record', name: 'R', fields: [{ name: 'v', type: types }] });
    const messages = check([t(['null', 'string']), t(['null', 'string', 'long'])], 'FORWARD').messages;
    expect(messages[0]).toContain('field R.v gained union branch long, which v1 cannot read: consumers using v1 cannot read events written with v2 (FORWARD)');
  });

  it('FORWARD_TRANSITIVE compares with every earlier version, FORWARD with the latest only', () => {
    const w1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] };
    const w2 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string', default: '' }] };
    const w3 = { type: 'record', name: 'R', fields: [] };
    expect(check([w1, w2, w3], 'FORWARD').messages).toEqual([]);
    expect(check([w1, w2, w3], 'FORWARD_TRANSITIVE').messages).toEqual([
      expect.stringContaining('field R.a was removed, and v1 declares it without a default: consumers using v1 cannot read events written with v3 (FORWARD_TRANSITIVE)'),
    ]);
  });

  it('FULL needs both directions: a field added with a default passes, one without fails', () => {
    expect(check([v1, v2], 'FULL').messages).toEqual([]);
    const messages = check([v1, { ...v1, fields: [...v1.fields, { name: 'c', type: 'long' }] }], 'FULL').messages;
    expect(messages).toEqual([expect.stringContaining('field R.c was added without a default: consumers using v2 cannot read events written with v1 (FULL)')]);
  });

  it('FULL reports both directions of a type change', () => {
    const messages = check([v1, { type: 'record', name: 'R', fields: [{ name: 'a', type: 'long' }] }], 'FULL').messages;
    expect(messages).toEqual([
      expect.stringContaining('field R.a changed type string -> long: consumers using v2 cannot read events written with v1 (FULL)'),
      expect.stringContaining('field R.a changed type string -> long: consumers using v1 cannot read events written with v2 (FULL)'),
    ]);
  });

  it('FULL_TRANSITIVE catches what FULL lets through', () => {
    const x1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] };
    const x2 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string', default: '' }] };
    const x3 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string', default: '' }, { name: 'b', type: 'int', default: 0 }] };
    const x4 = { type: 'record', name: 'R', fields: [{ name: 'b', type: 'int', default: 0 }] };
    expect(check([x1, x2, x3, x4], 'FULL').messages).toEqual([]);
    expect(check([x1, x2, x3, x4], 'FULL_TRANSITIVE').messages).toEqual([expect.stringContaining('consumers using v1 cannot read events written with v4 (FULL_TRANSITIVE)')]);
  });

  it('NONE checks nothing', () => {
    const { report, messages } = check([v1, { type: 'record', name: 'Other', fields: [{ name: 'z', type: 'bytes' }] }], 'NONE');
    expect(messages).toEqual([]);
    expect(report.compared).toEqual([]);
    expect(report.notes).toContain('compatibility NONE: no check applies');
  });
});

describe('compatibility rules (pure)', () => {
  const snap = (version: number, schema: object): SchemaSnapshot => ({ version, file: `v${version}.avsc`, type: avro.Type.forSchema(schema as avro.Schema) });

  it('maps each level to its directions and reach', () => {
    expect(levelRule('NONE')).toBeUndefined();
    expect(levelRule('BACKWARD')).toEqual({ backward: true, forward: false, transitive: false });
    expect(levelRule('FORWARD_TRANSITIVE')).toEqual({ backward: false, forward: true, transitive: true });
    expect(levelRule('FULL')).toEqual({ backward: true, forward: true, transitive: false });
  });

  it('names changes at the root of a schema', () => {
    const problems = checkAgainst(snap(2, { type: 'fixed', name: 'F', size: 5 }), [snap(1, { type: 'fixed', name: 'F', size: 4 })], 'BACKWARD').problems;
    expect(problems[0]!.reasons).toEqual(['fixed F changed size 4 -> 5']);
    const nested = checkAgainst(
      snap(2, { type: 'record', name: 'R', fields: [{ name: 'h', type: { type: 'fixed', name: 'Hash', size: 32 } }] }),
      [snap(1, { type: 'record', name: 'R', fields: [{ name: 'h', type: { type: 'fixed', name: 'Hash', size: 16 } }] })],
      'BACKWARD',
    ).problems;
    expect(nested[0]!.reasons).toEqual(['fixed Hash of field R.h changed size 16 -> 32']);
    const root = checkAgainst(snap(2, { type: 'array', items: 'string' }), [snap(1, { type: 'array', items: 'long' })], 'BACKWARD').problems;
    expect(root[0]!.reasons).toEqual(['field array<string>[] changed type long -> string']);
  });

  it('falls back to avsc\'s own reason when the diff names nothing', () => {
    const writer = snap(1, { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }, { name: 'b', type: 'int' }] });
    const reader = snap(2, { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int', aliases: ['b'] }] });
    const [problem] = checkAgainst(reader, [writer], 'BACKWARD').problems;
    expect(problem!.messages).toEqual([
      "v2.avsc: avsc cannot resolve the schemas: ambiguous aliasing for R.a ([ 'a', 'b' ]): consumers using v2 cannot read events written with v1 (BACKWARD)",
    ]);
  });

  it('labels history snapshots with their commit', () => {
    const old: SchemaSnapshot = { ...snap(1, { type: 'record', name: 'R', fields: [] }), commit: { hash: 'abcdef0123456789', date: '2026-11-02T10:00:00Z' } };
    const now = snap(1, { type: 'record', name: 'R', fields: [{ name: 'x', type: 'int' }] });
    const [problem] = checkAgainst(now, [old], 'BACKWARD').problems;
    expect(problem!.messages[0]).toBe(
      'v1.avsc: field R.x was added without a default: consumers using v1 cannot read events written with v1 as committed in abcdef0 (2026-11-02) (BACKWARD)',
    );
  });

  it('displays types compactly', () => {
    expect(displayType(avro.Type.forSchema(['null', { type: 'array', items: 'long' }, { type: 'map', values: 'string' }] as avro.Schema))).toBe(
      '[null, array<long>, map<string>]',
    );
  });
});
