import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { registerWithLevel, RegistryRestClient, type CompatibilityLevel, type RegistryAuth } from './ccompat.js';
import { PermanentError } from '../errors/errors.js';

/** A record that is not in Confluent wire format or whose schema id is unknown: a DLQ case. */
export class UndecodableRecordError extends PermanentError {}

/**
 * Avro encode/decode in the Confluent wire format (magic byte 0, 4-byte schema id, Avro
 * body), with schemas fetched from the registry by id and cached. Longs decode to bigint
 * wherever they exceed 2^53, so money stays exact.
 */
export class RegistryCodec {
  readonly rest: RegistryRestClient;
  private readonly registry: SchemaRegistry;

  constructor(url: string, auth: RegistryAuth = {}) {
    this.rest = new RegistryRestClient(url, auth);
    this.registry = new SchemaRegistry(
      { host: url.replace(/\/+$/, ''), ...(auth.username ? { auth: { username: auth.username, password: auth.password ?? '' } } : {}) },
      { [avroType]: { typeHook: exactLongHook } } as never,
    );
  }

  /** Registers the schema under the subject (setting its compatibility level) and returns the id. */
  register(subject: string, schema: object | string, level: CompatibilityLevel = 'BACKWARD_TRANSITIVE'): Promise<number> {
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    return registerWithLevel(this.rest, subject, text, level);
  }

  encode(schemaId: number, value: unknown): Promise<Buffer> {
    return this.registry.encode(schemaId, value);
  }

  async decode<T = unknown>(buffer: Buffer): Promise<T> {
    if (buffer.length < 5 || buffer[0] !== 0) {
      throw new UndecodableRecordError('not in Confluent wire format (magic byte 0 + schema id)');
    }
    try {
      return (await this.registry.decode(buffer)) as T;
    } catch (error) {
      const e = error as { status?: number; message?: string };
      if (e.status === 404 || /not found/i.test(e.message ?? '')) {
        throw new UndecodableRecordError(`unknown schema id ${buffer.readInt32BE(1)}`, { cause: error });
      }
      throw error;
    }
  }
}

const avroType = 'AVRO';

/**
 * avsc type hook swapping plain longs for `exactLong`. (avsc's `registry` option would also
 * do it, but it accumulates named types, so a second version of a record would clash.)
 */
export function exactLongHook(schema: unknown): avro.Type | undefined {
  if (schema === 'long') return exactLong;
  if (schema && typeof schema === 'object' && (schema as { type?: unknown }).type === 'long' && !('logicalType' in schema)) return exactLong;
  return undefined;
}

/**
 * avsc's long type maps to JS numbers and throws beyond 2^53; this one decodes to a
 * number when it is safe and to a bigint when not, and encodes either.
 */
export const exactLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => {
    const v = buf.readBigInt64LE();
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  },
  toBuffer: (n: number | bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v: unknown) => (typeof v === 'string' ? BigInt(v) : (v as number)),
  toJSON: (n: number | bigint) => (typeof n === 'bigint' ? n.toString() : n),
  isValid: (n: unknown) => (typeof n === 'number' && Number.isInteger(n)) || typeof n === 'bigint',
  compare: (a: number | bigint, b: number | bigint) => (a === b ? 0 : a < b ? -1 : 1),
});
