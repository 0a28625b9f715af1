import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { Logger } from '../core/log/logger.js';
import { readColumns } from '../core/parquet/s3-columns.js';
import { escapePathValue } from '../core/pipeline/path-template.js';
import { isNotFound, listObjects } from '../core/s3/objects.js';

/**
 * The staging pruner: deletes staging rows older than the retention only once their
 * events are proved to be in the lake, i.e. their event_id is read back from the lake's
 * Parquet files of the row's own partition (event_type, UTC day of occurred_at). A row
 * whose event is not there (not exported yet, or invalid and dead-lettered) stays.
 * Debezium turns the deletes into DELETE changes, which the normalizer ignores (docs/domain.md).
 */

export interface PruneOptions {
  bucket: string;
  lakePrefix: string;
  /** Rows received longer ago than this are candidates. */
  retentionMs: number;
  /** Candidates examined per round. */
  batchSize?: number;
  dryRun?: boolean;
  now?: Date;
}

export interface PruneCounts {
  candidates: number;
  inLake: number;
  deleted: number;
  /** Candidates kept because the lake does not hold their event. */
  keptNotInLake: number;
  lakeFilesRead: number;
}

interface Candidate {
  event_id: string;
  event_type: string;
  day: string;
}

/**
 * The event ids of one partition. A file listed but gone when read was replaced by
 * `sluice compact` (its rows are in the compacted file, written before the inputs are
 * deleted): the partition is read again from a new listing.
 */
async function partitionIds(s3: S3Client, bucket: string, partition: string, counts: PruneCounts): Promise<Set<string>> {
  for (let attempt = 1; ; attempt++) {
    const ids = new Set<string>();
    try {
      for (const { key, size } of await listObjects(s3, bucket, partition)) {
        if (!key.endsWith('.parquet')) continue;
        // The report's reader (hyparquet): only the event_id column, a large compacted file by ranged GETs a row group at a time.
        await readColumns(s3, bucket, { key, size, columns: ['event_id'] }, (columns) => {
          for (const id of columns.get('event_id')! as (string | null | undefined)[]) if (id !== null && id !== undefined) ids.add(id);
        });
        counts.lakeFilesRead++;
      }
      return ids;
    } catch (error) {
      if (!isNotFound(error) || attempt >= 5) throw error;
    }
  }
}

export async function pruneStaging(pool: pg.Pool, s3: S3Client, o: PruneOptions, logger?: Logger): Promise<PruneCounts> {
  const counts: PruneCounts = { candidates: 0, inLake: 0, deleted: 0, keptNotInLake: 0, lakeFilesRead: 0 };
  const cutoff = new Date((o.now ?? new Date()).getTime() - o.retentionMs);
  const batchSize = o.batchSize ?? 10_000;
  const kept = new Set<string>();
  const lakeIds = new Map<string, Set<string>>();
  let after = '';
  for (;;) {
    // Keyset pagination by event_id: kept rows are not examined twice in one run.
    const { rows } = await pool.query<Candidate>(
      `SELECT event_id::text AS event_id, event_type, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day
         FROM staging.agent_events
        WHERE received_at < $1 AND event_id::text > $2
        ORDER BY event_id::text
        LIMIT $3`,
      [cutoff, after, batchSize],
    );
    if (rows.length === 0) break;
    after = rows.at(-1)!.event_id;
    counts.candidates += rows.length;
    const proven: string[] = [];
    for (const row of rows) {
      const partition = `${o.lakePrefix}event_type=${escapePathValue(row.event_type)}/dt=${row.day}/`;
      let ids = lakeIds.get(partition);
      if (!ids) {
        ids = await partitionIds(s3, o.bucket, partition, counts);
        lakeIds.set(partition, ids);
      }
      if (ids.has(row.event_id)) proven.push(row.event_id);
      else kept.add(row.event_id);
    }
    counts.inLake += proven.length;
    if (proven.length > 0 && !o.dryRun) {
      const res = await pool.query('DELETE FROM staging.agent_events WHERE event_id = ANY($1::uuid[]) AND received_at < $2', [proven, cutoff]);
      counts.deleted += res.rowCount ?? 0;
    }
    logger?.debug({ ...counts }, 'prune round');
    if (rows.length < batchSize) break;
  }
  counts.keptNotInLake = kept.size;
  return counts;
}
