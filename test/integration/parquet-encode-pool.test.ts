import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ParquetEncoder } from '../../processors/core/parquet/batch-writer.js';
import type { LakeSchema } from '../../processors/core/parquet/lake-schema.js';
import { ParquetBatchWriter } from '../../processors/core/parquet/batch-writer.js';
import { int64Column, readParquetTable, stringColumn } from '../../processors/core/parquet/reader.js';

/**
 * The runner's Parquet encoding threads, as built (`npm run build`: the worker is the
 * compiled dist/processors/core/parquet/encode-worker.js): files encoded on a thread read
 * back exactly as files encoded on the event loop, several at once, and a closed pool
 * refuses work with a clear error.
 */
const POOL = fileURLToPath(new URL('../../dist/processors/core/parquet/encode-pool.js', import.meta.url));

interface PoolModule {
  ParquetEncodePool: new (size: number) => ParquetEncoder & { close(): Promise<void>; readonly pending: number };
}

const schema: LakeSchema = {
  columns: [
    { name: 'event_id', type: 'string', nullable: false },
    { name: 'amount_minor', type: 'int64', nullable: true },
    { name: 'occurred_at', type: 'timestamp_us', nullable: false },
  ],
};

function writer(rows: number, seed: number): ParquetBatchWriter {
  const w = new ParquetBatchWriter(schema, { compression: 'zstd', metadata: { 'sluice.test': String(seed) } });
  for (let i = 0; i < rows; i++) {
    w.append({ event_id: `evt-${seed}-${i}-é`, amount_minor: i % 5 === 0 ? null : 2n ** 53n + BigInt(i * seed), occurred_at: 1_767_225_600_000_000n + BigInt(i) });
  }
  return w;
}

function rowsOf(bytes: Uint8Array): { ids: string[]; amounts: (bigint | null)[] } {
  const table = readParquetTable(bytes);
  const ids: string[] = [];
  const amounts: (bigint | null)[] = [];
  for (const batch of table.batches) {
    const id = stringColumn(batch.getChild('event_id')!.data[0]!);
    const amount = int64Column(batch.getChild('amount_minor')!.data[0]!);
    for (let i = 0; i < batch.numRows; i++) {
      ids.push(id.text(i));
      amounts.push(amount.isNull(i) ? null : amount.values[i]!);
    }
  }
  return { ids, amounts };
}

describe('Parquet encoding threads (encode-pool)', () => {
  it('is built', () => {
    expect(existsSync(POOL), `${POOL}: run npm run build`).toBe(true);
  });

  it('encodes files on worker threads that read back exactly like files encoded on the event loop', async () => {
    const { ParquetEncodePool } = (await import(POOL)) as PoolModule;
    const pool = new ParquetEncodePool(2);
    try {
      const seeds = [1, 2, 3, 4, 5, 6, 7];
      const [threaded, local] = await Promise.all([
        Promise.all(seeds.map((s) => writer(3000 + s, s).finish(pool))),
        Promise.all(seeds.map((s) => writer(3000 + s, s).finish())),
      ]);
      for (let k = 0; k < seeds.length; k++) {
        const a = rowsOf(threaded[k]!);
        const b = rowsOf(local[k]!);
        expect(a.ids).toHaveLength(3000 + seeds[k]!);
        expect(a).toEqual(b);
        expect(a.amounts[1]).toBe(2n ** 53n + BigInt(seeds[k]!)); // exact beyond 2^53
      }
      expect(pool.pending).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('refuses work once closed, naming why', async () => {
    const { ParquetEncodePool } = (await import(POOL)) as PoolModule;
    const pool = new ParquetEncodePool(1);
    await pool.close();
    await expect(writer(10, 9).finish(pool)).rejects.toThrow('the encode pool is closed');
  });
});
