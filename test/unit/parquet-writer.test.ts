import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParquetBatchWriter, WriterClosedError, type ParquetCompression } from '../../processors/core/parquet/batch-writer.js';
import { LakeValueError } from '../../processors/core/parquet/columns.js';
import { KAFKA_METADATA_COLUMNS, type LakeRow, type LakeSchema } from '../../processors/core/parquet/lake-schema.js';
import { ParquetReader } from '../support/parquet-reader.js';

/** docs/domain.md's lake row: the staging columns plus the Kafka coordinates. */
const domainSchema: LakeSchema = {
  columns: [
    { name: 'event_id', type: 'string', nullable: false },
    { name: 'event_type', type: 'string', nullable: false },
    { name: 'agent_id', type: 'string', nullable: false },
    { name: 'customer_id', type: 'string', nullable: false },
    { name: 'amount_minor', type: 'int64', nullable: true },
    { name: 'currency', type: 'string', nullable: true },
    { name: 'occurred_at', type: 'timestamp_us', nullable: false },
    { name: 'received_at', type: 'timestamp_us', nullable: false },
    { name: 'source', type: 'string', nullable: true },
    { name: 'metadata', type: 'string', nullable: true },
    { name: 'schema_version', type: 'int32', nullable: false },
    ...KAFKA_METADATA_COLUMNS,
  ],
};

const BASE_US = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const UTF8 = '{"note":"café ✓ 日本語 🚀"}';
const TYPES = ['customer_onboarded', 'deposit_made', 'withdrawal_made', 'investment_made'];

function domainRow(i: number): LakeRow {
  const money = i % 4 !== 0;
  return {
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    event_type: TYPES[i % 4]!,
    agent_id: `agent-${i % 7}`,
    customer_id: `cust-${i}`,
    amount_minor: !money ? null : i === 1 ? 2n ** 53n + 1n : 100 + i,
    currency: money ? 'USD' : null,
    occurred_at: BASE_US + i * 1_000_001,
    received_at: BASE_US + i * 1_000_001 + 7,
    source: i % 3 === 0 ? null : 'web',
    metadata: i % 5 === 0 ? UTF8 : null,
    schema_version: 1,
    kafka_topic: 'sluice.events.v1',
    kafka_partition: i % 3,
    kafka_offset: 10_000_000_000 + i, // above 2^32
  };
}

