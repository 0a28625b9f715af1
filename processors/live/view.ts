import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Consumer, Kafka } from 'kafkajs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import { LMDB_ENV } from '../core/state/lmdb-store.js';
import type { AvroDecoder } from '../export/decoder.js';
import { parseOutputKey, type LiveTotals } from './output.js';

/**
 * What the API serves: the compacted output topic `agent-commissions.live`, read whole by
 * every instance (read_committed: only totals whose transaction committed) and followed.
 * Any instance answers for any agent without knowing who owns its partition. The rows are
 * kept in an LMDB store of the view's own (key `<month>\0<agent_id>`, value the record's
 * Avro bytes as they came), not in the heap: a million agent-months is ~150 MB of disk
 * pages the OS may evict, not ~300 MB of JavaScript objects; a month's rows come in key
 * order, which is report order (UTF-8 byte order is code point order). The store is
 * rebuilt from the topic at every start (the topic is the truth). A change is also
 * emitted (`change`) for the SSE stream, decoded only while a stream listens.
 */
export class LiveView extends EventEmitter<{ change: [LiveTotals] }> {
  private readonly dir: string;
  private readonly ownDir: boolean;
  private root: RootDatabase | undefined;
  private rows: Database<Buffer, string> | undefined;
  private consumer: Consumer | undefined;
  private caughtUp = false;
  /** When the last record was applied (ms since epoch). */
  lastAppliedAt = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly decoder: AvroDecoder,
    private readonly logger: Logger,
    /** Folder of the view's store (emptied at start); default: a temporary folder removed at stop. */
    dir?: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.ownDir = dir === undefined;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'sluice-live-view-'));
  }

  get ready(): boolean {
    return this.caughtUp;
  }

  /** Agent-months in the view. */
  get size(): number {
    return this.rows ? (this.rows.getStats() as { entryCount: number }).entryCount : 0;
  }

  /** Reads the whole topic and keeps following it; resolves once it reached the end seen at start. */
  async start(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.root = open({ path: this.dir, ...LMDB_ENV });
    this.rows = this.root.openDB<Buffer, string>('rows', { encoding: 'binary', keyEncoding: 'ordered-binary' });
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = await withRetry(() => admin.fetchTopicOffsets(this.topic)).finally(() => admin.disconnect());
    const pending = new Map(ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => [e.partition, BigInt(e.high)]));
    // A group of its own per process, never committed: every start reads the view again.
    const consumer = this.kafka.consumer({ groupId: `sluice-live-view-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100, allowAutoTopicCreation: false, maxBytes: 4 * 1024 * 1024 });
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
        let written: Promise<boolean> | undefined;
        for (const m of batch.messages) {
          if (!m.key || !m.value) continue;
          const key = parseOutputKey(m.key.toString('utf8'));
          if (!key) continue;
          try {
            if (!this.decoder.ready(this.topic, m.value)) await this.decoder.prepare(this.topic, m.value);
            written = this.put(key.agentId, key.month, m.value);
          } catch (error) {
            this.logger.warn({ partition: batch.partition, offset: m.offset, err: error }, 'ignoring an unreadable live totals record');
          }
        }
        // The batch's rows are readable before the position moves (LMDB commits them as one transaction).
        if (written) await written;
        advance(batch.partition, BigInt(batch.lastOffset()) + 1n);
      },
    });
    await caughtUp;
    this.logger.info({ topic: this.topic, agentMonths: this.size }, 'live totals view caught up');
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.root?.close();
    this.root = undefined;
    this.rows = undefined;
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stores a row (its Avro value, wire format) and tells the SSE listeners. */
  private put(agentId: string, month: string, value: Buffer): Promise<boolean> {
    const written = this.rows!.put(rowKey(month, agentId), value);
    this.lastAppliedAt = Date.now();
    if (this.listenerCount('change') > 0) this.emit('change', this.decode(value));
    return written;
  }

  private decode(value: Buffer): LiveTotals {
    return this.decoder.decode(this.topic, value).value as LiveTotals;
  }

  get(agentId: string, month: string): LiveTotals | undefined {
    const v = this.rows?.getBinary(rowKey(month, agentId));
    return v === undefined ? undefined : this.decode(v);
  }

  /** The month's rows in report order (agent_id by code point), after `after` (exclusive), at most `limit`. */
  page(month: string, after: string | undefined, limit: number): { rows: LiveTotals[]; next: string | undefined } {
    if (!this.rows) return { rows: [], next: undefined };
    const rows: LiveTotals[] = [];
    const start = rowKey(month, after ?? '');
    let more = false;
    for (const { key, value } of this.rows.getRange({ start, end: `${month}\u0001` })) {
      if (after !== undefined && key === start) continue;
      if (rows.length === limit) {
        more = true;
        break;
      }
      rows.push(this.decode(value as Buffer));
    }
    return { rows, next: more ? rows[rows.length - 1]?.agent_id : undefined };
  }

  /** Every row of the month (for reconcile). */
  all(month: string): LiveTotals[] {
    return this.page(month, undefined, Number.MAX_SAFE_INTEGER).rows;
  }
}

const rowKey = (month: string, agentId: string): string => `${month}\u0000${agentId}`;
