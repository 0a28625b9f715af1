import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Consumer, Kafka } from 'kafkajs';
import { withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import type { AvroDecoder } from '../export/decoder.js';
import { byCodePoint } from '../reports/render.js';
import { parseOutputKey, type LiveTotals } from './output.js';

/**
 * What the API serves: the compacted output topic `agent-commissions.live`, read whole by
 * every instance (read_committed: only totals whose transaction committed) and followed.
 * Any instance answers for any agent without knowing who owns its partition, at the cost
 * of a copy of the totals per instance (a row is ~300 bytes: a million agent-months is
 * ~300 MB, when that matters the API moves to a store of its own). A change is also
 * emitted (`change`) for the SSE stream.
 */
export class LiveView extends EventEmitter<{ change: [LiveTotals] }> {
  private readonly months = new Map<string, Map<string, LiveTotals>>();
  /** The month's agents in report order, built on demand and dropped when an agent is added. */
  private readonly sorted = new Map<string, string[]>();
  private consumer: Consumer | undefined;
  private caughtUp = false;
  /** Offset of the last record applied per partition, and the commit time of the newest. */
  lastAppliedAt = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly decoder: AvroDecoder,
    private readonly logger: Logger,
  ) {
    super();
    this.setMaxListeners(0);
  }

  get ready(): boolean {
    return this.caughtUp;
  }

  get size(): number {
    let n = 0;
    for (const m of this.months.values()) n += m.size;
    return n;
  }

  /** Reads the whole topic and keeps following it; resolves once it reached the end seen at start. */
  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = await withRetry(() => admin.fetchTopicOffsets(this.topic)).finally(() => admin.disconnect());
    const pending = new Map(ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => [e.partition, BigInt(e.high)]));
    // A group of its own per process, never committed: every start reads the view again.
    const consumer = this.kafka.consumer({ groupId: `sluice-live-view-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
    this.consumer = consumer;
    let resolveCaughtUp!: () => void;
    const caughtUp = new Promise<void>((r) => (resolveCaughtUp = r));
    const advance = (partition: number, next: bigint) => {
      const end = pending.get(partition);
      if (end !== undefined && next >= end) pending.delete(partition);
      if (pending.size === 0 && !this.caughtUp) {
        this.caughtUp = true;
        resolveCaughtUp();
      }
    };
    advance(-1, 0n);
    // A batch of control records only (a commit marker) reaches no eachBatch, yet moves the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      advance(partition, BigInt(lastOffset) + 1n);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (!m.key || !m.value) continue;
          const key = parseOutputKey(m.key.toString('utf8'));
          if (!key) continue;
          try {
            if (!this.decoder.ready(this.topic, m.value)) await this.decoder.prepare(this.topic, m.value);
            this.apply(this.decoder.decode(this.topic, m.value).value as LiveTotals);
          } catch (error) {
            this.logger.warn({ partition: batch.partition, offset: m.offset, err: error }, 'ignoring an unreadable live totals record');
          }
        }
        advance(batch.partition, BigInt(batch.lastOffset()) + 1n);
      },
    });
    await caughtUp;
    this.logger.info({ topic: this.topic, agentMonths: this.size }, 'live totals view caught up');
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }

  apply(t: LiveTotals): void {
    let month = this.months.get(t.month);
    if (!month) this.months.set(t.month, (month = new Map()));
    if (!month.has(t.agent_id)) this.sorted.delete(t.month);
    month.set(t.agent_id, t);
    this.lastAppliedAt = Date.now();
    this.emit('change', t);
  }

  get(agentId: string, month: string): LiveTotals | undefined {
    return this.months.get(month)?.get(agentId);
  }

  /** The month's rows in report order (agent_id by code point), after `after` (exclusive), at most `limit`. */
  page(month: string, after: string | undefined, limit: number): { rows: LiveTotals[]; next: string | undefined } {
    const agents = this.months.get(month);
    if (!agents) return { rows: [], next: undefined };
    let order = this.sorted.get(month);
    if (!order) this.sorted.set(month, (order = [...agents.keys()].sort(byCodePoint)));
    let start = 0;
    if (after !== undefined) {
      let lo = 0;
      let hi = order.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (byCodePoint(order[mid]!, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const ids = order.slice(start, start + limit);
    return { rows: ids.map((id) => agents.get(id)!), next: start + limit < order.length ? ids[ids.length - 1] : undefined };
  }

  /** Every month's rows (for reconcile). */
  all(month: string): LiveTotals[] {
    return this.page(month, undefined, Number.MAX_SAFE_INTEGER).rows;
  }
}
