import { enrich, fingerprint, type EnrichedEvent, type RequestContext, type StagedEvent } from '../ingest-api/enrichment.js';
import { validateEvent } from '../ingest-api/validation.js';
import type { Reject } from './ledger.js';
import { reasonOf } from './reasons.js';
import type { FileRecord } from './records.js';
import { FirstCopies } from './first-copies.js';
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
 * To tell a later identical copy of an event_id (a duplicate) from one with other content
 * (conflicting_duplicate), the first copy of a row that names its agent is found again in
 * the COPY text itself (first-copies.ts: no string kept per row); only rows that name no
 * agent, kept whole until their agent is resolved anyway, are remembered by their content.
 */
export class BatchBuilder {
  private readonly rejects: Reject[] = [];
  private readonly unnamed: FileEvent[] = [];
  private readonly copyText: CopyText;
  /** Where each event_id's first valid copy that names its agent is, in the COPY text. */
  private readonly firstNamed: FirstCopies;
  /** The content of each event_id's first valid copy that names no agent. */
  private readonly firstUnnamed = new Map<string, { content: string; line: number }>();
  private rows = 0;
  read = 0;
  private last = 0;
  private readonly validation: { baseCurrency: string; receivedAtMicros: bigint };

  /** `buffer`: a used COPY text buffer to fill again; `firstCopies`: the index of the previous batch (finished), to reuse. */
  constructor(
    private readonly options: PrepareOptions,
    buffer?: ArrayBuffer,
    firstCopies = new FirstCopies(),
  ) {
    this.copyText = new CopyText(buffer);
    this.firstNamed = firstCopies;
    firstCopies.reset();
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
    const named = event.agentId !== null;
    const content = named ? copyLine(event as StagedEvent) : fingerprint(event);
    const earlier = this.earlierCopy(event.eventId, content, named);
    if (earlier?.same === false) {
      this.rejects.push({ line: r.line, reasons: ['conflicting_duplicate'], message: `event_id ${event.eventId} appears earlier in the file (line ${earlier.line}) with different content`, original: r.raw });
      return;
    }
    if (!named) {
      if (!earlier) this.firstUnnamed.set(event.eventId, { content, line: r.line });
      // Its agent comes from the customer's assignment at write time; identical copies are dropped there.
      this.unnamed.push({ event, line: r.line, raw: r.raw });
      return;
    }
    this.rows++;
    // A later identical copy is a duplicate (counted, not written twice).
    if (!earlier) {
      const { start, end } = this.copyText.line(content);
      this.firstNamed.add(event.eventId, start, end, r.line);
    }
  }

  /** The batch's earlier copy of `eventId`, if any: its line in the file and whether its content is the same (a named and an unnamed copy never are). */
  private earlierCopy(eventId: string, content: string, named: boolean): { line: number; same: boolean } | undefined {
    const row = this.firstNamed.find(eventId, this.copyText.buffer);
    if (row >= 0) return { line: this.firstNamed.fileLine(row), same: named && this.firstNamed.sameLine(row, this.copyText.buffer, content) };
    const unnamed = this.firstUnnamed.size > 0 ? this.firstUnnamed.get(eventId) : undefined;
    return unnamed && { line: unnamed.line, same: !named && unnamed.content === content };
  }

  finish(): PreparedBatch {
    return { named: { copyText: this.copyText.bytes(), rows: this.rows }, unnamed: this.unnamed, rejects: this.rejects, read: this.read, last: this.last };
  }
}

/** Lines of COPY text written as UTF-8 into one growing buffer of its own (not Node's shared pool). */
class CopyText {
  buffer: Buffer;
  private length = 0;

  constructor(reuse?: ArrayBuffer) {
    this.buffer = reuse && reuse.byteLength > 0 ? Buffer.from(reuse) : Buffer.allocUnsafeSlow(256 * 1024);
  }

  /** Appends `text` and a line feed; where the text is, in bytes. */
  line(text: string): { start: number; end: number } {
    const most = text.length * 3 + 1;
    if (this.length + most > this.buffer.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.length + most));
      this.buffer.copy(bigger, 0, 0, this.length);
      this.buffer = bigger;
    }
    const start = this.length;
    this.length += this.buffer.write(text, this.length, 'utf8');
    const end = this.length;
    this.buffer[this.length++] = 0x0a;
    return { start, end };
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
