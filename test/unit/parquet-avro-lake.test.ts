import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParquetBatchWriter } from '../../processors/core/parquet/batch-writer.js';
import { avroLakeMapping, KAFKA_METADATA_COLUMNS } from '../../processors/core/parquet/lake-schema.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { ParquetReader } from '../support/parquet-reader.js';

const v1Text = readFileSync(new URL('../../schemas/agent-event/v1.avsc', import.meta.url), 'utf8');
const branches = {
  customer_onboarded: 'io.sluice.events.CustomerOnboarded',
  deposit_made: 'io.sluice.events.DepositMade',
  withdrawal_made: 'io.sluice.events.WithdrawalMade',
  investment_made: 'io.sluice.events.InvestmentMade',
} as const;
const kinds = Object.keys(branches) as (keyof typeof branches)[];

/** Event i of the contract, as the normalizer would publish it. */
function event(i: number) {
  const kind = kinds[i % 4]!;
  const amount = i === 5 ? 2n ** 53n + 1n : 1000 + i;
  const payload =
    kind === 'customer_onboarded'
      ? { customer_id: `c-${i}`, metadata: i % 8 === 0 ? '{"ref":"façade ✓"}' : null }
      : { customer_id: `c-${i}`, amount_minor: amount, currency: 'USD', ...(kind === 'investment_made' ? { product: i % 3 ? 'fund-a' : null } : {}), metadata: null };
  return {
    specversion: '1.0',
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    type: `io.sluice.agent.${kind}`,
    source: '/channels/web',
    time: 1_767_225_600_000_000 + i * 1_000_001,
    subject: `agent-${i % 3}`,
    schema_version: 1,
    received_at: 1_767_225_600_000_000 + i * 1_000_001 + 5,
    correlation_id: i % 2 ? `corr-${i}` : null,
    session_id: null,
    data: { [branches[kind]]: payload },
  };
}

describe('Avro events to a Parquet lake file', () => {
  let reader: ParquetReader;
  beforeAll(async () => {
    reader = await ParquetReader.open();
  });
  afterAll(() => reader.close());

  it('decodes AgentEvent v1 like the export input, flattens, writes, and DuckDB reads exact values and types', async () => {
    // Decode through the same type hook as RegistryCodec: longs beyond 2^53 arrive as bigint.
    const type = avro.Type.forSchema(JSON.parse(v1Text) as avro.Schema, { typeHook: exactLongHook });
    const mapping = avroLakeMapping(v1Text, { extraColumns: KAFKA_METADATA_COLUMNS });
    const writer = new ParquetBatchWriter(mapping.schema, { compression: 'zstd' });
    const n = 400;
    const sums = new Map<string, bigint>();
    for (let i = 0; i < n; i++) {
      const decoded: unknown = type.fromBuffer(type.toBuffer(event(i)));
      writer.append(mapping.toRow(decoded, { kafka_topic: 'sluice.events.v1', kafka_partition: i % 2, kafka_offset: Math.floor(i / 2) }));
      const kind = kinds[i % 4]!;
      if (kind !== 'customer_onboarded') sums.set(kind, (sums.get(kind) ?? 0n) + (i === 5 ? 2n ** 53n + 1n : BigInt(1000 + i)));
    }
    const bytes = await writer.finish();

    const types = await reader.columnTypes(bytes);
    expect(types).toMatchObject({ id: 'VARCHAR', time: 'TIMESTAMP WITH TIME ZONE', received_at: 'TIMESTAMP WITH TIME ZONE', schema_version: 'INTEGER', data_branch: 'VARCHAR', data_amount_minor: 'BIGINT', kafka_offset: 'BIGINT' });
    const t = `read_parquet('${reader.lastPath}')`;
    const byBranch = await reader.query(`SELECT data_branch, count(*) AS n, sum(data_amount_minor::HUGEINT) AS total, count(data_product) AS products FROM ${t} GROUP BY 1 ORDER BY 1`);
    expect(byBranch).toEqual([
      { data_branch: 'CustomerOnboarded', n: '100', total: null, products: '0' },
      { data_branch: 'DepositMade', n: '100', total: sums.get('deposit_made')!.toString(), products: '0' },
      { data_branch: 'InvestmentMade', n: '100', total: sums.get('investment_made')!.toString(), products: '66' },
      { data_branch: 'WithdrawalMade', n: '100', total: sums.get('withdrawal_made')!.toString(), products: '0' },
    ]);
    const [five] = await reader.query(`SELECT data_amount_minor, time, data_currency, correlation_id, session_id FROM ${t} WHERE id = '00000000-0000-4000-8000-000000000005'`);
    expect(five).toEqual({ data_amount_minor: '9007199254740993', time: '2026-01-01 00:00:05.000005+00', data_currency: 'USD', correlation_id: 'corr-5', session_id: null });
    const [meta] = await reader.query(`SELECT count(DISTINCT id) AS ids, count(data_metadata) AS metas, max(data_metadata) AS sample FROM ${t}`);
    expect(meta).toEqual({ ids: String(n), metas: '50', sample: '{"ref":"façade ✓"}' });
  });
});
