import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../processors/core/kafka/client.js';
import { RegistryCodec } from '../../processors/core/registry/codec.js';
import { collect } from '../support/kafka.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

const settings = testSettings();

const schema = {
  type: 'record',
  name: 'Probe',
  namespace: 'io.sluice.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'amount_minor', type: 'long' },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

describe('Avro in Confluent wire format through the registry and Kafka', () => {
  beforeAll(async () => {
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    await requireServer('schema registry', hostPortOf(settings.registry.url), async () => {
      const res = await fetch(`${settings.registry.url}/subjects`);
      if (res.status !== 200) throw new Error(`GET /subjects answered ${res.status}`);
    });
  });

  it('registers a schema, produces a record, consumes it back and decodes the same value', async () => {
    const codec = new RegistryCodec(settings.registry.url);
    const subject = `test.probe-${randomUUID()}-value`;
    const id = await codec.register(subject, schema);
    expect(id).toBeGreaterThan(0);

    // Above 2^53: the exact long must survive encode -> Kafka -> decode.
    const value = { id: randomUUID(), amount_minor: 2n ** 53n + 1n, note: 'hello' };
    const topic = `test.probe.${randomUUID()}`;
    const kafka = createKafka(settings.kafka, { region: settings.s3.region });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const wire = await codec.encode(id, value);
    await producer.send({ topic, acks: -1, messages: [{ key: value.id, value: wire }] });
    await producer.disconnect();

    const [message] = await collect(kafka, topic, (m) => m.length >= 1);
    const bytes = message!.value!;
    // Wire format: magic byte 0, then the 4-byte big-endian schema id.
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(id);
    expect(await codec.decode(bytes)).toEqual(value);

    // An independent reader: the schema fetched by id from the registry, decoded with avsc.
    const byId = (await (await fetch(`${settings.registry.url}/schemas/ids/${id}`)).json()) as { schema: string };
    const type = avro.Type.forSchema(JSON.parse(byId.schema) as avro.Schema, {
      registry: { long: avro.types.LongType.__with({
        fromBuffer: (b: Buffer) => b.readBigInt64LE(),
        toBuffer: (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64LE(n); return b; },
        fromJSON: BigInt, toJSON: Number, isValid: (n: unknown) => typeof n === 'bigint', compare: () => 0,
      }) },
    });
    expect(type.fromBuffer(bytes.subarray(5))).toEqual({ ...value });
  });

  it('refuses bytes that are not in wire format and unknown schema ids, naming the problem', async () => {
    const codec = new RegistryCodec(settings.registry.url);
    await expect(codec.decode(Buffer.from('not avro at all'))).rejects.toThrow(/wire format/);
    const unknown = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 2, 0x61]);
    await expect(codec.decode(unknown)).rejects.toThrow(/unknown schema id 2147483632/);
  });

  it('applies the subject compatibility level and rejects an incompatible version', async () => {
    const codec = new RegistryCodec(settings.registry.url);
    const subject = `test.level-${randomUUID()}-value`;
    await codec.register(subject, schema, 'BACKWARD_TRANSITIVE');
    expect(await codec.rest.subjectLevel(subject)).toBe('BACKWARD_TRANSITIVE');
    // Compatible: a new optional field with a default.
    const v2 = { ...schema, fields: [...schema.fields, { name: 'channel', type: 'string', default: 'web' }] };
    await expect(codec.register(subject, v2, 'BACKWARD_TRANSITIVE')).resolves.toBeGreaterThan(0);
    // Incompatible under BACKWARD: a new field without a default.
    const bad = { ...schema, fields: [...schema.fields, { name: 'region', type: 'string' }] };
    expect((await codec.rest.checkCompatible(subject, JSON.stringify(bad))).compatible).toBe(false);
    await expect(codec.register(subject, bad, 'BACKWARD_TRANSITIVE')).rejects.toThrow(/incompatible/);
  });
});
