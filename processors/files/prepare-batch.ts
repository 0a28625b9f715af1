import { enrich, fingerprint, type EnrichedEvent, type RequestContext, type StagedEvent } from '../ingest-api/enrichment.js';
import { conflictingDuplicates, validateEvent } from '../ingest-api/validation.js';
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
  /** The valid rows that name their agent: COPY text of each event_id's first copy. */
  named: { copyText: string; rows: number };
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

export function prepareBatch(records: readonly FileRecord[], options: PrepareOptions): PreparedBatch {
  const { context } = options;
  const rejects: Reject[] = [];
  const events: FileEvent[] = [];
  const validation = { baseCurrency: options.baseCurrency, receivedAtMicros: context.receivedAt.micros };
  for (const r of records) {
    if (r.kind === 'bad') {
      rejects.push({ line: r.line, reasons: [r.reason], message: r.message, original: r.raw });
      continue;
    }
    const verdict = validateEvent(r.fields, r.index, validation);
    if (verdict.ok) events.push({ event: enrich(verdict.event, r.index, context), line: r.line, raw: r.raw });
    else rejects.push({ line: r.line, reasons: [...new Set(verdict.errors.map(reasonOf))], message: verdict.errors.map((e) => `${e.field}: ${e.message}`).join('; '), original: r.raw });
  }
  // The same event_id twice in the batch with other content: the later copies are rejected.
  // Only ids seen more than once can conflict, so only those are fingerprinted. The agent is
  // part of the content, so one event_id is never both a named and an unnamed row here.
  const seen = new Map<string, number>();
  for (const { event } of events) seen.set(event.eventId, (seen.get(event.eventId) ?? 0) + 1);
  const repeated = events.filter(({ event }) => seen.get(event.eventId)! > 1);
  const conflicts = new Set(conflictingDuplicates(repeated.map(({ event }) => ({ index: event.index, eventId: event.eventId, fingerprint: fingerprint(event) }))).map((e) => e.index));
  let copyText = '';
  let rows = 0;
  const written = new Set<string>();
  const unnamed: FileEvent[] = [];
  for (const e of events) {
    if (conflicts.has(e.event.index)) {
      rejects.push({ line: e.line, reasons: ['conflicting_duplicate'], message: `event_id ${e.event.eventId} appears earlier in the file with different content`, original: e.raw });
      continue;
    }
    if (e.event.agentId === null) {
      unnamed.push(e);
      continue;
    }
    rows++;
    // A later identical copy is a duplicate (counted, not written twice).
    if (seen.get(e.event.eventId)! > 1) {
      if (written.has(e.event.eventId)) continue;
      written.add(e.event.eventId);
    }
    copyText += `${copyLine(e.event as StagedEvent)}\n`;
  }
  return { named: { copyText, rows }, unnamed, rejects, read: records.length, last: records[records.length - 1]!.index + 1 };
}
