import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  avroLakeMapping,
  jsonText,
  KAFKA_METADATA_COLUMNS,
  LakeSchemaError,
  lakeSchemaFromAvro,
  LakeValueShapeError,
  type LakeColumn,
} from '../../processors/core/parquet/lake-schema.js';

const agentEventV1 = JSON.parse(readFileSync(new URL('../../schemas/agent-event/v1.avsc', import.meta.url), 'utf8')) as object;
const shape = (columns: readonly LakeColumn[]) => columns.map((c) => `${c.name}:${c.type}${c.nullable ? '?' : ''}`);

describe('lake schema from Avro', () => {
  it('flattens AgentEvent v1: envelope columns, the data union as shared nullable columns plus data_branch, Kafka columns', () => {
    const schema = lakeSchemaFromAvro(agentEventV1, { extraColumns: KAFKA_METADATA_COLUMNS });
    expect(shape(schema.columns)).toEqual([
      'specversion:string',
      'id:string',
      'type:string',
      'source:string',
      'time:timestamp_us',
      'subject:string',
      'schema_version:int32',
      'received_at:timestamp_us',
      'correlation_id:string?',
      'session_id:string?',
      'data_branch:string',
      'data_customer_id:string?',
      'data_metadata:string?',
      'data_amount_minor:int64?',
      'data_currency:string?',
      'data_product:string?',
      'kafka_topic:string',
      'kafka_partition:int32',
      'kafka_offset:int64',
    ]);
    expect(schema.columns.find((c) => c.name === 'data_amount_minor')!.doc).toBe('integer minor units (cents), > 0');
    expect(schema.columns.find((c) => c.name === 'data_branch')!.doc).toBe('branch of data: CustomerOnboarded, DepositMade, WithdrawalMade, InvestmentMade');
  });

  it('flattens a decoded event (avsc wraps the data union by full name) and keeps 2^53+1 a bigint', () => {
    const { toRow } = avroLakeMapping(agentEventV1);
    const row = toRow(
      {
        specversion: '1.0',
        id: 'c9a4e0a6-9f1e-4a57-8b39-2e0d1f6f0b11',
        type: 'io.sluice.agent.deposit_made',
        source: '/channels/web',
        time: 1_767_225_600_000_001,
        subject: 'agent-1',
        schema_version: 1,
        received_at: 1_767_225_600_500_000,
        correlation_id: null,
        session_id: 's-1',
        data: { 'io.sluice.events.DepositMade': { customer_id: 'c-1', amount_minor: 2n ** 53n + 1n, currency: 'USD', metadata: null } },
      },
      { kafka_topic: 'events', kafka_partition: 3, kafka_offset: 42 },
    );
    expect(row).toEqual({
      specversion: '1.0',
      id: 'c9a4e0a6-9f1e-4a57-8b39-2e0d1f6f0b11',
      type: 'io.sluice.agent.deposit_made',
      source: '/channels/web',
      time: 1_767_225_600_000_001,
      subject: 'agent-1',
      schema_version: 1,
      received_at: 1_767_225_600_500_000,
      correlation_id: null,
      session_id: 's-1',
      data_branch: 'DepositMade',
      data_customer_id: 'c-1',
      data_amount_minor: 2n ** 53n + 1n,
      data_currency: 'USD',
      data_metadata: null,
      kafka_topic: 'events',
      kafka_partition: 3,
      kafka_offset: 42,
    });
    // Short branch names are accepted too; columns of other branches are simply absent (null).
    expect(toRow({ data: { InvestmentMade: { customer_id: 'c', amount_minor: 5, currency: 'USD', product: 'fund' } } })).toMatchObject({
      data_branch: 'InvestmentMade',
      data_product: 'fund',
    });
    expect(toRow({ data: null })).not.toHaveProperty('data_branch');
    expect(() => toRow({ data: { customer_id: 'c' } })).toThrow(LakeValueShapeError);
  });

  it('maps logical types, nested and nullable records, enums, bytes, named references', () => {
    const schema = {
      type: 'record',
      name: 'Everything',
      namespace: 'test',
      fields: [
        { name: 'i', type: 'int' },
        { name: 'l', type: 'long' },
        { name: 'f', type: 'float' },
        { name: 'd', type: 'double' },
        { name: 'b', type: 'boolean' },
        { name: 'raw', type: 'bytes' },
        { name: 'ts_ms', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'local_us', type: { type: 'long', logicalType: 'local-timestamp-micros' } },
        { name: 'day', type: { type: 'int', logicalType: 'date' } },
        { name: 't_ms', type: { type: 'int', logicalType: 'time-millis' } },
        { name: 't_us', type: { type: 'long', logicalType: 'time-micros' } },
        { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
        { name: 'odd', type: { type: 'string', logicalType: 'not-a-known-one' } },
        { name: 'color', type: { type: 'enum', name: 'Color', symbols: ['RED', 'GREEN'] } },
        { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 4 } },
        { name: 'home', type: { type: 'record', name: 'Address', fields: [{ name: 'city', type: 'string' }, { name: 'geo', type: { type: 'record', name: 'Geo', fields: [{ name: 'lat', type: 'double' }] } }] } },
        { name: 'work', type: ['null', 'Address'], default: null },
        { name: 'tags', type: { type: 'array', items: 'string' } },
        { name: 'attrs', type: ['null', { type: 'map', values: 'long' }] },
        { name: 'either', type: ['null', 'string', 'long'] },
      ],
    };
    const { schema: lake, toRow } = avroLakeMapping(schema);
    expect(shape(lake.columns)).toEqual([
      'i:int32',
      'l:int64',
      'f:float',
      'd:double',
      'b:boolean',
      'raw:bytes',
      'ts_ms:timestamp_ms',
      'local_us:local_timestamp_us',
      'day:date',
      't_ms:time_ms',
      't_us:time_us',
      'price:string',
      'odd:string',
      'color:string',
      'hash:bytes',
      'home_city:string',
      'home_geo_lat:double',
      'work_city:string?',
      'work_geo_lat:double?',
      'tags:string',
      'attrs:string?',
      'either:string?',
    ]);
    const row = toRow({
      price: Buffer.from([0xff, 0xfe, 0x0c]), // -500 unscaled -> -5.00
      home: { city: 'Lisboa', geo: { lat: 38.7 } },
      work: null,
      tags: ['a', 'b'],
      attrs: { big: 2n ** 53n + 1n },
      either: 'x',
    });
    expect(row).toMatchObject({ price: '-5.00', home_city: 'Lisboa', home_geo_lat: 38.7, tags: '["a","b"]', attrs: '{"big":9007199254740993}', either: '"x"' });
    expect(row).not.toHaveProperty('work_city');
    expect(toRow({ work: { city: 'Porto', geo: { lat: 41.1 } } })).toMatchObject({ work_city: 'Porto', work_geo_lat: 41.1 });
  });

  it('turns a recursive record into JSON text instead of flattening forever', () => {
    const schema = {
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'label', type: 'string' },
        { name: 'next', type: ['null', 'Node'], default: null },
      ],
    };
    const { schema: lake, toRow } = avroLakeMapping(schema);
    expect(shape(lake.columns)).toEqual(['label:string', 'next:string?']);
    expect(toRow({ label: 'a', next: { label: 'b', next: null } })).toEqual({ label: 'a', next: '{"label":"b","next":null}' });
  });

  it('refuses schemas that cannot become one flat table', () => {
    const record = (fields: object[]) => ({ type: 'record', name: 'R', fields });
    expect(() => lakeSchemaFromAvro('"string"')).toThrow(LakeSchemaError);
    expect(() =>
      lakeSchemaFromAvro(record([{ name: 'a_b', type: 'string' }, { name: 'a', type: { type: 'record', name: 'A', fields: [{ name: 'b', type: 'string' }] } }])),
    ).toThrow(/column a_b would hold both a_b and a\.b/);
    expect(() =>
      lakeSchemaFromAvro(
        record([
          {
            name: 'u',
            type: [
              { type: 'record', name: 'X', fields: [{ name: 'v', type: 'long' }] },
              { type: 'record', name: 'Y', fields: [{ name: 'v', type: 'string' }] },
            ],
          },
        ]),
      ),
    ).toThrow(/union branches disagree on the type of u\.v/);
    expect(() => lakeSchemaFromAvro(record([{ name: 'kafka_offset', type: 'long' }]), { extraColumns: KAFKA_METADATA_COLUMNS })).toThrow(/extra column kafka_offset/);
    expect(() => lakeSchemaFromAvro(record([{ name: 'x', type: 'Missing' }]))).toThrow(/unknown Avro type name Missing/);
  });

  it('writes JSON text with exact bigints and base64 bytes', () => {
    expect(jsonText({ a: [1, 2n ** 63n - 1n], b: Buffer.from('hi'), c: 'é' })).toBe('{"a":[1,9223372036854775807],"b":"aGk=","c":"é"}');
  });
});
