import { Counter, Histogram, type Registry } from '../core/metrics/metrics.js';

/** The report processor's and REST shim's Prometheus metrics. */
export class ReportsMetrics {
  readonly requests: Counter<'outcome'>;
  readonly seconds: Histogram;
  readonly notifications: Counter<'channel' | 'outcome'>;
  readonly api: Histogram<'route' | 'status'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'sluice_reports_requests_total', help: 'report requests handled, by outcome: succeeded, failed, answered_from_result, dead_letter', labelNames: ['outcome'], registers });
    this.seconds = new Histogram({ name: 'sluice_reports_generation_seconds', help: 'time to read the lake, compute and write one report', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers });
    this.notifications = new Counter({ name: 'sluice_reports_notifications_total', help: 'notifications, by channel (email, webhook) and outcome (sent, failed)', labelNames: ['channel', 'outcome'], registers });
    this.api = new Histogram({
      name: 'sluice_reports_api_seconds',
      help: 'REST shim answer time, by route and status',
      labelNames: ['route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
  }
}
