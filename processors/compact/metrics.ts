import { Counter, Gauge, Histogram, type Registry } from '../core/metrics/metrics.js';
import type { PartitionOutcome } from './compactor.js';

/** `sluice compact --schedule`'s Prometheus metrics (served on --http-port). */
export class CompactMetrics {
  readonly partitions: Counter<'outcome'>;
  readonly objects: Counter<'direction'>;
  readonly bytes: Counter<'direction'>;
  readonly rows: Counter;
  readonly runSeconds: Histogram;
  readonly runs: Counter<'outcome'>;
  readonly lastSuccess: Gauge;
  readonly uncommitted: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.partitions = new Counter({
      name: 'sluice_compact_partitions_total',
      help: 'lake partitions visited, by outcome: compacted, nothing_to_do, open (not closed yet), rolled_back / finished (a crashed run\'s journal recovered), failed',
      labelNames: ['outcome'],
      registers,
    });
    this.objects = new Counter({ name: 'sluice_compact_objects_total', help: 'objects compaction read (direction=in, deleted after the swap) and wrote (out)', labelNames: ['direction'], registers });
    this.bytes = new Counter({ name: 'sluice_compact_bytes_total', help: 'bytes compaction read (in) and wrote (out): out / export bytes is its write amplification', labelNames: ['direction'], registers });
    this.rows = new Counter({ name: 'sluice_compact_rows_total', help: 'rows written into compacted files', registers });
    this.runSeconds = new Histogram({ name: 'sluice_compact_run_seconds', help: 'duration of a compaction run over every closed partition', buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200], registers });
    this.runs = new Counter({ name: 'sluice_compact_runs_total', help: 'compaction runs, by outcome: ok, partial (some partitions failed), failed (the run itself failed)', labelNames: ['outcome'], registers });
    this.lastSuccess = new Gauge({ name: 'sluice_compact_last_success_timestamp_seconds', help: 'end of the last run in which no partition failed (unix seconds)', registers });
    this.uncommitted = new Gauge({ name: 'sluice_compact_uncommitted_files', help: 'files of closed partitions left at the last run because the export has not committed past them', registers });
  }

  /** One run's outcomes. */
  record(outcomes: readonly PartitionOutcome[], failed: number, seconds: number): void {
    for (const x of outcomes) {
      if (x.recovered !== 'none') this.partitions.inc({ outcome: x.recovered });
      this.partitions.inc({ outcome: x.skipped ?? 'compacted' });
      if (!x.skipped) {
        this.objects.inc({ direction: 'in' }, x.inputs);
        this.objects.inc({ direction: 'out' }, x.outputs);
        this.bytes.inc({ direction: 'in' }, x.inputBytes);
        this.bytes.inc({ direction: 'out' }, x.outputBytes);
        this.rows.inc(x.rows);
      }
    }
    if (failed > 0) this.partitions.inc({ outcome: 'failed' }, failed);
    this.uncommitted.set(outcomes.reduce((n, x) => n + x.uncommitted, 0));
    this.runSeconds.observe(seconds);
    this.runs.inc({ outcome: failed > 0 ? 'partial' : 'ok' });
    if (failed === 0) this.lastSuccess.set(Date.now() / 1000);
  }
}
