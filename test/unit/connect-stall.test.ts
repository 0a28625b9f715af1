import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { ConnectorStatus } from '../../processors/core/connect/client.js';
import { ConnectorMetrics } from '../../processors/core/connect/metrics.js';
import { assessConnector, connectorTargets, defaultWindowMs, type ConnectorSample, type SlotReading } from '../../processors/core/connect/stall.js';

const spec = {
  name: 'sluice-staging-agent-events',
  config: {
    'topic.prefix': 'sluice',
    'table.include.list': 'staging.agent_events',
    'slot.name': 'sluice_agent_events',
    'heartbeat.interval.ms': '10000',
  },
};
const targets = connectorTargets(spec);
const CDC = 'sluice.staging.agent_events';
const HEARTBEAT = '__debezium-heartbeat.sluice';

const running: ConnectorStatus = {
  name: spec.name,
  connector: { state: 'RUNNING', worker_id: 'w' },
  tasks: [{ id: 0, state: 'RUNNING', worker_id: 'w' }],
};

function slot(current: bigint, confirmed: bigint, restart = 0n, active = true): SlotReading {
  return { name: 'sluice_agent_events', active, currentLsn: current, confirmedLsn: confirmed, retainedBytes: current - restart, pendingBytes: current - confirmed };
}

function sample(at: number, s: SlotReading | undefined, offsets: Record<string, bigint | undefined>, status: ConnectorStatus | undefined = running): ConnectorSample {
  return { at, status, slot: s, endOffsets: new Map(Object.entries(offsets)) };
}

describe('connector targets', () => {
  it('names the change topic, the heartbeat topic and the slot as Debezium does', () => {
    expect(targets).toEqual({ slot: 'sluice_agent_events', topics: [CDC, HEARTBEAT], heartbeatTopic: HEARTBEAT, heartbeatMs: 10_000 });
    expect(defaultWindowMs(targets)).toBe(12_000);
  });

  it('uses Debezium defaults when the config leaves them out', () => {
    const t = connectorTargets({ name: 'x', config: { 'topic.prefix': 'p', 'table.include.list': 'a.b, c.d' } });
    expect(t).toEqual({ slot: 'debezium', topics: ['p.a.b', 'p.c.d'] });
    expect(defaultWindowMs(t)).toBe(5_000);
  });
});

