import { Counter, Gauge, Histogram, type Registry } from '../core/metrics/metrics.js';

/** sluice_live_* metrics (the state store's own are core/state/metrics.ts). */
export class LiveMetrics {
  readonly events: Counter<'outcome'>;
  readonly lateOutsideWindow: Counter<'month'>;
  readonly deadLetters: Counter<'reason'>;
  readonly transactions: Counter<'outcome'>;
  readonly batchSeconds: Histogram;
  readonly lag: Gauge<'partition'>;
  readonly viewRows: Gauge;
  readonly streams: Gauge;
  readonly api: Histogram<'route' | 'status'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({ name: 'sluice_live_events_total', help: 'events consumed, by outcome: counted, duplicate (event_id already counted), late_outside_window, dead_letter', labelNames: ['outcome'], registers });
    this.lateOutsideWindow = new Counter({
      name: 'sluice_live_late_outside_window_total',
      help: 'events of a month outside the open window (SLUICE_LIVE_OPEN_MONTHS): not counted live (the batch report counts them from the lake); by month',
      labelNames: ['month'],
      registers,
    });
    this.deadLetters = new Counter({ name: 'sluice_live_dead_letters_total', help: 'events sent to the DLQ topic, by reason', labelNames: ['reason'], registers });
    this.transactions = new Counter({ name: 'sluice_live_transactions_failed_total', help: 'transactions that failed and were retried: aborted, or the producer reset', labelNames: ['outcome'], registers });
    this.batchSeconds = new Histogram({ name: 'sluice_live_transaction_seconds', help: 'time to process and commit one transaction', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.lag = new Gauge({ name: 'sluice_live_lag_records', help: 'records of the events topic not yet processed, per partition', labelNames: ['partition'], registers });
    this.viewRows = new Gauge({ name: 'sluice_live_view_agent_months', help: 'agent-months in the API view (read from agent-commissions.live)', registers });
    this.streams = new Gauge({ name: 'sluice_live_sse_streams', help: 'open SSE streams', registers });
    this.api = new Histogram({ name: 'sluice_live_api_seconds', help: '/live API requests, by route and status', labelNames: ['route', 'status'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers });
  }
}
