import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { exactLongHook } from '../../processors/core/registry/codec.js';

describe('exact Avro longs', () => {
  const schema = {
    type: 'record',
    name: 'Money',
    fields: [
      { name: 'amount_minor', type: 'long' },
      { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  } as avro.Schema;
  const type = avro.Type.forSchema(schema, { typeHook: exactLongHook });

  it('round-trips values above 2^53 as bigint and small ones as numbers', () => {
    const big = { amount_minor: 2n ** 53n + 1n, at: 1_700_000_000_000 };
    expect(type.fromBuffer(type.toBuffer(big))).toEqual(big);
    const small = { amount_minor: 1234, at: 0 };
    expect(type.fromBuffer(type.toBuffer(small))).toEqual(small);
    expect(type.fromBuffer(type.toBuffer({ amount_minor: -(2n ** 63n), at: 0 })).amount_minor).toBe(-(2n ** 63n));
  });

  it('writes bytes a plain Avro reader understands', () => {
    const plain = avro.Type.forSchema(schema);
    expect(plain.fromBuffer(type.toBuffer({ amount_minor: 42, at: 7 }))).toEqual({ amount_minor: 42, at: 7 });
  });

  it('lets two versions of one named record coexist', () => {
    const v2 = { ...(schema as object), fields: [...(schema as { fields: object[] }).fields, { name: 'note', type: 'string', default: '' }] };
    expect(() => avro.Type.forSchema(v2 as avro.Schema, { typeHook: exactLongHook })).not.toThrow();
  });
});