describe('assessConnector', () => {
  it('says STALLED when RUNNING, WAL grows, the confirmed position stands still and the topic does not exist', () => {
    const before = sample(0, slot(1_000_000n, 500_000n), { [CDC]: undefined, [HEARTBEAT]: undefined });
    const after = sample(12_000, slot(1_800_000n, 500_000n), { [CDC]: undefined, [HEARTBEAT]: undefined });
    const a = assessConnector(spec.name, targets, before, after);
    expect(a.verdict).toBe('STALLED');
    expect(a.healthy).toBe(false);
    expect(a.reasons.join('\n')).toContain(`topic ${CDC} does not exist`);
    expect(a.reasons.join('\n')).toContain('sluice topics apply');
    expect(a.reasons[0]).toContain('+781.3 KiB in 12 s');
  });

  it('says STALLED when the topics exist but their end offsets stand still', () => {
    const before = sample(0, slot(2_000n, 1_000n), { [CDC]: 50n, [HEARTBEAT]: 7n });
    const after = sample(12_000, slot(9_000n, 1_000n), { [CDC]: 50n, [HEARTBEAT]: 7n });
    const a = assessConnector(spec.name, targets, before, after);
    expect(a.verdict).toBe('STALLED');
    expect(a.reasons.join('\n')).toContain(`${CDC} stayed at offset 50`);
    expect(a.reasons.join('\n')).toContain('producer cannot write');
  });

  it('is RUNNING when records reach the change topic, even before the position is confirmed', () => {
    const before = sample(0, slot(2_000n, 1_000n), { [CDC]: 50n, [HEARTBEAT]: 7n });
    const after = sample(12_000, slot(9_000n, 1_000n), { [CDC]: 80n, [HEARTBEAT]: 7n });
    expect(assessConnector(spec.name, targets, before, after)).toMatchObject({ verdict: 'RUNNING', healthy: true });
  });

  it('is RUNNING when only a heartbeat was written (WAL of other tables moves the slot)', () => {
    const before = sample(0, slot(2_000n, 1_000n), { [CDC]: 50n, [HEARTBEAT]: 7n });
    const after = sample(12_000, slot(9_000n, 1_000n), { [CDC]: 50n, [HEARTBEAT]: 8n });
    expect(assessConnector(spec.name, targets, before, after).verdict).toBe('RUNNING');
  });

  it('is RUNNING when the connector confirmed a newer position', () => {
    const before = sample(0, slot(2_000n, 1_000n), { [CDC]: 50n, [HEARTBEAT]: 7n });
    const after = sample(12_000, slot(9_000n, 8_000n), { [CDC]: 50n, [HEARTBEAT]: 7n });
    expect(assessConnector(spec.name, targets, before, after).verdict).toBe('RUNNING');
  });

  it('is RUNNING on an idle database: no WAL written, nothing to stream', () => {
    const before = sample(0, slot(2_000n, 1_000n), { [CDC]: undefined, [HEARTBEAT]: undefined });
    const after = sample(12_000, slot(2_000n, 1_000n), { [CDC]: undefined, [HEARTBEAT]: undefined });
    expect(assessConnector(spec.name, targets, before, after)).toMatchObject({ verdict: 'RUNNING', healthy: true });
  });

  it('says NOT_RUNNING with the first line of the trace of a failed task', () => {
    const failed: ConnectorStatus = { ...running, tasks: [{ id: 0, state: 'FAILED', worker_id: 'w', trace: 'org.apache.kafka.connect.errors.ConnectException: boom\n\tat x' }] };
    const a = assessConnector(spec.name, targets, sample(0, slot(1n, 1n), {}, failed), sample(1, slot(1n, 1n), {}, failed));
    expect(a).toMatchObject({ verdict: 'NOT_RUNNING', healthy: false });
    expect(a.reasons).toEqual(['task 0 is FAILED: org.apache.kafka.connect.errors.ConnectException: boom']);
  });

  it('says NOT_APPLIED when Connect does not know the connector', () => {
    const unknown: ConnectorSample = { at: 0, status: undefined, slot: undefined, endOffsets: new Map() };
    expect(assessConnector(spec.name, targets, unknown, { ...unknown, at: 1 }).verdict).toBe('NOT_APPLIED');
  });

  it('says STALLED when RUNNING without a slot, or with a slot nobody reads', () => {
    expect(assessConnector(spec.name, targets, sample(0, undefined, {}), sample(1, undefined, {})).reasons[0]).toContain('replication slot sluice_agent_events does not exist');
    const idle = slot(5n, 5n, 0n, false);
    expect(assessConnector(spec.name, targets, sample(0, idle, {}), sample(1, idle, {})).reasons[0]).toContain('has no reader');
  });
});

describe('ConnectorMetrics', () => {
  it('exports the status, the slot and the topics of one check', async () => {
    const registry = new Registry();
    const metrics = new ConnectorMetrics(registry);
    const before = sample(0, slot(1_000n, 500n, 100n), { [CDC]: undefined, [HEARTBEAT]: 3n });
    const after = sample(12_000, slot(9_000n, 500n, 100n), { [CDC]: undefined, [HEARTBEAT]: 3n });
    metrics.record(spec.name, targets, after, assessConnector(spec.name, targets, before, after));
    const text = await registry.metrics();
    expect(text).toContain(`sluice_connector_running{connector="${spec.name}"} 1`);
    expect(text).toContain(`sluice_connector_stalled{connector="${spec.name}"} 1`);
    expect(text).toContain(`sluice_connector_topic_exists{connector="${spec.name}",topic="${CDC}"} 0`);
    expect(text).toContain(`sluice_connector_topic_end_offset{connector="${spec.name}",topic="${HEARTBEAT}"} 3`);
    expect(text).toContain(`sluice_replication_slot_retained_wal_bytes{connector="${spec.name}",slot="sluice_agent_events"} 8900`);
    expect(text).toContain(`sluice_replication_slot_pending_wal_bytes{connector="${spec.name}",slot="sluice_agent_events"} 8500`);
  });
});
