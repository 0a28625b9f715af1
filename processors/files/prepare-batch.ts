import { enrich, fingerprint, type EnrichedEvent, type RequestContext, type StagedEvent } from '../ingest-api/enrichment.js';
import { validateEvent } from '../ingest-api/validation.js';
import type { Reject } from './ledger.js';
import { reasonOf } from './reasons.js';
import type { FileRecord } from './records.js';
import { copyLine } from './staging-load.js';

/**
 * One batch of a file's records, validated and enriched by the ingest API's own modules
 * (one validation, the same error codes), with no database involved: it runs on the
 * parsing thread. Rows that name their agent leave as COPY text, ready for the staging
 * load; rows that name none wait for their customer's assignment (a database lookup, on
 * the thread that holds the transaction) as events.
 */

export interface FileEvent {
  event: EnrichedEvent;
  line: number;
  raw: string;
}

export interface PreparedBatch {
  /**
   * The valid rows that name their agent: COPY text (UTF-8) of each event_id's first copy.
   * Bytes that own their buffer, so they move to the writing thread without a copy and
   * leave no large string behind on either heap (a string that size lives in V8's old
   * space until a full collection: one per batch made the heap grow with the file).
   */
  named: { copyText: Uint8Array; rows: number };
  /** The valid rows that name no agent (resolved from the customer's assignment at write time). */
  unnamed: FileEvent[];
  rejects: Reject[];
  /** Records of the file in the batch (rows and bad records). */
  read: number;
  /** The ledger's offset once the batch is committed. */
  last: number;
}

export interface PrepareOptions {
  baseCurrency: string;
  context: RequestContext;
}

/**
 * A batch built record by record: each row is validated, enriched and written as COPY text
 * as it comes, so a batch keeps no parsed records (on a million rows, records held until
 * their batch is full survive into V8's old space and make the heap grow with the file).
 * What it keeps per row is the COPY line of each event_id's first copy, to tell a later
 * identical copy (a duplicate) from one with other content (conflicting_duplicate).
 */
export class BatchBuilder {
  private readonly rejects: Reject[] = [];
  private readonly unnamed: FileEvent[] = [];
  private readonly copyText: CopyText;
  /** The content of each event_id's first valid copy in the batch. */
  private readonly first = new Map<string, { content: string; line: number }>();
  private rows = 0;
  read = 0;
  private last = 0;
  private readonly validation: { baseCurrency: string; receivedAtMicros: bigint };

  /** `buffer`: a used COPY text buffer to fill again. */
  constructor(
    private readonly options: PrepareOptions,
    buffer?: ArrayBuffer,
  ) {
    this.copyText = new CopyText(buffer);
    this.validation = { baseCurrency: options.baseCurrency, receivedAtMicros: options.context.receivedAt.micros };
  }

  add(r: FileRecord): void {
    this.read++;
    this.last = r.index + 1;
    if (r.kind === 'bad') {
      this.rejects.push({ line: r.line, reasons: [r.reason], message: r.message, original: r.raw });
      return;
    }
    const verdict = validateEvent(r.fields, r.index, this.validation);
    if (!verdict.ok) {
      this.rejects.push({ line: r.line, reasons: [...new Set(verdict.errors.map(reasonOf))], message: verdict.errors.map((e) => `${e.field}: ${e.message}`).join('; '), original: r.raw });
      return;
    }
    const event = enrich(verdict.event, r.index, this.options.context);
    // The agent is part of the content: one event_id is never both a named and an unnamed row.
    const content = event.agentId === null ? fingerprint(event) : copyLine(event as StagedEvent);
    const seen = this.first.get(event.eventId);
    if (seen) {
      if (seen.content !== content) {
        this.rejects.push({ line: r.line, reasons: ['conflicting_duplicate'], message: `event_id ${event.eventId} appears earlier in the file (line ${seen.line}) with different content`, original: r.raw });
        return;
      }
    } else this.first.set(event.eventId, { content, line: r.line });
    if (event.agentId === null) {
      // Its agent comes from the customer's assignment at write time; identical copies are dropped there.
      this.unnamed.push({ event, line: r.line, raw: r.raw });
      return;
    }
    this.rows++;
    // A later identical copy is a duplicate (counted, not written twice).
    if (!seen) this.copyText.line(content);
  }

  finish(): PreparedBatch {
    return { named: { copyText: this.copyText.bytes(), rows: this.rows }, unnamed: this.unnamed, rejects: this.rejects, read: this.read, last: this.last };
  }
}

/** Lines of COPY text written as UTF-8 into one growing buffer of its own (not Node's shared pool). */
class CopyText {
  private buffer: Buffer;
  private length = 0;

  constructor(reuse?: ArrayBuffer) {
    this.buffer = reuse && reuse.byteLength > 0 ? Buffer.from(reuse) : Buffer.allocUnsafeSlow(256 * 1024);
  }

  line(text: string): void {
    const most = text.length * 3 + 1;
    if (this.length + most > this.buffer.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.length + most));
      this.buffer.copy(bigger, 0, 0, this.length);
      this.buffer = bigger;
    }
    this.length += this.buffer.write(text, this.length, 'utf8');
    this.buffer[this.length++] = 0x0a;
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
