import { DLQ_REASONS } from '../core/dlq/reasons.js';
import avro from 'avsc';
import { PermanentError, TransientError } from '../core/errors/errors.js';
import { exactLongHook } from '../core/registry/codec.js';
import type { RegistryRestClient } from '../core/registry/ccompat.js';

/**
 * Decoding of Confluent wire-format Avro values for the export input, with projection to
 * the newest schema: every record is read with the latest version registered under the
 * topic's subject (`<topic>-value`) as the reader schema, so files do not roll when older
 * and newer writers interleave (Kafka Connect's S3 sink rolls a file on every schema
 * change). Only a writer schema the newest cannot read (an incompatible change) is read
 * as itself, and then `readerId` tells the output to start a file of its own.
 *
 * Synchronous once the schemas are cached: one avsc `fromBuffer` per record, no promise.
 */

/** A value that cannot be decoded: a DLQ case with a reason code. */
export class DecodeError extends PermanentError {
  constructor(
    readonly reason: typeof DLQ_REASONS.notAvro | typeof DLQ_REASONS.unknownSchema | typeof DLQ_REASONS.decodeError,
    message: string,
  ) {
    super(message);
  }
}

/** What the decoder asks of a registry: the Confluent REST API (`GET /schemas/ids/{id}`, `GET /subjects/{s}/versions/latest`). */
export type SchemaLookup = Pick<RegistryRestClient, 'request'>;

export interface Decoded {
  value: unknown;
  /** The writer's schema id (in the record). */
  writerId: number;
  /** The id of the schema the value was read as (the newest compatible one, or the writer's). */
  readerId: number;
  /** The reader schema, JSON. */
  readerSchema: unknown;
}

interface Reader {
  id: number;
  schema: unknown;
  type: avro.Type;
}

interface Plan {
  reader: Reader;
  resolver: avro.Resolver | undefined;
}

export class AvroDecoder {
  private readonly writers = new Map<number, Reader>();
  private readonly newest = new Map<string, Reader | null>();
  /** writer id -> subject -> how to read it. */
  private readonly plans = new Map<string, Plan>();

  constructor(private readonly registry: SchemaLookup) {}

  /** Makes `decode` synchronous for the buffer: fetches what it needs (schemas) first. */
  async prepare(topic: string, value: Buffer | null): Promise<void> {
    if (!value || value.length < 5 || value[0] !== 0) return;
    const id = value.readInt32BE(1);
    const subject = `${topic}-value`;
    if (!this.newest.has(subject)) await this.refreshNewest(subject);
    if (!this.writers.has(id)) {
      const writer = await this.fetchById(id);
      if (!writer) return; // decode() reports unknown_schema
      this.writers.set(id, writer);
      // A writer newer than the reader we hold: the subject moved on, read with the new newest.
      const newest = this.newest.get(subject);
      if (!newest || newest.id < id) await this.refreshNewest(subject);
    }
  }

  /** Whether prepare() has already fetched everything this value needs. */
  ready(topic: string, value: Buffer | null): boolean {
    if (!value || value.length < 5 || value[0] !== 0) return true;
    return this.newest.has(`${topic}-value`) && (this.writers.has(value.readInt32BE(1)) || this.unknown.has(value.readInt32BE(1)));
  }

  private readonly unknown = new Set<number>();

  decode(topic: string, value: Buffer | null): Decoded {
    if (!value || value.length < 5 || value[0] !== 0) {
      throw new DecodeError(DLQ_REASONS.notAvro, value ? `value is not in the Confluent wire format (magic byte 0 + 4-byte schema id), first byte ${value[0]}` : 'value is null (a tombstone)');
    }
    const id = value.readInt32BE(1);
    const writer = this.writers.get(id);
    if (!writer) throw new DecodeError(DLQ_REASONS.unknownSchema, `schema id ${id} is not in the registry`);
    const plan = this.plan(`${topic}-value`, writer);
    try {
      const v = plan.reader.type.fromBuffer(value.subarray(5), plan.resolver, true);
      return { value: v, writerId: id, readerId: plan.reader.id, readerSchema: plan.reader.schema };
    } catch (error) {
      throw new DecodeError(DLQ_REASONS.decodeError, `Avro body does not decode with schema id ${id}: ${(error as Error).message}`);
    }
  }

  private plan(subject: string, writer: Reader): Plan {
    const key = `${writer.id}\u0000${subject}`;
    let plan = this.plans.get(key);
    if (!plan) {
      const newest = this.newest.get(subject);
      plan = { reader: writer, resolver: undefined };
      if (newest && newest.id !== writer.id) {
        try {
          plan = { reader: newest, resolver: newest.type.createResolver(writer.type) };
        } catch {
          // Incompatible with the newest: read as written; the output gives it a file of its own.
        }
      }
      this.plans.set(key, plan);
    }
    return plan;
  }

  private async refreshNewest(subject: string): Promise<void> {
    const { status, body } = await this.registry.request<{ id?: number; schema?: string; message?: string }>('GET', `/subjects/${encodeURIComponent(subject)}/versions/latest`);
    if (status === 404) {
      this.newest.set(subject, null); // no subject: every record is read with its writer's schema
    } else if (status === 200 && typeof body?.id === 'number' && typeof body.schema === 'string') {
      this.newest.set(subject, this.reader(body.id, body.schema));
      this.writers.set(body.id, this.newest.get(subject)!);
    } else {
      throw new TransientError(`registry answered ${status} for the latest version of ${subject}: ${JSON.stringify(body).slice(0, 300)}`);
    }
    for (const key of [...this.plans.keys()]) if (key.endsWith(`\u0000${subject}`)) this.plans.delete(key);
  }

  private async fetchById(id: number): Promise<Reader | undefined> {
    const { status, body } = await this.registry.request<{ schema?: string; schemaType?: string; message?: string }>('GET', `/schemas/ids/${id}`);
    if (status === 404) {
      this.unknown.add(id);
      return undefined;
    }
    if (status !== 200 || typeof body?.schema !== 'string') {
      throw new TransientError(`registry answered ${status} for schema id ${id}: ${JSON.stringify(body).slice(0, 300)}`);
    }
    if (body.schemaType && body.schemaType !== 'AVRO') {
      this.unknown.add(id);
      return undefined;
    }
    return this.reader(id, body.schema);
  }

  private reader(id: number, text: string): Reader {
    const schema = JSON.parse(text) as unknown;
    return { id, schema, type: avro.Type.forSchema(schema as avro.Schema, { typeHook: exactLongHook as never, wrapUnions: 'auto' }) };
  }
}
