import type { IncomingHttpHeaders } from 'node:http';
import { eventsOf } from './body.js';
import { customersToResolve, enrich, fingerprint, requestContext, resolveAgents, type EnrichedEvent, type StagedEvent } from './enrichment.js';
import type { IngestApiMetrics } from './metrics.js';
import type { IngestRepository } from './repository.js';
import type { EventResult, FieldError, IngestResponse } from './responses.js';
import { conflictingDuplicates, validateEvent } from './validation.js';

/** What POST /events came to; the routes turn it into a status and a body. */
export type IngestOutcome =
  | { kind: 'invalid_shape'; message: string }
  | { kind: 'too_many_events'; message: string }
  | { kind: 'invalid'; errors: FieldError[] }
  | { kind: 'stored'; response: IngestResponse };

export interface IngestOptions {
  baseCurrency: string;
  maxBatchEvents: number;
}

/**
 * One request's way in: shape, validation of every event (all-or-nothing: one bad
 * event and nothing is stored), enrichment, agent resolution, then one transaction with
 * one INSERT ... ON CONFLICT (event_id) DO NOTHING. Repeats of an event_id, in the batch
 * or already stored, are reported as duplicates and stored once.
 */
export class IngestService {
  constructor(
    private readonly repository: IngestRepository,
    private readonly options: IngestOptions,
    private readonly metrics: IngestApiMetrics,
  ) {}

  async ingest(body: unknown, headers: IncomingHttpHeaders, receivedAt: Date): Promise<IngestOutcome> {
    const shape = eventsOf(body);
    if ('problem' in shape) return { kind: 'invalid_shape', message: shape.problem };
    const raw = shape.events;
    if (raw.length > this.options.maxBatchEvents) {
      return { kind: 'too_many_events', message: `the batch holds ${raw.length} events; at most ${this.options.maxBatchEvents} per request` };
    }

    const { context, errors } = requestContext(headers, receivedAt);
    const events: EnrichedEvent[] = [];
    raw.forEach((event, index) => {
      const verdict = validateEvent(event, index, { baseCurrency: this.options.baseCurrency, receivedAtMicros: context.receivedAt.micros });
      if (verdict.ok) events.push(enrich(verdict.event, index, context));
      else errors.push(...verdict.errors);
    });
    errors.push(...conflictingDuplicates(events.map((e) => ({ index: e.index, eventId: e.eventId, fingerprint: fingerprint(e) }))));
    if (errors.length > 0) return this.rejected(errors, raw.length);

    const started = performance.now();
    const stored = await this.repository.transaction(async (tx) => {
      const customers = customersToResolve(events);
      const resolved = resolveAgents(events, customers.length > 0 ? await tx.findAssignments(customers) : new Map());
      if (resolved.errors.length > 0) return { kind: 'unresolved' as const, errors: resolved.errors };
      const unique = firstOfEachEventId(resolved.events);
      const inserted = await tx.insertEvents(unique, context.receivedAt.iso);
      const repeated = unique.filter((e) => !inserted.has(e.eventId)).map((e) => e.eventId);
      const storedAgents = repeated.length > 0 ? await tx.storedAgents(repeated) : new Map<string, string>();
      return { kind: 'stored' as const, events: resolved.events, inserted, storedAgents };
    });
    this.metrics.insertSeconds.observe((performance.now() - started) / 1000);
    if (stored.kind === 'unresolved') return this.rejected(stored.errors, raw.length);

    const credited = new Map<string, string>();
    const results: EventResult[] = [];
    for (const e of stored.events) {
      const first = !credited.has(e.eventId);
      const status = first && stored.inserted.has(e.eventId) ? 'inserted' : 'duplicate';
      // A duplicate reports the agent of the row stored first (it may predate a reassignment).
      if (first) credited.set(e.eventId, status === 'inserted' ? e.agentId : (stored.storedAgents.get(e.eventId) ?? e.agentId));
      results.push({ event_id: e.eventId, status, agent_id: credited.get(e.eventId)! });
    }
    const inserted = results.filter((r) => r.status === 'inserted').length;
    this.metrics.counted('inserted', inserted);
    this.metrics.counted('duplicate', results.length - inserted);
    return { kind: 'stored', response: { results, inserted, duplicates: results.length - inserted, received_at: context.receivedAt.iso } };
  }

  private rejected(errors: FieldError[], events: number): IngestOutcome {
    this.metrics.counted('rejected', events);
    return { kind: 'invalid', errors: [...errors].sort((a, b) => (a.index ?? -1) - (b.index ?? -1)) };
  }
}

function firstOfEachEventId(events: readonly StagedEvent[]): StagedEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    if (seen.has(e.eventId)) return false;
    seen.add(e.eventId);
    return true;
  });
}
