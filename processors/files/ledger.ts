import type pg from 'pg';

/**
 * staging.file_ingestions (infra/postgres/migrations/003_file_ingestions.sql): one row per
 * object version, the file's counts and committed offset, its rejects until they are
 * written out, and the listing cursor of each source. Every statement of `sluice files`
 * and of `sluice files status|retry` is here.
 */

export const FINAL_STATUSES = ['succeeded', 'failed', 'duplicate'] as const;
export type FileStatus = 'pending' | 'processing' | 'finishing' | (typeof FINAL_STATUSES)[number];
export const isFinal = (s: FileStatus): boolean => (FINAL_STATUSES as readonly string[]).includes(s);

export interface ObjectIdentity {
  bucket: string;
  key: string;
  /** Version id on a versioned bucket, else the ETag. */
  version: string;
  etag: string;
  source: string;
  size: number;
  lastModified: Date;
}

export interface LedgerRow {
  fileId: number;
  bucket: string;
  key: string;
  version: string;
  etag: string;
  source: string;
  size: number;
  lastModified: Date;
  sha256: string | null;
  status: FileStatus;
  duplicateOf: number | null;
  rowsRead: number;
  rowsAccepted: number;
  rowsRejected: number;
  rowsDuplicate: number;
  committedRows: number;
  errorReason: string | null;
  firstError: string | null;
  receivedAt: Date | null;
  discoveredAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  attempts: number;
  disposition: string | null;
}

const COLUMNS = `file_id, bucket, object_key, object_version, etag, source, size_bytes, last_modified, sha256, status, duplicate_of,
  rows_read, rows_accepted, rows_rejected, rows_duplicate, committed_rows, error_reason, first_error, received_at, discovered_at,
  started_at, finished_at, attempts, disposition`;

type Raw = Record<string, unknown>;
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