describe('ParquetBatchWriter read back by DuckDB', () => {
  let reader: ParquetReader;
  beforeAll(async () => {
    reader = await ParquetReader.open();
  });
  afterAll(() => reader.close());

  for (const compression of ['snappy', 'zstd', 'none'] as ParquetCompression[]) {
    it(`writes DOMAIN rows exactly with ${compression}: int64 beyond 2^53, UTC µs timestamps, nulls, UTF-8`, async () => {
      const writer = new ParquetBatchWriter(domainSchema, { compression });
      const n = 5000;
      let expectedSum = 0n;
      for (let i = 0; i < n; i++) {
        const row = domainRow(i);
        if (row.amount_minor !== null) expectedSum += BigInt(row.amount_minor as number | bigint);
        writer.append(row);
      }
      expect(writer.rowCount).toBe(n);
      expect(writer.approxBytes).toBeGreaterThan(n * 100);
      const bytes = await writer.finish();

      expect(await reader.columnTypes(bytes)).toEqual({
        event_id: 'VARCHAR',
        event_type: 'VARCHAR',
        agent_id: 'VARCHAR',
        customer_id: 'VARCHAR',
        amount_minor: 'BIGINT',
        currency: 'VARCHAR',
        occurred_at: 'TIMESTAMP WITH TIME ZONE',
        received_at: 'TIMESTAMP WITH TIME ZONE',
        source: 'VARCHAR',
        metadata: 'VARCHAR',
        schema_version: 'INTEGER',
        kafka_topic: 'VARCHAR',
        kafka_partition: 'INTEGER',
        kafka_offset: 'BIGINT',
      });
      const file = reader.lastPath;
      const [ts] = await reader.query(`SELECT logical_type, repetition_type FROM parquet_schema('${file}') WHERE name = 'occurred_at'`);
      expect(String(ts!.logical_type)).toMatch(/isAdjustedToUTC=1.*MICROS=MicroSeconds/);
      expect(ts!.repetition_type).toBe('REQUIRED');
      const [amount] = await reader.query(`SELECT repetition_type FROM parquet_schema('${file}') WHERE name = 'amount_minor'`);
      expect(amount!.repetition_type).toBe('OPTIONAL');
      const codecs = await reader.query(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
      expect(codecs.map((c) => c.compression)).toEqual([compression === 'none' ? 'UNCOMPRESSED' : compression.toUpperCase()]);

      const t = `read_parquet('${file}')`;
      const [agg] = await reader.query(`SELECT count(*) AS n, sum(amount_minor::HUGEINT) AS total, count(amount_minor) AS amounts,
          count(currency) AS currencies, count(source) AS sources, count(metadata) AS metas,
          max(kafka_offset) AS max_offset, sum(epoch_us(occurred_at)::HUGEINT) AS occurred FROM ${t}`);
      let occurred = 0n;
      for (let i = 0; i < n; i++) occurred += BigInt(BASE_US + i * 1_000_001);
      expect(agg).toEqual({
        n: '5000',
        total: expectedSum.toString(),
        amounts: '3750',
        currencies: '3750',
        sources: String(n - Math.ceil(n / 3)),
        metas: '1000',
        max_offset: String(10_000_000_000 + n - 1),
        occurred: occurred.toString(),
      });
      const [one] = await reader.query(`SELECT amount_minor, occurred_at, epoch_us(received_at) AS received_us, source, currency FROM ${t} WHERE event_id = '00000000-0000-4000-8000-000000000001'`);
      expect(one).toEqual({ amount_minor: '9007199254740993', occurred_at: '2026-01-01 00:00:01.000001+00', received_us: String(BASE_US + 1_000_001 + 7), source: 'web', currency: 'USD' });
      const [text] = await reader.query(`SELECT metadata, strlen(metadata) AS bytes, amount_minor, currency FROM ${t} WHERE event_id = '00000000-0000-4000-8000-000000000000'`);
      expect(text).toEqual({ metadata: UTF8, bytes: String(Buffer.byteLength(UTF8)), amount_minor: null, currency: null });
    });
  }

  it('round-trips every lake type', async () => {
    const schema: LakeSchema = {
      columns: [
        { name: 'b', type: 'boolean', nullable: true },
        { name: 'f32', type: 'float', nullable: true },
        { name: 'f64', type: 'double', nullable: true },
        { name: 'i64', type: 'int64', nullable: true },
        { name: 'bin', type: 'bytes', nullable: true },
        { name: 'day', type: 'date', nullable: true },
        { name: 't_ms', type: 'time_ms', nullable: true },
        { name: 't_us', type: 'time_us', nullable: true },
        { name: 'ts_ms', type: 'timestamp_ms', nullable: true },
        { name: 'local_us', type: 'local_timestamp_us', nullable: true },
        { name: 's', type: 'string', nullable: true },
      ],
    };
    const writer = new ParquetBatchWriter(schema, { compression: 'zstd' });
    writer.append({ b: true, f32: 1.5, f64: -0.1, i64: -(2n ** 63n), bin: Buffer.from([0, 255]), day: 20454, t_ms: 3_600_000, t_us: 1n, ts_ms: new Date('2026-01-01T00:00:00.123Z'), local_us: 1_000_000, s: '' });
    writer.append({ b: false, f64: 1e300, i64: 2n ** 63n - 1n, day: new Date('2026-01-02T23:00:00Z'), ts_ms: 1_767_225_600_123, s: 'a\u0000b' });
    writer.append({ i64: -5_000_000_000, s: 'x'.repeat(100) + 'é' });
    writer.append({});
    const bytes = await writer.finish();
    expect(await reader.columnTypes(bytes)).toEqual({
      b: 'BOOLEAN',
      f32: 'FLOAT',
      f64: 'DOUBLE',
      i64: 'BIGINT',
      bin: 'BLOB',
      day: 'DATE',
      t_ms: 'TIME',
      t_us: 'TIME',
      ts_ms: 'TIMESTAMP WITH TIME ZONE',
      local_us: 'TIMESTAMP',
      s: 'VARCHAR',
    });
    const rows = await reader.query(`SELECT b, f32, f64, i64, hex(bin) AS bin, day, t_ms, t_us, epoch_ms(ts_ms) AS ts_ms, local_us, s FROM read_parquet('${reader.lastPath}')`);
    expect(rows).toEqual([
      { b: true, f32: 1.5, f64: -0.1, i64: '-9223372036854775808', bin: '00FF', day: '2026-01-01', t_ms: '01:00:00', t_us: '00:00:00.000001', ts_ms: '1767225600123', local_us: '1970-01-01 00:00:01', s: '' },
      { b: false, f32: null, f64: 1e300, i64: '9223372036854775807', bin: null, day: '2026-01-02', t_ms: null, t_us: null, ts_ms: '1767225600123', local_us: null, s: 'a\u0000b' },
      { b: null, f32: null, f64: null, i64: '-5000000000', bin: null, day: null, t_ms: null, t_us: null, ts_ms: null, local_us: null, s: 'x'.repeat(100) + 'é' },
      { b: null, f32: null, f64: null, i64: null, bin: null, day: null, t_ms: null, t_us: null, ts_ms: null, local_us: null, s: null },
    ]);
  });

  it('refuses a value that does not fit and leaves the batch as it was', async () => {
    const writer = new ParquetBatchWriter(domainSchema, { compression: 'snappy' });
    writer.append(domainRow(1));
    const bytesBefore = writer.approxBytes;
    const bad = (patch: LakeRow) => () => writer.append({ ...domainRow(2), ...patch });
    expect(bad({ amount_minor: 2 ** 53 + 2 })).toThrow(/column amount_minor: expected an integer within ±2\^53 as a number \(pass larger values as bigint\), got number 9007199254740994/);
    expect(bad({ amount_minor: 2n ** 63n })).toThrow(LakeValueError);
    expect(bad({ amount_minor: '12' })).toThrow(/column amount_minor: expected an integer/);
    expect(bad({ amount_minor: 1.5 })).toThrow(LakeValueError);
    expect(bad({ kafka_partition: 2 ** 31 })).toThrow(/column kafka_partition: expected a 32-bit integer/);
    expect(bad({ occurred_at: 'yesterday' })).toThrow(/column occurred_at: expected a timestamp/);
    expect(bad({ agent_id: null })).toThrow(/column agent_id: required column is null or missing/);
    expect(bad({ kafka_offset: undefined })).toThrow(LakeValueError);
    expect(bad({ source: 7 })).toThrow(/column source: expected a string, got number 7/);
    expect(writer.rowCount).toBe(1);
    expect(writer.approxBytes).toBe(bytesBefore);
    writer.append(domainRow(3));
    const bytes = await writer.finish();
    const rows = await reader.query(`SELECT event_id, amount_minor FROM ${reader.table(bytes)} ORDER BY event_id`);
    expect(rows).toEqual([
      { event_id: '00000000-0000-4000-8000-000000000001', amount_minor: '9007199254740993' },
      { event_id: '00000000-0000-4000-8000-000000000003', amount_minor: '103' },
    ]);
  });

  it('writes an empty batch as a valid file with the schema and no rows', async () => {
    const bytes = await new ParquetBatchWriter(domainSchema, { compression: 'zstd' }).finish();
    expect((await reader.columnTypes(bytes)).amount_minor).toBe('BIGINT');
    expect(await reader.query(`SELECT count(*) AS n FROM read_parquet('${reader.lastPath}')`)).toEqual([{ n: '0' }]);
  });

  it('splits row groups, stores footer metadata, and refuses use after finish', async () => {
    const writer = new ParquetBatchWriter(domainSchema, { compression: 'snappy', rowGroupSize: 1000, metadata: { 'sluice.schema_id': '7' } });
    for (let i = 0; i < 2500; i++) writer.append(domainRow(i));
    const bytes = await writer.finish();
    expect(() => writer.append(domainRow(0))).toThrow(WriterClosedError);
    await expect(writer.finish()).rejects.toThrow(WriterClosedError);
    reader.table(bytes);
    const groups = await reader.query(`SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata('${reader.lastPath}') ORDER BY 1`);
    expect(groups.map((g) => g.row_group_num_rows)).toEqual(['1000', '1000', '500']);
    const kv = await reader.query(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata('${reader.lastPath}') WHERE decode(key) LIKE 'sluice.%'`);
    expect(kv).toEqual([{ key: 'sluice.schema_id', value: '7' }]);
    const [meta] = await reader.query(`SELECT created_by FROM parquet_file_metadata('${reader.lastPath}')`);
    expect(meta!.created_by).toBe('sluice');
  });

  it('rejects an invalid schema or options up front', () => {
    expect(() => new ParquetBatchWriter({ columns: [] }, { compression: 'snappy' })).toThrow(/at least one column/);
    expect(() => new ParquetBatchWriter({ columns: [domainSchema.columns[0]!, domainSchema.columns[0]!] }, { compression: 'snappy' })).toThrow(/appears twice/);
    expect(() => new ParquetBatchWriter(domainSchema, { compression: 'gzip' as ParquetCompression })).toThrow(/compression must be one of snappy, zstd, none, got gzip/);
  });
});
