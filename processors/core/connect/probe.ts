import type { Admin } from 'kafkajs';
import type pg from 'pg';
import type { ConnectClient, ConnectorSpec } from './client.js';
import type { ConnectorSample, ConnectorTargets, SlotReading } from './stall.js';

/**
 * One sample of a connector: its REST status, its replication slot against the server's
 * current WAL position, and the end offsets of its topics. Read-only on every server.
 */
export async function sampleConnector(deps: { connect: ConnectClient; db: pg.Pool; admin: Admin }, spec: ConnectorSpec, targets: ConnectorTargets): Promise<ConnectorSample> {
  const [status, slot, endOffsets] = await Promise.all([deps.connect.status(spec.name), readSlot(deps.db, targets.slot), readEndOffsets(deps.admin, targets.topics)]);
  return { at: Date.now(), status, slot, endOffsets };
}

/** The slot's positions as bytes (pg_lsn minus '0/0'), so two samples compare as numbers. */
export async function readSlot(db: pg.Pool, slot: string): Promise<SlotReading | undefined> {
  const { rows } = await db.query<{ active: boolean; current: bigint; confirmed: bigint | null; retained: bigint | null; pending: bigint | null }>(
    `SELECT active,
            (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS current,
            (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint AS confirmed,
            (pg_current_wal_lsn() - restart_lsn)::bigint AS retained,
            (pg_current_wal_lsn() - coalesce(confirmed_flush_lsn, restart_lsn))::bigint AS pending
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return undefined;
  return { name: slot, active: r.active, currentLsn: r.current, confirmedLsn: r.confirmed, retainedBytes: r.retained ?? 0n, pendingBytes: r.pending ?? 0n };
}

/** Per topic, the sum of its partitions' end offsets (undefined when the topic does not exist). */
export async function readEndOffsets(admin: Admin, topics: string[]): Promise<Map<string, bigint | undefined>> {
  const existing = new Set(await admin.listTopics());
  const out = new Map<string, bigint | undefined>();
  for (const topic of topics) {
    if (!existing.has(topic)) {
      out.set(topic, undefined);
      continue;
    }
    const offsets = await admin.fetchTopicOffsets(topic);
    out.set(
      topic,
      offsets.reduce((sum, p) => sum + BigInt(p.high), 0n),
    );
  }
  return out;
}
