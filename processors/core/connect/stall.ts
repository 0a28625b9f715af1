import type { ConnectorSpec, ConnectorStatus } from './client.js';

/**
 * Whether a Debezium PostgreSQL connector really streams. Kafka Connect's REST status is
 * not enough: a connector whose topic cannot be created (auto-creation off, no
 * topic.creation.* settings, no ACL) says RUNNING with no error while its producer retries
 * forever, and the replication slot keeps every WAL segment since, until the Postgres disk
 * is full. So two samples a window apart are compared: the slot's position and the end
 * offsets of every topic the connector writes.
 */

/** What the connector writes to and reads from, derived from its config. */
export interface ConnectorTargets {
  slot: string;
  /** The change topics (<topic.prefix>.<schema>.<table>) and the heartbeat topic, if any. */
  topics: string[];
  heartbeatTopic?: string;
  heartbeatMs?: number;
}

/** One reading of a replication slot; byte counts are against pg_current_wal_lsn() at that moment. */
export interface SlotReading {
  name: string;
  active: boolean;
  /** pg_current_wal_lsn() as a byte position. */
  currentLsn: bigint;
  /** confirmed_flush_lsn as a byte position (null until the connector confirmed once). */
  confirmedLsn: bigint | null;
  /** WAL the slot keeps on disk: current - restart_lsn. */
  retainedBytes: bigint;
  /** WAL written since the connector's last confirmed position: current - confirmed_flush_lsn. */
  pendingBytes: bigint;
}

export interface ConnectorSample {
  at: number;
  /** undefined: the connector is not applied. */
  status: ConnectorStatus | undefined;
  /** undefined: the slot does not exist. */
  slot: SlotReading | undefined;
  /** Per topic, the sum of its partitions' end offsets; undefined when the topic does not exist. */
  endOffsets: Map<string, bigint | undefined>;
}

export type ConnectorVerdict = 'RUNNING' | 'STALLED' | 'NOT_RUNNING' | 'NOT_APPLIED';

export interface ConnectorAssessment {
  name: string;
  verdict: ConnectorVerdict;
  healthy: boolean;
  /** One line each, for people: why it is unhealthy, or what was measured. */
  reasons: string[];
}

const DEFAULT_HEARTBEAT_PREFIX = '__debezium-heartbeat';

/** The slot and topics of a Debezium PostgreSQL connector, as Debezium names them by default. */
export function connectorTargets(spec: ConnectorSpec): ConnectorTargets {
  const c = spec.config;
  const prefix = c['topic.prefix'] ?? '';
  const delimiter = c['topic.delimiter'] ?? '.';
  const tables = (c['table.include.list'] ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const topics = tables.map((t) => [prefix, ...t.split('.')].join(delimiter));
  const heartbeatMs = Number(c['heartbeat.interval.ms'] ?? 0);
  const targets: ConnectorTargets = { slot: c['slot.name'] ?? 'debezium', topics };
  if (heartbeatMs > 0) {
    targets.heartbeatMs = heartbeatMs;
    targets.heartbeatTopic = `${c['topic.heartbeat.prefix'] ?? DEFAULT_HEARTBEAT_PREFIX}${delimiter}${prefix}`;
    targets.topics = [...topics, targets.heartbeatTopic];
  }
  return targets;
}

/**
 * The sample window for a connector: longer than its heartbeat interval, so that a healthy
 * connector on a database whose WAL moves only for other tables has written a heartbeat.
 */
export function defaultWindowMs(targets: ConnectorTargets): number {
  return Math.max(5_000, (targets.heartbeatMs ?? 0) + 2_000);
}

export function formatBytes(n: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Compares two samples of one connector; `before` is taken first. */
export function assessConnector(name: string, targets: ConnectorTargets, before: ConnectorSample, after: ConnectorSample): ConnectorAssessment {
  const status = after.status;
  if (!status) return { name, verdict: 'NOT_APPLIED', healthy: false, reasons: ['not applied (run: sluice connectors apply)'] };
  const reasons: string[] = [];
  if (status.connector.state !== 'RUNNING') reasons.push(`connector is ${status.connector.state}${firstLine(status.connector.trace)}`);
  if (status.tasks.length === 0) reasons.push('no tasks yet');
  for (const t of status.tasks.filter((t) => t.state !== 'RUNNING')) reasons.push(`task ${t.id} is ${t.state}${firstLine(t.trace)}`);
  if (reasons.length > 0) return { name, verdict: 'NOT_RUNNING', healthy: false, reasons };

  const seconds = ((after.at - before.at) / 1000).toFixed(0);
  const slot = after.slot;
  if (!slot) {
    return { name, verdict: 'STALLED', healthy: false, reasons: [`says RUNNING, but replication slot ${targets.slot} does not exist: the task is not streaming (check slot.name and the Connect log)`] };
  }
  const moved = targets.topics.filter((t) => grew(before.endOffsets.get(t), after.endOffsets.get(t)));
  const missing = targets.topics.filter((t) => after.endOffsets.get(t) === undefined);
  const prev = before.slot;
  const walWritten = prev !== undefined && slot.currentLsn > prev.currentLsn;
  const confirmedMoved = prev !== undefined && (slot.confirmedLsn ?? -1n) > (prev.confirmedLsn ?? -1n);
  const pendingGrew = prev !== undefined && slot.pendingBytes > prev.pendingBytes;
  const measured = `slot ${slot.name} retains ${formatBytes(slot.retainedBytes)} of WAL, ${formatBytes(slot.pendingBytes)} not confirmed`;

  if (walWritten && pendingGrew && !confirmedMoved && moved.length === 0) {
    const topicsSaid = targets.topics
      .map((t) => {
        const end = after.endOffsets.get(t);
        return end === undefined ? `topic ${t} does not exist` : `${t} stayed at offset ${end}`;
      })
      .join('; ');
    return {
      name,
      verdict: 'STALLED',
      healthy: false,
      reasons: [
        `says RUNNING, but nothing reached its topics in ${seconds} s while ${measured} (+${formatBytes(slot.pendingBytes - prev!.pendingBytes)} in ${seconds} s)`,
        topicsSaid,
        missing.length > 0
          ? `create ${missing.join(', ')} (sluice topics apply) or give the connector topic.creation.default.* settings: brokers without auto-creation (MSK) make no topic by themselves, and the Connect log shows why a send waits`
          : 'the connector\'s producer cannot write: check the Connect log for send retries (ACLs, quotas, broker errors)',
      ],
    };
  }
  if (!slot.active) {
    return { name, verdict: 'STALLED', healthy: false, reasons: [`says RUNNING, but replication slot ${slot.name} has no reader: the task is not streaming; ${measured}`] };
  }
  const progress = moved.length > 0 ? `${moved.join(', ')} advanced` : 'no new records (no captured changes)';
  return { name, verdict: 'RUNNING', healthy: true, reasons: [`${measured}; in ${seconds} s: ${progress}`] };
}

function grew(before: bigint | undefined, after: bigint | undefined): boolean {
  if (after === undefined) return false;
  return after > (before ?? 0n);
}

function firstLine(trace: string | undefined): string {
  const line = trace?.split('\n')[0]?.trim();
  return line ? `: ${line}` : '';
}
