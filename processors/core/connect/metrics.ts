import { Counter, Gauge, type Registry } from '../metrics/metrics.js';
import type { ConnectorAssessment, ConnectorSample, ConnectorTargets } from './stall.js';

/**
 * What `sluice connectors status --serve` exports: Kafka Connect's REST status and the
 * Postgres replication slot are no Prometheus metrics by themselves, so the monitor reads
 * them and serves them here, beside its own verdict (stalled: RUNNING, but nothing reaches
 * the topics while the slot's WAL grows).
 */
export class ConnectorMetrics {
  readonly running: Gauge<'connector'>;
  readonly tasksNotRunning: Gauge<'connector'>;
  readonly stalled: Gauge<'connector'>;
  readonly healthy: Gauge<'connector'>;
  readonly topicEndOffset: Gauge<'connector' | 'topic'>;
  readonly topicExists: Gauge<'connector' | 'topic'>;
  readonly slotRetained: Gauge<'connector' | 'slot'>;
  readonly slotPending: Gauge<'connector' | 'slot'>;
  readonly slotActive: Gauge<'connector' | 'slot'>;
  readonly checks: Counter<'outcome'>;
  readonly lastCheck: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.running = new Gauge({ name: 'sluice_connector_running', help: 'Kafka Connect says the connector is RUNNING (1) or not (0, also when it is not applied)', labelNames: ['connector'], registers });
    this.tasksNotRunning = new Gauge({ name: 'sluice_connector_tasks_not_running', help: 'tasks of the connector whose state is not RUNNING (FAILED, PAUSED, UNASSIGNED); 1 when it has no task at all', labelNames: ['connector'], registers });
    this.stalled = new Gauge({
      name: 'sluice_connector_stalled',
      help: '1 when the last window found the connector RUNNING while its slot WAL grew, its confirmed position stood still and no record reached its topics',
      labelNames: ['connector'],
      registers,
    });
    this.healthy = new Gauge({ name: 'sluice_connector_healthy', help: 'the verdict of `sluice connectors status` for the last window: 1 streaming, 0 not', labelNames: ['connector'], registers });
    this.topicEndOffset = new Gauge({ name: 'sluice_connector_topic_end_offset', help: 'sum of the end offsets of a topic the connector writes (change topics and heartbeat topic)', labelNames: ['connector', 'topic'], registers });
    this.topicExists = new Gauge({ name: 'sluice_connector_topic_exists', help: 'whether a topic the connector writes exists (1) or not (0)', labelNames: ['connector', 'topic'], registers });
    this.slotRetained = new Gauge({
      name: 'sluice_replication_slot_retained_wal_bytes',
      help: 'WAL the connector\'s replication slot keeps on the Postgres disk: pg_current_wal_lsn() - restart_lsn',
      labelNames: ['connector', 'slot'],
      registers,
    });
    this.slotPending = new Gauge({
      name: 'sluice_replication_slot_pending_wal_bytes',
      help: 'WAL written since the connector last confirmed a position: pg_current_wal_lsn() - confirmed_flush_lsn',
      labelNames: ['connector', 'slot'],
      registers,
    });
    this.slotActive = new Gauge({ name: 'sluice_replication_slot_active', help: 'whether a connection reads the replication slot (1) or not (0); -1 when the slot does not exist', labelNames: ['connector', 'slot'], registers });
    this.checks = new Counter({ name: 'sluice_connector_checks_total', help: 'monitor rounds, by outcome: ok (every server answered) or error (one did not; see the log)', labelNames: ['outcome'], registers });
    this.lastCheck = new Gauge({ name: 'sluice_connector_last_check_timestamp_seconds', help: 'when the monitor last finished a round in which every server answered (unix seconds)', registers });
    for (const outcome of ['ok', 'error']) this.checks.inc({ outcome }, 0);
  }

  record(connector: string, targets: ConnectorTargets, sample: ConnectorSample, assessment: ConnectorAssessment): void {
    const status = sample.status;
    this.running.set({ connector }, status?.connector.state === 'RUNNING' ? 1 : 0);
    this.tasksNotRunning.set({ connector }, status ? (status.tasks.length === 0 ? 1 : status.tasks.filter((t) => t.state !== 'RUNNING').length) : 1);
    this.stalled.set({ connector }, assessment.verdict === 'STALLED' ? 1 : 0);
    this.healthy.set({ connector }, assessment.healthy ? 1 : 0);
    for (const topic of targets.topics) {
      const end = sample.endOffsets.get(topic);
      this.topicExists.set({ connector, topic }, end === undefined ? 0 : 1);
      if (end === undefined) this.topicEndOffset.remove({ connector, topic });
      else this.topicEndOffset.set({ connector, topic }, Number(end));
    }
    const slot = { connector, slot: targets.slot };
    if (sample.slot) {
      this.slotRetained.set(slot, Number(sample.slot.retainedBytes));
      this.slotPending.set(slot, Number(sample.slot.pendingBytes));
      this.slotActive.set(slot, sample.slot.active ? 1 : 0);
    } else {
      this.slotRetained.remove(slot);
      this.slotPending.remove(slot);
      this.slotActive.set(slot, -1);
    }
  }
}
