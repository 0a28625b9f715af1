import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../core/log/logger.js';
import { customersToResolve, enrich, fingerprint, resolveAgents, type EnrichedEvent, type RequestContext, type StagedEvent } from '../ingest-api/enrichment.js';
import { IngestTransaction } from '../ingest-api/repository.js';
import { timestampOfDate } from '../ingest-api/timestamp.js';
import { conflictingDuplicates, validateEvent } from '../ingest-api/validation.js';
import { prepareLoadTable, loadEvents } from './staging-load.js';
import { isFinal, Ledger, type LedgerRow, type ObjectIdentity, type Reject } from './ledger.js';
import type { FilesMetrics } from './metrics.js';
import { finishFile, type OutputDeps, type Receipt } from './outputs.js';
import { FileFormatError, reasonOf } from './reasons.js';
import { readRecords, type FileRecord } from './records.js';
import type { FileSource, FilesSettings } from './settings.js';

/**
 * One object, once: registered in the ledger by its identity, taken by one instance (an
 * advisory lock held by the connection that writes its rows), hashed (the same bytes seen
 * before under another key make it a duplicate), then read as a stream of records from
 * the row after the last committed one. Each batch of rows is validated and enriched by
 * the ingest API's own modules and inserted, idempotently by event_id, in one transaction
 * with its rejects and the ledger's new offset: a crash anywhere resumes after the last
 * committed batch, and no row is stored twice.
 */

export interface FileIngestDeps extends OutputDeps {
  pool: pg.Pool;
  metrics: FilesMetrics;
  signal: AbortSignal;
}

/** Reads of one object within one pass before it waits for the next poll. */
const READ_ATTEMPTS = 5;

/** A connection to S3 that broke or timed out mid-read (not a bad file, not a database fault). */
function isReadInterruption(error: unknown): boolean {
  const e = error as { code?: string; name?: string; message?: string } | null;
  return (
    ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE'].includes(e?.code ?? '') ||
    e?.name === 'TimeoutError' ||
    /^aborted$|socket hang up|premature close/i.test(e?.message ?? '')
  );
}

export type IngestResult = { outcome: 'done'; receipt: Receipt } | { outcome: 'skipped'; why: 'final' | 'locked' } | { outcome: 'disposed' };

export async function ingestObject(deps: FileIngestDeps, source: FileSource, object: ObjectIdentity): Promise<IngestResult> {
  const registered = await deps.ledger.register(object);
  if (isFinal(registered.status)) return { outcome: 'skipped', why: 'final' };
  const client = await deps.pool.connect();
  let broken = false;
  try {
    const ledger = new Ledger(client);
    if (!(await ledger.tryLock(registered.fileId))) return { outcome: 'skipped', why: 'locked' };
    try {
      let row = (await ledger.get(registered.fileId))!;
      if (isFinal(row.status)) return { outcome: 'skipped', why: 'final' };
      // A read cut short (a connection reset on a long, slowly read GET) resumes at once
      // from the committed offset, a few times, before the file waits for the next poll.
      for (let attempt = 1; row.status !== 'finishing'; attempt++) {
        try {
          row = await processRows(deps, ledger, client, source, row);
        } catch (error) {
          if (deps.signal.aborted || attempt >= READ_ATTEMPTS || !isReadInterruption(error)) throw error;
          deps.logger.warn({ fileId: row.fileId, key: row.key, err: error, attempt }, 'reading the object was interrupted; resuming after the last committed row');
          row = (await ledger.get(row.fileId))!;
        }
      }
      const receipt = await finishFile({ ...deps, ledger }, row);
      return { outcome: 'done', receipt };
    } finally {
      await ledger.unlock(registered.fileId).catch(() => {
        broken = true;
      });
    }
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    client.release(broken);
  }
}

