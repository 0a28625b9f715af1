import { Counter, Gauge, Histogram, type Registry } from '../core/metrics/metrics.js';

/** `sluice files`' Prometheus metrics. */
export class FilesMetrics {
  readonly files: Counter<'source' | 'status'>;
  readonly rows: Counter<'source' | 'outcome'>;
  readonly bytes: Counter<'source'>;
  readonly oldestUnprocessed: Gauge<'source'>;
  readonly fileSeconds: Histogram<'source'>;
  readonly notifications: Counter<'channel' | 'outcome'>;
  readonly dlq: Counter<'source'>;
  readonly parseThreadHeap: Gauge<'kind'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.files = new Counter({ name: 'sluice_files_total', help: 'files finished, by source and status: succeeded, failed, duplicate', labelNames: ['source', 'status'], registers });
    this.rows = new Counter({ name: 'sluice_files_rows_total', help: 'data rows of files, by source and outcome: accepted (new in staging), duplicate (event_id already stored), rejected', labelNames: ['source', 'outcome'], registers });
    this.bytes = new Counter({ name: 'sluice_files_bytes_total', help: 'bytes of files read (as stored: compressed when gzipped)', labelNames: ['source'], registers });
    this.oldestUnprocessed = new Gauge({ name: 'sluice_files_oldest_unprocessed_seconds', help: 'age (since its last modification) of the oldest object under incoming/<source>/ not yet processed, at the last listing; 0 when none waits', labelNames: ['source'], registers });
    this.fileSeconds = new Histogram({ name: 'sluice_files_file_seconds', help: 'time to ingest one file, from its first row to its receipt', labelNames: ['source'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers });
    this.notifications = new Counter({ name: 'sluice_files_notifications_total', help: 'notifications of failed files or high reject rates, by channel (email, webhook) and outcome (sent, failed)', labelNames: ['channel', 'outcome'], registers });
    this.parseThreadHeap = new Gauge({
      name: 'sluice_files_parse_thread_heap_bytes',
      help: "V8 heap of the file parsing thread (its own heap: not in nodejs_heap_*), reported every second while a file is read and at its end (between files: the last report), by kind: used (live and not yet collected), total (reserved by V8), new_space (the young generation reserved), external (memory outside the heap held by its objects: buffers)",
      labelNames: ['kind'],
      registers,
    });
    this.dlq = new Counter({ name: 'sluice_files_dead_letters_total', help: 'rejected rows written to the DLQ topic', labelNames: ['source'], registers });
  }
}
