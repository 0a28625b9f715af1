import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParquetBatchWriter } from '../../processors/core/parquet/batch-writer.js';
import { lakeSchemaOfFile } from '../../processors/core/pipeline/lake-columns.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { deletePrefix, listKeys } from '../../processors/core/s3/objects.js';
import { compactLake } from '../../processors/compact/compactor.js';
import { createLogger } from '../../processors/core/log/logger.js';
import { pruneStaging } from '../../processors/ops/pruner.js';
import { cli, ensureBuilt, eventIdOf, EVENT_TYPES, requireServerWithin, type EventType } from '../support/ops-lake.js';
import { hostPortOf, testSettings } from '../support/servers.js';

/**
 * Issue 6, the staging pruner: rows older than the retention are deleted only when their
 * event_id is read back from the lake's Parquet files of the row's own partition (event type
 * and UTC day). The lake is missing some events: those rows stay; a dry run deletes nothing;
 * rows newer than the retention stay even when their events are in the lake.
 */

const settings = testSettings();
const id = randomUUID().slice(0, 8);
const prefix = `test-ops-prune-${id}/agent_events/`;
const bucket = settings.s3.bucket;
const s3 = createS3Client(settings.s3);
const DAY = 86_400_000;
const retentionMs = 30 * DAY;

/** The lake's columns, read from the shipped pipeline (connectors/exports/lake.yaml). */
const columns = lakeSchemaOfFile(fileURLToPath(new URL('../../connectors/exports/lake.yaml', import.meta.url))).columns;

type Where = 'lake' | 'missing' | 'other_day';
interface Row {
  eventId: string;
  type: EventType;
  occurredAt: Date;
  receivedAt: Date;
  /** Whether (and where) the lake holds the event. */
  where: Where;
}

const now = Date.now();
const rows: Row[] = [];
const add = (where: Where, old: boolean, occurredAt: Date) => {
  const i = rows.length;
  rows.push({ eventId: eventIdOf(id, i), type: EVENT_TYPES[i % 4]!, occurredAt, receivedAt: new Date(old ? now - 60 * DAY - i * 1000 : now - DAY - i * 1000), where });
};
// Old rows whose events are in the lake (3 days; the last one 23:30 UTC, another day in most time zones).
for (let i = 0; i < 20; i++) add('lake', true, new Date(Date.UTC(2026, 8, 1 + (i % 3), 10, i)));
add('lake', true, new Date(Date.UTC(2026, 8, 3, 23, 30)));
// Old rows the lake is missing: never exported (or dead-lettered).
for (let i = 0; i < 10; i++) add('missing', true, new Date(Date.UTC(2026, 8, 1 + (i % 3), 12, i)));
// An old row whose event_id is only in another day's partition: not proof for its own partition.
add('other_day', true, new Date(Date.UTC(2026, 8, 2, 8, 0)));
// Recent rows (inside the retention) whose events are in the lake.
for (let i = 0; i < 10; i++) add('lake', false, new Date(Date.UTC(2026, 8, 1 + (i % 3), 14, i)));

const ids = rows.map((r) => r.eventId);
const day = (d: Date) => d.toISOString().slice(0, 10);

let pool: pg.Pool;

async function remaining(): Promise<Set<string>> {
  const { rows: found } = await pool.query<{ event_id: string }>('SELECT event_id::text AS event_id FROM staging.agent_events WHERE event_id = ANY($1::uuid[])', [ids]);
  return new Set(found.map((r) => r.event_id));
}

