import { Counter, Gauge, Histogram, type Registry } from '../core/metrics/metrics.js';
import type { ChunkStats } from './transform.js';

/** The normalizer's Prometheus metrics; counts move only when a transaction has committed. */
export class NormalizerMetrics {
  readonly records: Counter<'op'>;
  readonly events: Counter<'event_type'>;
  readonly deadLetters: Counter<'reason'>;
  readonly ignored: Counter<'kind'>;
  readonly duplicates: Counter<'kind'>;
  readonly beyondWindow: Counter<'kind'>;
  readonly transactions: Counter<'outcome'>;
  readonly batchSeconds: Histogram;
  readonly lag: Gauge<'topic' | 'partition'>;
  readonly lagSeconds: Gauge<'topic' | 'partition'>;
  readonly lastCommit: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.records = new Counter({ name: 'sluice_normalizer_records_total', help: 'CDC records consumed and committed, by change kind (c, r, u, d, t, m, tombstone, heartbeat, unparseable)', labelNames: ['op'], registers });
    this.events = new Counter({ name: 'sluice_normalizer_events_total', help: 'Avro events written to the events topic, by event type', labelNames: ['event_type'], registers });
    this.deadLetters = new Counter({ name: 'sluice_normalizer_dead_letters_total', help: 'records written to the DLQ, by reason code', labelNames: ['reason'], registers });
    this.ignored = new Counter({ name: 'sluice_normalizer_ignored_total', help: 'records ignored by design (delete, tombstone, heartbeat, truncate, message)', labelNames: ['kind'], registers });
    this.duplicates = new Counter({ name: 'sluice_normalizer_duplicates_total', help: 'copies of an event_id already emitted within the dedupe window, not emitted again, by kind (insert, snapshot)', labelNames: ['kind'], registers });
    this.beyondWindow = new Counter({
      name: 'sluice_normalizer_beyond_dedupe_window_total',
      help: 'events emitted whose received_at is older than the dedupe window: possible copies of events the state has forgotten (sluice compact removes those from the lake), by kind',
      labelNames: ['kind'],
      registers,
    });
    this.transactions = new Counter({ name: 'sluice_normalizer_transactions_total', help: 'transactions by outcome: committed, aborted (retried), reset (producer re-initialised)', labelNames: ['outcome'], registers });
    this.batchSeconds = new Histogram({
      name: 'sluice_normalizer_batch_seconds',
      help: 'time to route, produce and commit one transaction of CDC records',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.lag = new Gauge({ name: 'sluice_normalizer_consumer_lag', help: 'records behind the high watermark after the last batch, per CDC partition', labelNames: ['topic', 'partition'], registers });
    this.lagSeconds = new Gauge({
      name: 'sluice_normalizer_consumer_lag_seconds',
      help: 'how old the last committed CDC record is while records still wait behind it (0 when caught up), per CDC partition',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.lastCommit = new Gauge({ name: 'sluice_normalizer_last_commit_timestamp_seconds', help: 'when the last transaction committed (unix seconds)', registers });
  }

  lagged(labels: { topic: string; partition: string }, lag: number, lastTimestampMs: number, now = Date.now()): void {
    this.lag.set(labels, lag);
    this.lagSeconds.set(labels, lag > 0 && Number.isFinite(lastTimestampMs) ? Math.max(0, (now - lastTimestampMs) / 1000) : 0);
  }

  committed(stats: ChunkStats, seconds: number): void {
    for (const [op, n] of Object.entries(stats.records)) this.records.inc({ op }, n);
    for (const [event_type, n] of Object.entries(stats.events)) this.events.inc({ event_type }, n);
    for (const [reason, n] of Object.entries(stats.deadLetters)) this.deadLetters.inc({ reason }, n);
    for (const [kind, n] of Object.entries(stats.ignored)) this.ignored.inc({ kind }, n);
    for (const [kind, n] of Object.entries(stats.duplicates)) this.duplicates.inc({ kind }, n);
    for (const [kind, n] of Object.entries(stats.beyondWindow)) this.beyondWindow.inc({ kind }, n);
    this.transactions.inc({ outcome: 'committed' });
    this.batchSeconds.observe(seconds);
    this.lastCommit.set(Date.now() / 1000);
  }
}
