import { Counter, Histogram, type Registry } from '../core/metrics/metrics.js';

export type EventOutcome = 'inserted' | 'duplicate' | 'rejected';

/** The ingest API's Prometheus metrics. */
export class IngestApiMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestSeconds: Histogram<'method' | 'route'>;
  readonly events: Counter<'outcome'>;
  readonly insertSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'sluice_ingest_api_requests_total',
      help: 'HTTP requests answered, by method, route template (unmatched for a 404) and status code',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'sluice_ingest_api_request_seconds',
      help: 'time from request to response, by method and route template',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.events = new Counter({
      name: 'sluice_ingest_api_events_total',
      help: 'events by outcome: inserted (new row), duplicate (event_id already stored or repeated in the batch), rejected (in a request refused with 422, which stores none)',
      labelNames: ['outcome'],
      registers,
    });
    this.insertSeconds = new Histogram({
      name: 'sluice_ingest_api_insert_seconds',
      help: 'time of one ingest transaction: agent lookup, the multi-row INSERT and the commit',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    for (const outcome of ['inserted', 'duplicate', 'rejected'] satisfies EventOutcome[]) this.events.inc({ outcome }, 0);
  }

  counted(outcome: EventOutcome, n: number): void {
    if (n > 0) this.events.inc({ outcome }, n);
  }
}
