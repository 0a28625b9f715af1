import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';

/**
 * Consumer lag as the broker sees it: per partition, the log end offset minus the group's
 * committed offset (what `kafka-consumer-groups --describe` prints), and in seconds: how old
 * the oldest record the group has not committed yet is (now minus that record's timestamp),
 * 0 when it is caught up.
 */

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  committed: string | null;
  end: string;
  lag: bigint;
  /** Age of the oldest uncommitted record, seconds; undefined when it could not be read in time. */
  lagSeconds?: number | undefined;
}

export interface LagOptions {
  groups?: string[];
  /** Read the oldest uncommitted record's timestamp (one fetch per lagging partition). */
  seconds?: boolean;
  timeoutMs?: number;
  now?: () => number;
}

/** Lag of the given groups (default: every consumer group but throwaway ones), sorted by group, topic, partition. */
export async function consumerLag(kafka: Kafka, admin: Admin, o: LagOptions = {}): Promise<PartitionLag[]> {
  const groups = o.groups ?? (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => !g.startsWith('sluice-report-status-view-'));
  const out: PartitionLag[] = [];
  const ends = new Map<string, Map<number, string>>();
  for (const group of groups.sort()) {
    for (const t of await admin.fetchOffsets({ groupId: group })) {
      if (!ends.has(t.topic)) ends.set(t.topic, new Map((await admin.fetchTopicOffsets(t.topic)).map((p) => [p.partition, p.high])));
      const topicEnds = ends.get(t.topic)!;
      for (const p of t.partitions) {
        const end = topicEnds.get(p.partition) ?? '0';
        const committed = p.offset === '-1' ? null : p.offset;
        const lag = BigInt(end) - BigInt(committed ?? (await lowOffset(admin, t.topic, p.partition)));
        out.push({ group, topic: t.topic, partition: p.partition, committed, end, lag: lag > 0n ? lag : 0n });
      }
    }
  }
  out.sort((a, b) => (a.group === b.group ? (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1) : a.group < b.group ? -1 : 1));
  if (o.seconds) await addLagSeconds(kafka, admin, out, o.timeoutMs ?? 10_000, o.now ?? Date.now);
  return out;
}

const lows = new Map<string, string>();
async function lowOffset(admin: Admin, topic: string, partition: number): Promise<string> {
  const key = `${topic}/${partition}`;
  if (!lows.has(key)) for (const p of await admin.fetchTopicOffsets(topic)) lows.set(`${topic}/${p.partition}`, p.low);
  return lows.get(key) ?? '0';
}

/** Reads, per lagging partition, the record at the committed offset with a throwaway consumer that commits nothing. */
async function addLagSeconds(kafka: Kafka, admin: Admin, rows: PartitionLag[], timeoutMs: number, now: () => number): Promise<void> {
  for (const r of rows) if (r.lag === 0n) r.lagSeconds = 0;
  const lagging = rows.filter((r) => r.lag > 0n);
  const byTopic = new Map<string, PartitionLag[]>();
  for (const r of lagging) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
  for (const [topic, list] of byTopic) {
    const targets = new Map<number, bigint>();
    for (const r of list) {
      const from = BigInt(r.committed ?? (await lowOffset(admin, topic, r.partition)));
      const current = targets.get(r.partition);
      if (current === undefined || from < current) targets.set(r.partition, from);
    }
    const oldest = new Map<number, number>();
    const consumer = kafka.consumer({ groupId: `sluice-lag-probe-${randomUUID()}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        let seeked = false;
        consumer.on(consumer.events.GROUP_JOIN, () => {
          if (seeked) return;
          seeked = true;
          for (const [partition, offset] of targets) consumer.seek({ topic, partition, offset: offset.toString() });
        });
        void consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const want = targets.get(batch.partition);
            if (want === undefined || oldest.has(batch.partition)) return;
            const first = batch.messages.find((m) => BigInt(m.offset) >= want);
            if (first) oldest.set(batch.partition, Number(first.timestamp));
            if (oldest.size === targets.size) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    for (const r of list) {
      const ts = oldest.get(r.partition);
      r.lagSeconds = ts === undefined ? undefined : Math.max(0, Math.round((now() - ts) / 100) / 10);
    }
  }
}