async function processRows(deps: FileIngestDeps, ledger: Ledger, client: pg.PoolClient, source: FileSource, start: LedgerRow): Promise<LedgerRow> {
  const { logger, settings: s } = deps;
  let row = await ledger.start(start.fileId);
  const log = logger.child({ fileId: row.fileId, key: row.key, source: row.source });
  if (row.size === 0) return ledger.finishing(row.fileId, { reason: 'empty_file', message: 'the object has no bytes' });
  if (row.sha256 === null) {
    let sha256: string;
    try {
      sha256 = await hashObject(deps.s3, row, deps.signal);
    } catch (error) {
      if (!(error instanceof FileFormatError)) throw error;
      return ledger.finishing(row.fileId, { reason: error.reason, message: error.message });
    }
    const earlier = await ledger.recordHash(client, row.fileId, sha256);
    row = (await ledger.get(row.fileId))!;
    if (earlier !== undefined) {
      log.info({ duplicateOf: earlier, sha256 }, 'same bytes as an earlier file: a duplicate, no row read');
      return row;
    }
  }
  const started = performance.now();
  if (row.committedRows > 0) log.info({ committedRows: row.committedRows, attempt: row.attempts }, 'resuming the file after its last committed row');
  else log.info({ size: row.size, attempt: row.attempts }, 'reading the file');
  const receivedAt = timestampOfDate(row.receivedAt!);
  const context: RequestContext = { receivedAt, source: source.channel, sessionId: null, correlationId: null };
  const counter = { compressed: 0, uncompressed: 0 };
  await prepareLoadTable(client);
  // One batch is written while the next is read and validated: the database's work and
  // ours overlap, and commits stay in file order on the one connection that holds the lock.
  let writing: Promise<number> | undefined;
  const write = async (records: readonly FileRecord[]): Promise<void> => {
    const prepared = prepareBatch(deps, records, context);
    if (writing) offset = await writing;
    writing = writeBatch(deps, ledger, client, row, prepared, context);
    // Awaited before the next batch or at the end; this keeps an early failure from being unhandled meanwhile.
    writing.catch(() => undefined);
  };
  const drain = async (): Promise<void> => {
    if (!writing) return;
    const pending = writing;
    writing = undefined;
    offset = await pending;
  };
  let batch: FileRecord[] = [];
  let offset = row.committedRows;
  try {
    const body = await getObject(deps.s3, row, deps.signal);
    for await (const record of readRecords(body, { source, maxRecordBytes: s.maxRecordBytes }, counter)) {
      if (record.index < row.committedRows) continue;
      batch.push(record);
      if (batch.length >= s.batchRows) {
        await write(batch);
        batch = [];
        if (deps.signal.aborted) {
          await drain();
          throw new Error('stopped');
        }
      }
    }
    if (batch.length > 0) await write(batch);
    await drain();
  } catch (error) {
    if (!(error instanceof FileFormatError)) {
      await drain().catch(() => undefined);
      throw error;
    }
    // The rows before the failure are committed valid events; the ones after it are not read.
    await drain();
    if (batch.length > 0) {
      await write(batch);
      await drain();
    }
    const at = error.line !== undefined ? ` (line ${error.line})` : '';
    log.warn({ reason: error.reason, committedRows: offset }, `file failed: ${error.message}`);
    deps.metrics.bytes.inc({ source: row.source }, counter.compressed);
    return ledger.finishing(row.fileId, { reason: error.reason, message: `${error.message}${at}` });
  } finally {
    deps.metrics.fileSeconds.observe({ source: row.source }, (performance.now() - started) / 1000);
  }
  deps.metrics.bytes.inc({ source: row.source }, counter.compressed);
  return ledger.finishing(row.fileId);
}

interface FileEvent {
  event: EnrichedEvent;
  line: number;
  raw: string;
}

interface PreparedBatch {
  /** Valid rows, the later copies of a conflicting event_id left out. */
  events: FileEvent[];
  rejects: Reject[];
  read: number;
  /** The ledger's offset once the batch is committed. */
  last: number;
}

