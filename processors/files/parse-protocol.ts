import type { RequestContext } from '../ingest-api/enrichment.js';
import type { PreparedBatch } from './prepare-batch.js';
import type { FileFailureReason } from './reasons.js';
import type { FileSource } from './settings.js';

/**
 * The messages between a file's ingest (the thread that reads S3 and writes Postgres) and
 * its parsing thread (gunzip, UTF-8, CSV / JSON lines, validation and enrichment). Both
 * directions are bounded: the parsing thread asks for each chunk of the object it takes
 * (a few are in flight), and stops after a few batches the writer has not taken yet.
 */

/** What the parsing thread is started with (workerData). */
export interface ParseJob {
  source: FileSource;
  maxRecordBytes: number;
  batchRows: number;
  /** Records before this index were committed by an earlier attempt: read, not prepared. */
  skipRecords: number;
  baseCurrency: string;
  context: RequestContext;
  /** Prepared batches the writer has not taken yet before the parsing thread waits. */
  batchesAhead: number;
}

export type ToParser =
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'end' }
  /** The writer took a batch. */
  | { type: 'taken' }
  /** A batch's COPY text buffer, written: the parser fills it again (no new buffer, no garbage per batch). */
  | { type: 'recycle'; buffer: ArrayBuffer };

/** The parsing thread's V8 heap (v8.getHeapStatistics), in bytes. */
export interface ThreadHeap {
  used: number;
  total: number;
  new_space: number;
  external: number;
}

export type FromParser =
  /** Took a chunk off its queue: one more may be sent. */
  | { type: 'pull' }
  /** Its heap, every HEAP_REPORT_MS while it works. */
  | { type: 'heap'; heap: ThreadHeap }
  | { type: 'batch'; batch: PreparedBatch }
  | { type: 'done'; uncompressed: number }
  /** The file is bad (after the batch of the records before the failure). */
  | { type: 'failed'; reason: FileFailureReason; message: string; line?: number; uncompressed: number }
  /** A fault of the thread itself (not of the file). */
  | { type: 'crashed'; message: string; stack?: string };