beforeAll(async () => {
  await requireServerWithin('PostgreSQL', hostPortOf(settings.database.url));
  await requireServerWithin('S3', hostPortOf(settings.s3.endpoint!));
  ensureBuilt();
  // A session time zone far from UTC: the pruner must still take the day in UTC, as the lake does.
  pool = new pg.Pool({ connectionString: settings.database.url, max: 2, options: '-c TimeZone=Pacific/Kiritimati' });

  // The lake: one or two files per partition, written as the export writes them.
  const files = new Map<string, Row[]>();
  for (const r of rows) {
    if (r.where === 'missing') continue;
    const d = r.where === 'other_day' ? new Date(r.occurredAt.getTime() + DAY) : r.occurredAt;
    const part = `${prefix}event_type=${r.type}/dt=${day(d)}/`;
    const name = files.has(`${part}x+0+0.parquet`) && files.get(`${part}x+0+0.parquet`)!.length >= 2 ? `${part}x+0+100.parquet` : `${part}x+0+0.parquet`;
    files.set(name, [...(files.get(name) ?? []), r]);
  }
  for (const [key, list] of files) {
    const writer = new ParquetBatchWriter({ columns }, { compression: 'zstd' });
    for (const r of list) {
      const money = r.type !== 'customer_onboarded';
      writer.append({
        event_id: r.eventId,
        event_type: r.type,
        agent_id: 'agent-prune',
        customer_id: 'customer-prune',
        amount_minor: money ? 1234n : null,
        currency: money ? 'USD' : null,
        occurred_at: r.occurredAt,
        received_at: r.receivedAt,
        source: 'web',
        schema_version: 1,
      });
    }
    // The offsets the export stores with each object (what `sluice compact` proves the export is done with).
    const first = key.endsWith('+100.parquet') ? 100 : 0;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await writer.finish(), Metadata: { 'sluice-first-offset': String(first), 'sluice-last-offset': String(first + 99) } }));
  }
  // Something that is not Parquet beside the files (e.g. a marker) is not read as proof.
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}event_type=deposit_made/dt=2026-09-01/_SUCCESS`, Body: ids.join('\n') }));

  for (const r of rows) {
    const money = r.type !== 'customer_onboarded';
    await pool.query(
      `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, received_at, source)
       VALUES ($1, $2, 'agent-prune', 'customer-prune', $3, $4, $5, $6, 'web')`,
      [r.eventId, r.type, money ? '1234' : null, money ? 'USD' : null, r.occurredAt, r.receivedAt],
    );
  }
});

afterAll(async () => {
  await pool?.query('DELETE FROM staging.agent_events WHERE event_id = ANY($1::uuid[])', [ids]).catch(() => undefined);
  await pool?.end();
  await deletePrefix(s3, bucket, prefix).catch(() => undefined);
});

describe('staging pruner', () => {
  const prunable = rows.filter((r) => r.where === 'lake' && r.receivedAt.getTime() < now - retentionMs).map((r) => r.eventId);

  it('a dry run counts what is proven in the lake and deletes nothing (library and `sluice prune --dry-run`)', async () => {
    const counts = await pruneStaging(pool, s3, { bucket, lakePrefix: prefix, retentionMs, dryRun: true, batchSize: 7 });
    expect(counts.inLake).toBe(prunable.length);
    expect(counts.deleted).toBe(0);
    expect(await remaining()).toEqual(new Set(ids));

    const run = await cli(['prune', '--retention', '30d', '--lake-prefix', prefix, '--dry-run'], { SLUICE_LOG_LEVEL: 'info' });
    expect(run.code, run.stderr).toBe(0);
    const logged = (run.stdout + run.stderr)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'prune dry run');
    expect(logged, run.stdout + run.stderr).toBeDefined();
    expect(logged).toMatchObject({ inLake: prunable.length, deleted: 0, dryRun: true });
    expect(Number(logged!.candidates)).toBeGreaterThanOrEqual(rows.filter((r) => r.receivedAt.getTime() < now - retentionMs).length);
    expect(Number(logged!.keptNotInLake)).toBeGreaterThanOrEqual(11);
    expect(await remaining()).toEqual(new Set(ids));
  }, 60_000);

  it('the proof holds on a compacted lake: `sluice compact` rewrites the partitions, the dry run counts the same', async () => {
    const before = (await listKeys(s3, bucket, prefix)).filter((k) => k.endsWith('.parquet'));
    const { outcomes, failed } = await compactLake({
      s3,
      bucket,
      prefix,
      schema: { columns },
      compression: 'zstd',
      targetBytes: 128 * 2 ** 20,
      rowGroupSize: 131_072,
      graceMs: 0,
      pipelineName: 'ops-pruner',
      logger: createLogger({ name: 'compact', level: 'warn' }),
      committedOffsets: async () => new Map([[0, 1_000n]]),
    });
    expect(failed).toBe(0);
    expect(outcomes.filter((o) => !o.skipped).length).toBeGreaterThan(0);
    const after = (await listKeys(s3, bucket, prefix)).filter((k) => k.endsWith('.parquet'));
    expect(after.length).toBeLessThan(before.length);
    expect(after.some((k) => k.includes('.compacted-'))).toBe(true);
    const counts = await pruneStaging(pool, s3, { bucket, lakePrefix: prefix, retentionMs, dryRun: true, batchSize: 7 });
    expect(counts.inLake).toBe(prunable.length);
    expect(await remaining()).toEqual(new Set(ids));
  }, 60_000);

  it('deletes exactly the old rows whose events are in the (compacted) lake; the lake missing an event keeps its row', async () => {
    const counts = await pruneStaging(pool, s3, { bucket, lakePrefix: prefix, retentionMs, batchSize: 7 });
    expect(counts.deleted).toBe(prunable.length);
    expect(counts.inLake).toBe(prunable.length);
    const left = await remaining();
    const expectedLeft = new Set(ids.filter((eventId) => !prunable.includes(eventId)));
    expect(left).toEqual(expectedLeft);
    // Every kept row is one the lake cannot prove, or one inside the retention.
    for (const r of rows.filter((x) => left.has(x.eventId))) expect(r.where !== 'lake' || r.receivedAt.getTime() >= now - retentionMs).toBe(true);

    const again = await pruneStaging(pool, s3, { bucket, lakePrefix: prefix, retentionMs });
    expect(again.deleted).toBe(0);
    expect(await remaining()).toEqual(expectedLeft);
  }, 60_000);
});
