import { describe, expect, it, onTestFinished } from 'vitest';
import { compactedCoordinates, compactedKey, compactionOf, fileCoordinates, formatOffsetRanges, isClosed, journalKey, manifestKey, mergedFile, mergedKey, parseOffsetRanges, partitionDir, partitionOf } from '../../processors/compact/layout.js';
import { ParquetBatchWriter } from '../../processors/core/parquet/batch-writer.js';
import type { LakeSchema } from '../../processors/core/parquet/lake-schema.js';
import { readParquetTable } from '../../processors/core/parquet/reader.js';
import { rewrite } from '../../processors/compact/rewrite.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rowGroupsToRead } from '../../processors/core/parquet/s3-columns.js';
import { parquetMetadata } from 'hyparquet';

const prefix = 'lake/agent_events/';

describe('compaction layout', () => {
  it('reads export and compacted names, and only those', () => {
    expect(fileCoordinates(`${prefix}event_type=a/dt=2026-10-01/sluice.agent-events+3+1200.parquet`)).toEqual({ topic: 'sluice.agent-events', partition: 3, firstOffset: 1200n });
    const key = compactedKey(`${prefix}event_type=a/dt=2026-10-01`, { topic: 'sluice.agent-events', partition: 3, firstOffset: 1200n, lastOffset: 99999n }, 2);
    expect(key).toBe(`${prefix}event_type=a/dt=2026-10-01/sluice.agent-events+3+1200-99999.compacted-2.parquet`);
    expect(compactedCoordinates(key)).toEqual({ topic: 'sluice.agent-events', partition: 3, firstOffset: 1200n, lastOffset: 99999n, part: 2 });
    expect(compactedCoordinates(`${prefix}event_type=a/dt=2026-10-01/sluice.agent-events+3+1200.parquet`)).toBeUndefined();
    expect(fileCoordinates(`${prefix}event_type=a/dt=2026-10-01/notes.parquet`)).toBeUndefined();
  });

  it('names merged files by topic and fingerprint, keeps their offset ranges as metadata text, and tells one compaction by its name', () => {
    const dir = `${prefix}event_type=a/dt=2026-10-01`;
    const merged = mergedKey(dir, 'sluice.agent-events', '0123456789abcdef', 1);
    expect(merged).toBe(`${dir}/sluice.agent-events+merged-0123456789abcdef.compacted-1.parquet`);
    expect(mergedFile(merged)).toEqual({ topic: 'sluice.agent-events', part: 1 });
    // Neither an export file nor a one-partition compacted file to the readers that parse those.
    expect(fileCoordinates(merged)).toBeUndefined();
    expect(mergedFile(`${dir}/sluice.agent-events+3+1200.parquet`)).toBeUndefined();
    const ranges = new Map([
      [3, { first: 5n, last: 77n }],
      [0, { first: 12n, last: 2n ** 62n }],
    ]);
    const text = formatOffsetRanges(ranges);
    expect(text).toBe(`0:12-${2n ** 62n};3:5-77`);
    expect(parseOffsetRanges(text)).toEqual(new Map([...ranges].sort((a, b) => a[0] - b[0])));
    expect(parseOffsetRanges('0:12-')).toBeUndefined();
    expect(parseOffsetRanges(undefined)).toBeUndefined();
    // Outputs of one compaction share everything up to `.compacted-`; an export file belongs to none.
    expect(compactionOf(merged)).toBe(compactionOf(mergedKey(dir, 'sluice.agent-events', '0123456789abcdef', 0)));
    expect(compactionOf(merged)).not.toBe(compactionOf(mergedKey(dir, 'sluice.agent-events', 'fedcba9876543210', 0)));
    expect(compactionOf(compactedKey(dir, { topic: 't', partition: 1, firstOffset: 1n, lastOffset: 9n }, 0))).toBe(`${dir}/t+1+1-9`);
    expect(compactionOf(`${dir}/t+1+1.parquet`)).toBeUndefined();
  });

  it('finds partitions by their dt= directory, never in Sluice state, and closes them after the day and the grace', () => {
    expect(partitionOf(prefix, `${prefix}event_type=a/dt=2026-10-01/x.parquet`)).toEqual({ dir: `${prefix}event_type=a/dt=2026-10-01`, relative: 'event_type=a/dt=2026-10-01', day: '2026-10-01' });
    expect(partitionOf(prefix, `${prefix}_sluice/manifests/event_type=a/dt=2026-10-01/manifest`)).toBeUndefined();
    expect(partitionOf(prefix, `other/event_type=a/dt=2026-10-01/x.parquet`)).toBeUndefined();
    expect(partitionDir(prefix, 'event_type=a/dt=2026-10-01/')?.dir).toBe(`${prefix}event_type=a/dt=2026-10-01`);
    expect(partitionDir(prefix, 'event_type=a')).toBeUndefined();
    const p = partitionOf(prefix, `${prefix}event_type=a/dt=2026-10-01/x.parquet`)!;
    expect(journalKey(prefix, p)).toBe(`${prefix}_sluice/compaction/event_type=a/dt=2026-10-01/journal.json`);
    expect(manifestKey(prefix, p)).toBe(`${prefix}_sluice/manifests/event_type=a/dt=2026-10-01/manifest`);
    const h = 3_600_000;
    expect(isClosed('2026-10-01', 24 * h, new Date('2026-10-02T23:59:59Z'))).toBe(false);
    expect(isClosed('2026-10-01', 24 * h, new Date('2026-10-03T00:00:00Z'))).toBe(true);
  });
});

