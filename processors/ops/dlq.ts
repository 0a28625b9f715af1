import { randomUUID } from 'node:crypto';
import type { Admin, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { DLQ_HEADERS, readDeadLetterHeaders, type DeadLetterInfo } from '../core/dlq/dead-letter.js';
import { PermanentError } from '../core/errors/errors.js';
import { withRetry } from '../core/errors/retry.js';
import { readRange } from './range-reader.js';

/**
 * Dead-letter tools: inspect (counts by reason, samples with their headers) and redrive
 * (republish the records to a topic, in Kafka transactions that also commit the redrive's
 * own consumer position, so an interrupted redrive resumes where it stopped and never sends
 * a record twice to read_committed consumers).
 */

export interface DlqFilter {
  reason?: string | undefined;
  /** Only dead letters whose source topic is this. */
  sourceTopic?: string | undefined;
  /** Only dead letters that failed at or after this time (ms). */
  since?: number | undefined;
  until?: number | undefined;
}

export interface DeadLetter {
  partition: number;
  offset: string;
  key: string | null;
  info: DeadLetterInfo | undefined;
  headers: Record<string, string>;
  valueBytes: number;
  valuePreview: string;
}

export interface InspectResult {
  total: number;
  matched: number;
  byReason: Map<string, number>;
  samples: DeadLetter[];
}

export function matches(info: DeadLetterInfo | undefined, f: DlqFilter): boolean {
  if (f.reason !== undefined && info?.reason !== f.reason) return false;
  if (f.sourceTopic !== undefined && info?.topic !== f.sourceTopic) return false;
  const at = info?.failedAt ? Number(info.failedAt) : undefined;
  if (f.since !== undefined && (at === undefined || at < f.since)) return false;
  if (f.until !== undefined && (at === undefined || at > f.until)) return false;
  return true;
}

/** Reads the DLQ from its start to its end as of now (a throwaway group; nothing committed). */
export async function inspectDlq(kafka: Kafka, admin: Admin, topic: string, filter: DlqFilter, sampleLimit: number): Promise<InspectResult> {
  // Asked first: kafkajs would retry the metadata of a missing topic for minutes.
  if (!(await admin.listTopics()).includes(topic)) throw new DlqTopicMissing(topic);
  const result: InspectResult = { total: 0, matched: 0, byReason: new Map(), samples: [] };
  await readToEnd(kafka, admin, topic, `sluice-dlq-inspect-${randomUUID()}`, (partition, m) => {
    result.total++;
    const info = readDeadLetterHeaders(m.headers);
    if (!matches(info, filter)) return;
    result.matched++;
    const reason = info?.reason ?? '(no sluice.dlq.reason header)';
    result.byReason.set(reason, (result.byReason.get(reason) ?? 0) + 1);
    if (result.samples.length < sampleLimit) result.samples.push(describe(partition, m, info));
  });
  return result;
}

function describe(partition: number, m: KafkaMessage, info: DeadLetterInfo | undefined): DeadLetter {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = Array.isArray(v) ? v.map(String).join(',') : String(v ?? '');
  const value = m.value ?? Buffer.alloc(0);
  const text = value.toString('utf8');
  const printable = /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(text);
  return {
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString('utf8') : null,
    info,
    headers,
    valueBytes: value.length,
    valuePreview: printable ? (text.length > 300 ? `${text.slice(0, 297)}...` : text) : `0x${value.subarray(0, 48).toString('hex')}${value.length > 48 ? '...' : ''}`,
  };
}

/** Calls `each` for every record from the start to the end offsets taken when it starts. */
async function readToEnd(kafka: Kafka, admin: Admin, topic: string, groupId: string, each: (partition: number, m: KafkaMessage) => void | Promise<void>): Promise<void> {
  const offsets = await admin.fetchTopicOffsets(topic);
  await readRange(
    kafka,
    { topic, groupId, from: new Map(offsets.map((p) => [p.partition, BigInt(p.low)])), ends: new Map(offsets.map((p) => [p.partition, BigInt(p.high)])) },
    async (partition, messages) => {
      for (const m of messages) await each(partition, m);
    },
  );
}

export interface RedriveOptions {
  from: string;
  to: string;
  filter: DlqFilter;
  dryRun: boolean;
  /** Records per transaction. */
  batchSize?: number;
  onProgress?: (done: number, total: number, sent: number) => void;
}

export interface RedriveResult {
  /** Dead letters read past this redrive's committed position. */
  read: number;
  /** Republished (or, in a dry run, that would be). */
  sent: number;
  skipped: number;
  group: string;
  /** Where the redrive's own position started (per partition), before this run. */
  resumedFrom: Record<number, string>;
}

/** The redrive's own consumer group: one position per DLQ, target and filter. */
export function redriveGroup(o: Pick<RedriveOptions, 'from' | 'to' | 'filter'>): string {
  const f = o.filter;
  const parts = [o.from, o.to, f.reason ?? 'any-reason', f.sourceTopic ?? 'any-source', f.since ?? '', f.until ?? ''];
  return `sluice-redrive.${parts.join('.')}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 240);
}

/** The original record, without the dead-letter headers, plus where it was redriven from. */
export function redriven(partition: number, m: KafkaMessage, from: string, now: number): { key: Buffer | null; value: Buffer | null; headers: IHeaders } {
  const headers: IHeaders = {};
  const ours = new Set<string>(Object.values(DLQ_HEADERS));
  for (const [k, v] of Object.entries(m.headers ?? {})) if (!ours.has(k) && v !== undefined) headers[k] = v;
  headers['sluice.redrive.from'] = `${from}/${partition}/${m.offset}`;
  headers['sluice.redrive.at'] = String(now);
  return { key: m.key, value: m.value, headers };
}

export class RedriveError extends PermanentError {}

/** A DLQ (or a redrive target) that is not on the cluster: a typo, or nothing was ever dead-lettered. */
export class DlqTopicMissing extends PermanentError {
  constructor(readonly topic: string) {
    super(`topic ${topic} does not exist: check the name (a processor creates its DLQ when it starts; inspect and redrive never create topics)`);
  }
}

export async function redriveDlq(kafka: Kafka, admin: Admin, o: RedriveOptions): Promise<RedriveResult> {
  const group = redriveGroup(o);
  const topics = new Set(await admin.listTopics());
  for (const t of [o.from, o.to]) {
    if (!topics.has(t)) throw new DlqTopicMissing(t);
  }
  const ends = (await admin.fetchTopicOffsets(o.from)).filter((p) => BigInt(p.high) > BigInt(p.low));
  const committed = (await admin.fetchOffsets({ groupId: group, topics: [o.from] }))[0]?.partitions ?? [];
  const resumedFrom: Record<number, string> = {};
  const starts = new Map<number, bigint>();
  const remaining = new Map<number, bigint>();
  let total = 0;
  for (const p of ends) {
    const c = committed.find((x) => x.partition === p.partition)?.offset;
    const start = c && c !== '-1' ? BigInt(c) : BigInt(p.low);
    resumedFrom[p.partition] = start.toString();
    starts.set(p.partition, start);
    if (start < BigInt(p.high)) {
      remaining.set(p.partition, BigInt(p.high));
      total += Number(BigInt(p.high) - start);
    }
  }
  const result: RedriveResult = { read: 0, sent: 0, skipped: 0, group, resumedFrom };
  if (remaining.size === 0) return result;
  if (o.dryRun) {
    // Read with a throwaway group from the redrive's position: what a real run would send.
    await readRange(kafka, { topic: o.from, groupId: `sluice-redrive-dry-${randomUUID()}`, from: starts, ends: remaining }, async (partition, messages) => {
      for (const m of messages) {
        result.read++;
        if (matches(readDeadLetterHeaders(m.headers), o.filter)) result.sent++;
        else result.skipped++;
      }
      o.onProgress?.(result.read, total, result.sent);
    });
    return result;
  }
  const producer = kafka.producer({ transactionalId: group, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5000 } });
  await producer.connect();
  try {
    await readRange(kafka, { topic: o.from, groupId: group, from: starts, ends: remaining }, async (partition, messages) => {
      const batchSize = o.batchSize ?? 500;
      for (let i = 0; i < messages.length; i += batchSize) {
        const chunk = messages.slice(i, i + batchSize);
        const now = Date.now();
        const out = chunk.filter((m) => matches(readDeadLetterHeaders(m.headers), o.filter)).map((m) => redriven(partition, m, o.from, now));
        // A transaction the broker is still finishing (CONCURRENT_TRANSACTIONS, a coordinator moving) is retried;
        // an aborted attempt sent nothing, so a retry cannot duplicate.
        await withRetry(
          async () => {
            const txn = await producer.transaction();
            try {
              if (out.length > 0) await txn.send({ topic: o.to, acks: -1, messages: out });
              await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: o.from, partitions: [{ partition, offset: (BigInt(chunk.at(-1)!.offset) + 1n).toString() }] }] });
              await txn.commit();
            } catch (error) {
              await txn.abort().catch(() => undefined);
              throw error;
            }
          },
          { policy: { maxAttempts: 6, initialMs: 300, maxMs: 3000 } },
        );
        result.read += chunk.length;
        result.sent += out.length;
        result.skipped += chunk.length - out.length;
        o.onProgress?.(result.read, total, result.sent);
      }
    });
  } finally {
    await producer.disconnect();
  }
  return result;
}