/** Validates and enriches one batch with the ingest API's own modules (no database involved). */
function prepareBatch(deps: FileIngestDeps, records: readonly FileRecord[], context: RequestContext): PreparedBatch {
  const rejects: Reject[] = [];
  const events: FileEvent[] = [];
  const options = { baseCurrency: deps.settings.baseCurrency, receivedAtMicros: context.receivedAt.micros };
  for (const r of records) {
    if (r.kind === 'bad') {
      rejects.push({ line: r.line, reasons: [r.reason], message: r.message, original: r.raw });
      continue;
    }
    const verdict = validateEvent(r.fields, r.index, options);
    if (verdict.ok) events.push({ event: enrich(verdict.event, r.index, context), line: r.line, raw: r.raw });
    else rejects.push({ line: r.line, reasons: [...new Set(verdict.errors.map(reasonOf))], message: verdict.errors.map((e) => `${e.field}: ${e.message}`).join('; '), original: r.raw });
  }
  // The same event_id twice in the batch with other content: the later copies are rejected.
  // Only ids seen more than once can conflict, so only those are fingerprinted.
  const seen = new Map<string, number>();
  for (const { event } of events) seen.set(event.eventId, (seen.get(event.eventId) ?? 0) + 1);
  const repeated = events.filter(({ event }) => seen.get(event.eventId)! > 1);
  const conflicts = new Set(conflictingDuplicates(repeated.map(({ event }) => ({ index: event.index, eventId: event.eventId, fingerprint: fingerprint(event) }))).map((e) => e.index));
  const kept =
    conflicts.size === 0
      ? events
      : events.filter((e) => {
          if (!conflicts.has(e.event.index)) return true;
          rejects.push({ line: e.line, reasons: ['conflicting_duplicate'], message: `event_id ${e.event.eventId} appears earlier in the file with different content`, original: e.raw });
          return false;
        });
  return { events: kept, rejects, read: records.length, last: records[records.length - 1]!.index + 1 };
}

/**
 * One transaction: the agents of rows that name none (the customers' assignments), the
 * rows (COPY into a temporary table, then INSERT ... ON CONFLICT DO NOTHING), the rejects
 * and the ledger's new offset.
 */
async function writeBatch(deps: FileIngestDeps, ledger: Ledger, client: pg.PoolClient, row: LedgerRow, batch: PreparedBatch, context: RequestContext): Promise<number> {
  const rejects = [...batch.rejects];
  await client.query('BEGIN');
  try {
    const named: StagedEvent[] = [];
    const unnamed: FileEvent[] = [];
    for (const e of batch.events) {
      if (e.event.agentId !== null) named.push(e.event as StagedEvent);
      else unnamed.push(e);
    }
    let staged: StagedEvent[] = named;
    if (unnamed.length > 0) {
      const customers = customersToResolve(unnamed.map((e) => e.event));
      const resolved = resolveAgents(
        unnamed.map((e) => e.event),
        await new IngestTransaction(client).findAssignments(customers),
      );
      const byIndex = new Map(unnamed.map((e) => [e.event.index, e]));
      for (const e of resolved.errors) {
        const ev = byIndex.get(e.index!)!;
        rejects.push({ line: ev.line, reasons: [reasonOf(e)], message: `${e.field}: ${e.message}`, original: ev.raw });
      }
      // Back in file order: the first copy of an event_id is the one kept.
      staged = [...named, ...resolved.events].sort((a, b) => a.index - b.index);
    }
    const unique = firstOfEachEventId(staged);
    const accepted = await loadEvents(client, unique, context.receivedAt.iso);
    const progress = { read: batch.read, accepted, rejected: rejects.length, duplicate: staged.length - accepted, committedRows: batch.last };
    await ledger.commitBatch(client, row.fileId, progress, rejects);
    await client.query('COMMIT');
    deps.metrics.rows.inc({ source: row.source, outcome: 'accepted' }, progress.accepted);
    deps.metrics.rows.inc({ source: row.source, outcome: 'duplicate' }, progress.duplicate);
    deps.metrics.rows.inc({ source: row.source, outcome: 'rejected' }, progress.rejected);
    return batch.last;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function firstOfEachEventId(events: readonly StagedEvent[]): StagedEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => !seen.has(e.eventId) && seen.add(e.eventId) !== undefined);
}

/** The object's body (this very version: a replaced object is a new file, not a mix of two). */
async function getObject(s3: S3Client, row: LedgerRow, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
  const versioned = row.version !== row.etag;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: row.bucket, Key: row.key, ...(versioned ? { VersionId: row.version } : { IfMatch: row.etag }) }), { abortSignal: signal });
    return out.Body as AsyncIterable<Uint8Array>;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.$metadata?.httpStatusCode === 412 || e.name === 'PreconditionFailed') {
      throw new FileFormatError('object_changed', 'the object under this key was replaced (its ETag changed) before it was read; the new version is a file of its own');
    }
    throw error;
  }
}

async function hashObject(s3: S3Client, row: LedgerRow, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of await getObject(s3, row, signal)) hash.update(chunk);
  return hash.digest('hex');
}
