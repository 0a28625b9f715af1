import { Counter, Gauge, Histogram, type Registry } from '../core/metrics/metrics.js';

/**
 * The export runner's Prometheus metrics, labelled by pipeline. Records count when they
 * are consumed (in) and when the flush holding them has committed (out, dlq, dropped), so
 * `out + dlq + dropped` catches up with `in` at every commit.
 */
export class ExportMetrics {
  readonly recordsIn: Counter<'pipeline'>;
  readonly recordsOut: Counter<'pipeline'>;
  readonly recordsDlq: Counter<'pipeline' | 'reason'>;
  readonly recordsDropped: Counter<'pipeline' | 'processor'>;
  readonly files: Counter<'pipeline'>;
  readonly uploadBytes: Counter<'pipeline'>;
  readonly uploadFailures: Counter<'pipeline'>;
  readonly batchRecords: Histogram<'pipeline'>;
  readonly flushSeconds: Histogram<'pipeline'>;
  readonly lag: Gauge<'pipeline' | 'topic' | 'partition'>;
  readonly lagSeconds: Gauge<'pipeline' | 'topic' | 'partition'>;
  readonly lastCommit: Gauge<'pipeline'>;
  readonly rebalances: Counter<'pipeline'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.recordsIn = new Counter({ name: 'sluice_export_records_in_total', help: 'records consumed from the input', labelNames: ['pipeline'], registers });
    this.recordsOut = new Counter({ name: 'sluice_export_records_out_total', help: 'records written to S3 and committed', labelNames: ['pipeline'], registers });
    this.recordsDlq = new Counter({ name: 'sluice_export_records_dlq_total', help: 'records sent to the DLQ and committed, by reason', labelNames: ['pipeline', 'reason'], registers });
    this.recordsDropped = new Counter({ name: 'sluice_export_records_dropped_total', help: 'records dropped by a filter or dedupe and committed, by processor label', labelNames: ['pipeline', 'processor'], registers });
    this.files = new Counter({ name: 'sluice_export_files_written_total', help: 'objects written to S3', labelNames: ['pipeline'], registers });
    this.uploadBytes = new Counter({ name: 'sluice_export_upload_bytes_total', help: 'bytes written to S3', labelNames: ['pipeline'], registers });
    this.uploadFailures = new Counter({ name: 'sluice_export_upload_failures_total', help: 'failed S3 upload attempts (each retried)', labelNames: ['pipeline'], registers });
    this.batchRecords = new Histogram({
      name: 'sluice_export_batch_records',
      help: 'records per flush (all files of one partition)',
      labelNames: ['pipeline'],
      buckets: [1, 10, 100, 1000, 5000, 10000, 25000, 50000, 100000, 250000],
      registers,
    });
    this.flushSeconds = new Histogram({
      name: 'sluice_export_flush_seconds',
      help: 'time to encode, upload and commit one flush',
      labelNames: ['pipeline'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.lag = new Gauge({ name: 'sluice_export_consumer_lag', help: 'records behind the high watermark (not yet committed), per partition', labelNames: ['pipeline', 'topic', 'partition'], registers });
    this.lagSeconds = new Gauge({
      name: 'sluice_export_consumer_lag_seconds',
      help: 'age of the oldest record not committed yet (0 when caught up), per partition: what `sluice lag` prints as LAG SECONDS',
      labelNames: ['pipeline', 'topic', 'partition'],
      registers,
    });
    this.lastCommit = new Gauge({ name: 'sluice_export_last_commit_timestamp_seconds', help: 'when the last flush committed (unix seconds)', labelNames: ['pipeline'], registers });
    this.rebalances = new Counter({ name: 'sluice_export_rebalances_total', help: 'consumer group rebalances this runner went through', labelNames: ['pipeline'], registers });
  }
}
