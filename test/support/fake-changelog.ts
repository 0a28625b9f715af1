import type { KafkaMessage, Message } from 'kafkajs';
import type { ChangelogSource } from '../../processors/core/state/changelog-reader.js';

/**
 * A changelog held in memory: per partition, records at increasing offsets, with gaps
 * where compaction removed records or transaction markers sit (as a real one has).
 */
export class FakeChangelog implements ChangelogSource {
  readonly partitions = new Map<number, { records: KafkaMessage[]; high: bigint; low: bigint }>();
  readonly reads: { partition: number; from: bigint; to: bigint }[] = [];
  closed = false;

  private log(partition: number) {
    let p = this.partitions.get(partition);
    if (!p) this.partitions.set(partition, (p = { records: [], high: 0n, low: 0n }));
    return p;
  }

  /** Appends the messages of one committed transaction, then its commit marker (one offset). */
  commit(partition: number, messages: Message[]): bigint {
    const p = this.log(partition);
    for (const m of messages) {
      p.records.push({ key: Buffer.from(m.key as string), value: m.value as Buffer | null, headers: m.headers as KafkaMessage['headers'], offset: String(p.high), timestamp: '0', attributes: 0 } as KafkaMessage);
      p.high++;
    }
    const next = p.high;
    p.high++; // the marker
    return next;
  }

  async bounds(partition: number) {
    const p = this.log(partition);
    return { low: p.low, high: p.high };
  }

  async read(partition: number, from: bigint, to: bigint, apply: (records: KafkaMessage[]) => void, progress: () => Promise<void>) {
    this.reads.push({ partition, from, to });
    const records = this.log(partition).records.filter((r) => BigInt(r.offset) >= from && BigInt(r.offset) < to);
    for (let i = 0; i < records.length; i += 2) {
      apply(records.slice(i, i + 2));
      await progress();
    }
  }

  async close() {
    this.closed = true;
  }
}

