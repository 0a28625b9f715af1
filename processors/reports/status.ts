import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import { shownRequest, type ReportRequest } from './request.js';

/**
 * Report state changes on `report-status` (JSON, key = request_id, a compacted topic: the
 * latest state of every request survives). Both the processor (to answer a repeated
 * request from its result) and the REST shim (GET /reports/{id}) read it into a
 * StatusStore, a view rebuilt from the topic at start and kept current while running.
 */

export type ReportState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface ReportResult {
  bucket: string;
  key: string;
  format: string;
  rows: number;
  bytes: number;
  rules_version: string;
  generated_at: string;
  lake_files: number;
}

export interface NotificationOutcome {
  channel: 'email' | 'webhook';
  target: string;
  ok: boolean;
  error?: string;
}

export interface ReportStatus {
  request_id: string;
  state: ReportState;
  /** When this state was reached (ISO 8601). */
  at: string;
  request: ReportRequest;
  result?: ReportResult;
  error?: { reason: string; message: string };
  notifications?: NotificationOutcome[];
  /** True when a repeated request was answered from the earlier result. */
  from_earlier_result?: boolean;
}

export class StatusStore {
  private readonly statuses = new Map<string, ReportStatus>();
  private readonly waiters = new Set<() => void>();
  private consumer: Consumer | undefined;
  private caughtUp = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly logger: Logger,
  ) {}

  get ready(): boolean {
    return this.caughtUp;
  }

  /** Reads the whole topic (latest state per request) and keeps following it. Resolves once caught up. */
  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    // Right after the topic is created (or during a leader election) the partitions may have
    // no leader yet: a retriable error, not a reason for the processor to fail its start.
    const ends = await withRetry(() => admin.fetchTopicOffsets(this.topic)).finally(() => admin.disconnect());
    const pending = new Map(ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => [e.partition, BigInt(e.high)]));
    // A group of its own per process, never committed: every start reads the view again from the beginning.
    this.consumer = this.kafka.consumer({ groupId: `sluice-report-status-view-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 500 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    let resolveCaughtUp!: () => void;
    const caughtUp = new Promise<void>((r) => (resolveCaughtUp = r));
    const check = () => {
      if (pending.size === 0 && !this.caughtUp) {
        this.caughtUp = true;
        resolveCaughtUp();
      }
    };
    check();
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (message.value) {
          try {
            this.apply(JSON.parse(message.value.toString('utf8')) as ReportStatus);
          } catch (error) {
            this.logger.warn({ partition, offset: message.offset, err: error }, 'ignoring an unreadable report-status record');
          }
        }
        const end = pending.get(partition);
        if (end !== undefined && BigInt(message.offset) + 1n >= end) pending.delete(partition);
        check();
      },
    });
    await caughtUp;
    this.logger.info({ topic: this.topic, requests: this.statuses.size }, 'report status view caught up');
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }

  get(requestId: string): ReportStatus | undefined {
    return this.statuses.get(requestId);
  }

  /**
   * Takes a state change (from the topic, or one this process just published). Later states
   * win. Kept with the request as shown (a state written before webhooks were redacted is
   * redacted here), since GET /reports/{id} answers from this view.
   */
  apply(status: ReportStatus): void {
    const current = this.statuses.get(status.request_id);
    if (current && current.at > status.at) return;
    this.statuses.set(status.request_id, status.request ? { ...status, request: shownRequest(status.request) } : status);
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves when the request's state satisfies `done`; rejects after `timeoutMs`. */
  waitFor(requestId: string, done: (s: ReportStatus) => boolean, timeoutMs: number): Promise<ReportStatus> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const s = this.statuses.get(requestId);
        if (s && done(s)) {
          cleanup();
          resolve(s);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`report ${requestId}: state ${this.statuses.get(requestId)?.state ?? 'unknown'} after ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** Publishes a state change (acks from all replicas) and applies it to the local view. */
/** Publishes a state change, the request in it shown as `shownRequest` (a webhook by its origin only). */
export async function publishStatus(producer: Producer, topic: string, store: StatusStore | undefined, status: ReportStatus): Promise<void> {
  const shown = { ...status, request: shownRequest(status.request) };
  await producer.send({ topic, acks: -1, messages: [{ key: status.request_id, value: JSON.stringify(shown) }] });
  store?.apply(shown);
}
