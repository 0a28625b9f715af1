import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../core/log/logger.js';
import { customersToResolve, resolveAgents, type RequestContext } from '../ingest-api/enrichment.js';
import { IngestTransaction } from '../ingest-api/repository.js';
import { timestampOfDate } from '../ingest-api/timestamp.js';
import { DirectCopyGate } from '../core/db/direct-copy-gate.js';
import { collectingEvery } from '../core/runtime/young-gc.js';
import { copyLine, prepareLoadTable, loadEvents } from './staging-load.js';
import { isFinal, Ledger, type LedgerRow, type ObjectIdentity, type Reject } from './ledger.js';
import type { FilesMetrics } from './metrics.js';
import { finishFile, type OutputDeps, type Receipt } from './outputs.js';
import { FileFormatError, reasonOf } from './reasons.js';
import type { ParseJob } from './parse-protocol.js';
import { parseInThread, type ParsedBatch } from './parse-thread.js';
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

/** Batches prepared on the parsing thread and not yet written, at most (memory stays bounded by it). */
const BATCHES_AHEAD = 2;

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
  const job: ParseJob = {
    source,
    maxRecordBytes: s.maxRecordBytes,
    batchRows: s.batchRows,
    skipRecords: row.committedRows,
    baseCurrency: s.baseCurrency,
    context,
    batchesAhead: BATCHES_AHEAD,
  };
  await prepareLoadTable(client);
  const gate = { gate: new DirectCopyGate(), key: row.key };
  // One batch is written while the next ones are parsed and validated on the parsing
  // thread: the database's work and ours overlap, and commits stay in file order on the
  // one connection that holds the lock.
  let writing: Promise<number> | undefined;
  let offset = row.committedRows;
  const drain = async (): Promise<void> => {
    if (!writing) return;
    const pending = writing;
    writing = undefined;
    offset = await pending;
  };
  try {
    const body = await getObject(deps.s3, row, deps.signal);
    const heap = deps.metrics.parseThreadHeap;
    for await (const batch of parseInThread(body, job, counter, (h) => Object.entries(h).forEach(([kind, bytes]) => heap.set({ kind }, bytes)))) {
      if (writing) offset = await writing;
      writing = writeBatch(deps, ledger, client, row, batch, context, gate);
      // Awaited before the next batch or at the end; this keeps an early failure from being unhandled meanwhile.
      writing.catch(() => undefined);
      if (deps.signal.aborted) {
        await drain();
        throw new Error('stopped');
      }
    }
    await drain();
  } catch (error) {
    if (!(error instanceof FileFormatError)) {
      await drain().catch(() => undefined);
      throw error;
    }
    // The rows before the failure are committed valid events; the ones after it are not read.
    await drain();
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

/**
 * One transaction: the agents of rows that name none (the customers' assignments), the
 * rows (staging-load.ts: a direct COPY, or a temporary table and INSERT ... ON CONFLICT DO
 * NOTHING when an event_id is stored already), the rejects and the ledger's new offset.
 */
async function writeBatch(deps: FileIngestDeps, ledger: Ledger, client: pg.PoolClient, row: LedgerRow, batch: ParsedBatch, context: RequestContext, gate: Parameters<typeof loadEvents>[2]): Promise<number> {
  const rejects = [...batch.rejects];
  await client.query('BEGIN');
  try {
    const copyText: (string | Uint8Array)[] = [batch.named.copyText];
    let staged = batch.named.rows;
    if (batch.unnamed.length > 0) {
      const events = batch.unnamed.map((e) => e.event);
      const resolved = resolveAgents(events, await new IngestTransaction(client).findAssignments(customersToResolve(events)));
      const byIndex = new Map(batch.unnamed.map((e) => [e.event.index, e]));
      for (const e of resolved.errors) {
        const ev = byIndex.get(e.index!)!;
        rejects.push({ line: ev.line, reasons: [reasonOf(e)], message: `${e.field}: ${e.message}`, original: ev.raw });
      }
      staged += resolved.events.length;
      // The first copy of an event_id is the one written (the others are identical: duplicates).
      const seen = new Set<string>();
      copyText.push(resolved.events.filter((e) => !seen.has(e.eventId) && seen.add(e.eventId) !== undefined).map((e) => `${copyLine(e)}\n`).join(''));
    }
    const accepted = await loadEvents(client, copyText, gate);
    // The server has every byte of the COPY: its buffer goes back to the parsing thread.
    batch.release();
    const progress = { read: batch.read, accepted, rejected: rejects.length, duplicate: staged - accepted, committedRows: batch.last };
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

/**
 * Bytes read from S3 between two collections of the young generation: each socket read is a
 * fresh buffer of up to 64 KiB outside the V8 heap, freed only when a collection finds its
 * wrapper dead, and neither reader allocates enough on the heap to cause one soon; without
 * them the dead buffers of a 32 MiB object piled up to tens of MiB of RSS and the peak grew
 * with the file (core/runtime/young-gc.ts; BENCHMARKS.md, File drops).
 */
const BYTES_PER_COLLECTION = 4 * 1024 * 1024;

/**
 * The object's body (this very version: a replaced object is a new file, not a mix of two),
 * with a young-generation collection every BYTES_PER_COLLECTION read: the one place both
 * readers (the SHA-256 pass, the feed to the parsing thread) get the object from.
 */
async function getObject(s3: S3Client, row: LedgerRow, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
  const versioned = row.version !== row.etag;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: row.bucket, Key: row.key, ...(versioned ? { VersionId: row.version } : { IfMatch: row.etag }) }), { abortSignal: signal });
    return collectingEvery(out.Body as AsyncIterable<Uint8Array> & { destroy?: () => void }, BYTES_PER_COLLECTION);
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