describe('compaction rewrite', () => {
  const schema: LakeSchema = {
    columns: [
      { name: 'event_id', type: 'string', nullable: false },
      { name: 'agent_id', type: 'string', nullable: false },
      { name: 'amount_minor', type: 'int64', nullable: true },
      { name: 'occurred_at', type: 'timestamp_us', nullable: false },
      { name: 'schema_version', type: 'int32', nullable: false },
    ],
  };
  const file = async (rows: [string, string, bigint | null, bigint][]) => {
    const w = new ParquetBatchWriter(schema, { compression: 'zstd' });
    for (const [event_id, agent_id, amount_minor, occurred_at] of rows) w.append({ event_id, agent_id, amount_minor, occurred_at, schema_version: 1 });
    return w.finish();
  };

  it('keeps every event once with exact values, sorted by agent then time, in the asked number of parts', async () => {
    const big = 2n ** 62n + 7n;
    const a = await file([
      ['e1', 'b', 5n, 1_764_000_000_000_003n],
      ['e2', 'a', big, 1_764_000_000_000_002n],
    ]);
    const b = await file([
      ['e3', 'a', null, 1_764_000_000_000_001n],
      ['e1', 'b', 5n, 1_764_000_000_000_003n], // a repeat the export's bounded dedupe let through
      ['e4', 'c', 1n, 1_764_000_000_000_000n],
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-rewrite-test-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    // 1 KiB of sort memory: every row or two spills a sorted run, so the merge across runs is what is tested.
    const result = await rewrite([a, b], { schema, compression: 'zstd', rowGroupSize: 2, parts: 2, metadata: { 'sluice.compacted': 'true' }, dir, memoryBytes: 300 });
    expect(result.runs).toBeGreaterThan(2);
    expect(result.inputRows).toBe(5);
    expect(result.duplicates).toBe(1);
    // Parts are cut by the input rows (copies are only known once merged): ceil(5 / 2) = 3, then the rest.
    expect(result.parts.map((p) => p.rows)).toEqual([3, 1]);
    const rows = result.parts.flatMap((p) => {
      const t = readParquetTable(readFileSync(p.path));
      return Array.from({ length: t.numRows }, (_, i) => [t.getChild('event_id')!.get(i), t.getChild('agent_id')!.get(i), t.getChild('amount_minor')!.get(i)]);
    });
    expect(rows).toEqual([
      ['e3', 'a', null],
      ['e2', 'a', big],
      ['e1', 'b', 5n],
      ['e4', 'c', 1n],
    ]);
    // Timestamps copied through their 64-bit values, not a float of milliseconds.
    const t = readParquetTable(readFileSync(result.parts[0]!.path));
    const micros = t.getChild('occurred_at')!.data[0]!.values as BigInt64Array;
    expect([...micros.subarray(0, 3)]).toEqual([1_764_000_000_000_001n, 1_764_000_000_000_002n, 1_764_000_000_000_003n]);
    expect(result.written.count).toBe(4);
  });
});

describe('row-group pruning by agent_id statistics', () => {
  it('reads only the row groups whose min/max can hold a requested agent (UTF-8 byte order)', async () => {
    const schema: LakeSchema = { columns: [{ name: 'agent_id', type: 'string', nullable: false }, { name: 'n', type: 'int32', nullable: false }] };
    const w = new ParquetBatchWriter(schema, { compression: 'zstd', rowGroupSize: 2 });
    // Sorted by UTF-8 bytes, as compaction writes them: groups [a, b], [c, d], [z, é] (é is 0xC3 0xA9, after z).
    for (const agent_id of ['a', 'b', 'c', 'd', 'z', 'é']) w.append({ agent_id, n: 1 });
    const bytes = await w.finish();
    const metadata = parquetMetadata(bytes.slice().buffer);
    const groups = (agents: string[]) => rowGroupsToRead(metadata, { column: 'agent_id', values: agents.map((a) => Buffer.from(a, 'utf8')) }).map((g) => [g.index, g.start, g.end]);
    expect(groups(['c'])).toEqual([[1, 2, 4]]);
    expect(groups(['bb'])).toEqual([]);
    expect(groups(['a', 'é'])).toEqual([[0, 0, 2], [2, 4, 6]]);
    expect(rowGroupsToRead(metadata, undefined).length).toBe(3);
  });
});