function rowOf(r: Raw): LedgerRow {
  return {
    fileId: num(r.file_id),
    bucket: r.bucket as string,
    key: r.object_key as string,
    version: r.object_version as string,
    etag: r.etag as string,
    source: r.source as string,
    size: num(r.size_bytes),
    lastModified: r.last_modified as Date,
    sha256: (r.sha256 as string | null) ?? null,
    status: r.status as FileStatus,
    duplicateOf: r.duplicate_of === null ? null : num(r.duplicate_of),
    rowsRead: num(r.rows_read),
    rowsAccepted: num(r.rows_accepted),
    rowsRejected: num(r.rows_rejected),
    rowsDuplicate: num(r.rows_duplicate),
    committedRows: num(r.committed_rows),
    errorReason: (r.error_reason as string | null) ?? null,
    firstError: (r.first_error as string | null) ?? null,
    receivedAt: (r.received_at as Date | null) ?? null,
    discoveredAt: r.discovered_at as Date,
    startedAt: (r.started_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
    attempts: num(r.attempts),
    disposition: (r.disposition as string | null) ?? null,
  };
}

/** The counts one batch adds, and the offset it reaches. */
export interface BatchProgress {
  read: number;
  accepted: number;
  rejected: number;
  duplicate: number;
  committedRows: number;
}

export interface Reject {
  line: number;
  reasons: string[];
  message: string;
  original: string;
}

/** Namespace of the advisory locks that give one instance a file at a time. */
const LOCK_CLASS = 0x51f1;

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export class Ledger {
  constructor(private readonly db: Queryable) {}

  /** The object's row, created on first sight. */
  async register(o: ObjectIdentity): Promise<LedgerRow> {
    const { rows } = await this.db.query(
      `INSERT INTO staging.file_ingestions (bucket, object_key, object_version, etag, source, size_bytes, last_modified)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (bucket, object_key, object_version) DO UPDATE SET source = staging.file_ingestions.source
       RETURNING ${COLUMNS}`,
      [o.bucket, o.key, o.version, o.etag, o.source, o.size, o.lastModified],
    );
    return rowOf(rows[0] as Raw);
  }

  async get(fileId: number): Promise<LedgerRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM staging.file_ingestions WHERE file_id = $1`, [fileId]);
    return rows[0] ? rowOf(rows[0] as Raw) : undefined;
  }

  /** Final states of these objects (bucket, key, version), to skip them in a listing without a round trip each. */
  async statuses(bucket: string, keys: readonly string[]): Promise<Map<string, { version: string; status: FileStatus }[]>> {
    const out = new Map<string, { version: string; status: FileStatus }[]>();
    if (keys.length === 0) return out;
    const { rows } = await this.db.query<{ object_key: string; object_version: string; status: FileStatus }>(
      'SELECT object_key, object_version, status FROM staging.file_ingestions WHERE bucket = $1 AND object_key = ANY($2::text[])',
      [bucket, keys],
    );
    for (const r of rows) out.set(r.object_key, [...(out.get(r.object_key) ?? []), { version: r.object_version, status: r.status }]);
    return out;
  }

  /** Takes the file for this session (the connection); false when another instance has it. */
  async tryLock(fileId: number): Promise<boolean> {
    const { rows } = await this.db.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [LOCK_CLASS, fileId]);
    return rows[0]!.locked;
  }

  async unlock(fileId: number): Promise<void> {
    await this.db.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, fileId]);
  }

  /** A new attempt: counted, and received_at fixed on the first one. */
  async start(fileId: number): Promise<LedgerRow> {
    const { rows } = await this.db.query(
      `UPDATE staging.file_ingestions SET status = 'processing', attempts = attempts + 1, started_at = coalesce(started_at, now()),
         received_at = coalesce(received_at, now())
       WHERE file_id = $1 RETURNING ${COLUMNS}`,
      [fileId],
    );
    return rowOf(rows[0] as Raw);
  }

  /**
   * Records the file's SHA-256 and tells whether an earlier file (another key, or another
   * version) with the same bytes was or is being ingested: then this one is a duplicate.
   * Serialised per hash (a transaction-scoped advisory lock), so two instances that take
   * the same bytes under two keys at once do not both ingest them.
   */
  async recordHash(client: pg.PoolClient, fileId: number, sha256: string): Promise<number | undefined> {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS + 1, sha256]);
      const { rows } = await client.query<{ file_id: string }>(
        `SELECT file_id FROM staging.file_ingestions
         WHERE sha256 = $1 AND file_id <> $2 AND status IN ('processing', 'finishing', 'succeeded') ORDER BY file_id LIMIT 1`,
        [sha256, fileId],
      );
      const earlier = rows[0] ? Number(rows[0].file_id) : undefined;
      await client.query(
        earlier === undefined
          ? `UPDATE staging.file_ingestions SET sha256 = $2 WHERE file_id = $1`
          : `UPDATE staging.file_ingestions SET sha256 = $2, status = 'finishing', duplicate_of = $3, finished_at = now() WHERE file_id = $1`,
        earlier === undefined ? [fileId, sha256] : [fileId, sha256, earlier],
      );
      await client.query('COMMIT');
      return earlier;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** Inside the batch's transaction: the rejects and the new counts and offset. */
  async commitBatch(client: pg.PoolClient, fileId: number, p: BatchProgress, rejects: readonly Reject[]): Promise<void> {
    if (rejects.length > 0) {
      await client.query(
        `INSERT INTO staging.file_rejects (file_id, line, reasons, message, original)
         SELECT $1, r.line, r.reasons, r.message, r.original FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS r(line, reasons, message, original)
         ON CONFLICT (file_id, line) DO NOTHING`,
        [fileId, rejects.map((r) => r.line), rejects.map((r) => r.reasons.join(';')), rejects.map((r) => r.message), rejects.map((r) => r.original)],
      );
    }
    const { rowCount } = await client.query(
      `UPDATE staging.file_ingestions SET rows_read = rows_read + $2, rows_accepted = rows_accepted + $3, rows_rejected = rows_rejected + $4,
         rows_duplicate = rows_duplicate + $5, committed_rows = $6
       WHERE file_id = $1 AND committed_rows < $6`,
      [fileId, p.read, p.accepted, p.rejected, p.duplicate, p.committedRows],
    );
    // The offset only moves forward: a batch below it means two writers, which the lock forbids.
    if (rowCount !== 1) throw new Error(`file ${fileId}: the ledger is already past row ${p.committedRows}; another instance processed it`);
  }

  /** Rows are done (or the file failed): the outputs are written next. */
  async finishing(fileId: number, failure?: { reason: string; message: string }): Promise<LedgerRow> {
    const { rows } = await this.db.query(
      `UPDATE staging.file_ingestions SET status = 'finishing', finished_at = now(), error_reason = coalesce(error_reason, $2), first_error = coalesce(first_error, $3)
       WHERE file_id = $1 RETURNING ${COLUMNS}`,
      [fileId, failure?.reason ?? null, failure?.message ?? null],
    );
    return rowOf(rows[0] as Raw);
  }

  async finished(fileId: number, status: 'succeeded' | 'failed' | 'duplicate', disposition: string): Promise<void> {
    await this.db.query(`UPDATE staging.file_ingestions SET status = $2, disposition = $3 WHERE file_id = $1`, [fileId, status, disposition]);
  }

  /** The file's rejects in line order, a page at a time. */
  async rejects(fileId: number, afterLine: number, limit: number): Promise<Reject[]> {
    const { rows } = await this.db.query<{ line: string; reasons: string; message: string; original: string }>(
      'SELECT line, reasons, message, original FROM staging.file_rejects WHERE file_id = $1 AND line > $2 ORDER BY line LIMIT $3',
      [fileId, afterLine, limit],
    );
    return rows.map((r) => ({ line: Number(r.line), reasons: r.reasons.split(';'), message: r.message, original: r.original }));
  }

  async deleteRejects(fileId: number): Promise<void> {
    await this.db.query('DELETE FROM staging.file_rejects WHERE file_id = $1', [fileId]);
  }

  async cursor(bucket: string, prefix: string): Promise<string> {
    const { rows } = await this.db.query<{ start_after: string }>('SELECT start_after FROM staging.file_cursors WHERE bucket = $1 AND prefix = $2', [bucket, prefix]);
    return rows[0]?.start_after ?? '';
  }

  async saveCursor(bucket: string, prefix: string, startAfter: string): Promise<void> {
    await this.db.query(
      `INSERT INTO staging.file_cursors (bucket, prefix, start_after) VALUES ($1, $2, $3)
       ON CONFLICT (bucket, prefix) DO UPDATE SET start_after = EXCLUDED.start_after, updated_at = now()`,
      [bucket, prefix, startAfter],
    );
  }

  /** Recent files, newest first, for `sluice files status`. */
  async list(filter: { source?: string | undefined; since?: Date | undefined; limit: number }): Promise<LedgerRow[]> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS} FROM staging.file_ingestions
       WHERE ($1::text IS NULL OR source = $1) AND ($2::timestamptz IS NULL OR discovered_at >= $2)
       ORDER BY discovered_at DESC, file_id DESC LIMIT $3`,
      [filter.source ?? null, filter.since ?? null, filter.limit],
    );
    return rows.map((r) => rowOf(r as Raw));
  }

  /** The latest row of a key (its newest version), for `sluice files retry`. */
  async latestOf(bucket: string, key: string): Promise<LedgerRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM staging.file_ingestions WHERE bucket = $1 AND object_key = $2 ORDER BY file_id DESC LIMIT 1`, [bucket, key]);
    return rows[0] ? rowOf(rows[0] as Raw) : undefined;
  }

  /** A failed file to run again from its first row (rows already stored count as duplicates then). */
  /** Puts a row reset for a retry back as it was (its object came back as another version: a file of its own). */
  async restore(row: LedgerRow): Promise<void> {
    await this.db.query(
      `UPDATE staging.file_ingestions SET status = $2, rows_read = $3, rows_accepted = $4, rows_rejected = $5, rows_duplicate = $6,
         committed_rows = $7, error_reason = $8, first_error = $9, finished_at = $10, disposition = $11, duplicate_of = $12
       WHERE file_id = $1`,
      [row.fileId, row.status, row.rowsRead, row.rowsAccepted, row.rowsRejected, row.rowsDuplicate, row.committedRows, row.errorReason, row.firstError, row.finishedAt, row.disposition, row.duplicateOf],
    );
  }

  async resetForRetry(fileId: number): Promise<void> {
    await this.db.query(
      `UPDATE staging.file_ingestions SET status = 'pending', rows_read = 0, rows_accepted = 0, rows_rejected = 0, rows_duplicate = 0,
         committed_rows = 0, error_reason = NULL, first_error = NULL, finished_at = NULL, disposition = NULL, duplicate_of = NULL
       WHERE file_id = $1`,
      [fileId],
    );
    await this.deleteRejects(fileId);
  }
}
