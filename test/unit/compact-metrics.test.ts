import { describe, expect, it } from 'vitest';
import { CompactMetrics } from '../../processors/compact/metrics.js';
import { Registry } from '../../processors/core/metrics/metrics.js';
import type { PartitionOutcome } from '../../processors/compact/compactor.js';

const outcome = (o: Partial<PartitionOutcome>): PartitionOutcome => ({ partition: 'p', recovered: 'none', inputs: 0, outputs: 0, inputBytes: 0, outputBytes: 0, rows: 0, duplicatesDropped: 0, uncommitted: 0, ...o });

describe('compaction metrics', () => {
  it('count partitions by outcome, objects and bytes in and out of compacted partitions only, and mark a clean run', async () => {
    const registry = new Registry();
    const m = new CompactMetrics(registry);
    m.record(
      [
        outcome({ inputs: 30, outputs: 1, inputBytes: 3000, outputBytes: 900, rows: 500 }),
        outcome({ recovered: 'rolled_back', inputs: 4, outputs: 1, inputBytes: 400, outputBytes: 100, rows: 50 }),
        outcome({ skipped: 'nothing_to_do', uncommitted: 2, inputs: 9 }),
        outcome({ skipped: 'open' }),
      ],
      1,
      12,
    );
    const value = async (name: string, labels: Record<string, string> = {}) =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x) && !('le' in v.labels))?.value;
    expect(await value('sluice_compact_partitions_total', { outcome: 'compacted' })).toBe(2);
    expect(await value('sluice_compact_partitions_total', { outcome: 'rolled_back' })).toBe(1);
    expect(await value('sluice_compact_partitions_total', { outcome: 'nothing_to_do' })).toBe(1);
    expect(await value('sluice_compact_partitions_total', { outcome: 'open' })).toBe(1);
    expect(await value('sluice_compact_partitions_total', { outcome: 'failed' })).toBe(1);
    expect(await value('sluice_compact_objects_total', { direction: 'in' })).toBe(34);
    expect(await value('sluice_compact_objects_total', { direction: 'out' })).toBe(2);
    expect(await value('sluice_compact_bytes_total', { direction: 'out' })).toBe(1000);
    expect(await value('sluice_compact_rows_total')).toBe(550);
    expect(await value('sluice_compact_uncommitted_files')).toBe(2);
    expect(await value('sluice_compact_runs_total', { outcome: 'partial' })).toBe(1);
    // A run with a failed partition is not a success.
    expect(await value('sluice_compact_last_success_timestamp_seconds')).toBe(0);
    m.record([outcome({})], 0, 1);
    expect(await value('sluice_compact_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
  });
});
