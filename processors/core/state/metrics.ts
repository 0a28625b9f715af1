import { Counter, Gauge, Histogram, type Registry } from '../metrics/metrics.js';

/** Prometheus metrics of the state stores (label `store`: the store's name, e.g. dedupe). */
export class StateMetrics {
  readonly restoreSeconds: Histogram<'store' | 'kind'>;
  readonly restoredRecords: Counter<'store'>;
  readonly lastRestoreSeconds: Gauge<'store' | 'partition'>;
  readonly entries: Gauge<'store' | 'partition'>;
  readonly expired: Counter<'store'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.restoreSeconds = new Histogram({
      name: 'sluice_state_restore_seconds',
      help: 'time to make a partition store current from its changelog on assignment, by kind: full (no usable local store) or catch-up (local store reused)',
      labelNames: ['store', 'kind'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.restoredRecords = new Counter({ name: 'sluice_state_restored_records_total', help: 'changelog records applied to local stores while restoring', labelNames: ['store'], registers });
    this.lastRestoreSeconds = new Gauge({ name: 'sluice_state_last_restore_seconds', help: 'duration of the last restore of each partition store', labelNames: ['store', 'partition'], registers });
    this.entries = new Gauge({ name: 'sluice_state_entries', help: 'entries in each open partition store', labelNames: ['store', 'partition'], registers });
    this.expired = new Counter({ name: 'sluice_state_expired_total', help: 'entries removed because their window passed (a tombstone each in the changelog)', labelNames: ['store'], registers });
  }
}
