import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';

/**
 * An independent reader of Confluent-wire-format Avro: the schema comes from the registry
 * by the id in the record, nothing from Sluice's code or schema files. Its only addition
 * is a long type that decodes to bigint, since plain avsc refuses longs beyond 2^53.
 */
const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint | number) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as string),
  toJSON: (n: bigint) => n.toString(),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

const typeHook = (schema: unknown): avro.Type | undefined => {
  if (schema === 'long') return bigintLong;
  if (schema && typeof schema === 'object' && (schema as { type?: unknown }).type === 'long' && !('logicalType' in schema)) return bigintLong;
  return undefined;
};

export function registryReader(url: string): SchemaRegistry {
  return new SchemaRegistry({ host: url.replace(/\/+$/, '') }, { [SchemaType.AVRO]: { typeHook } } as never);
}
