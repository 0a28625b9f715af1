import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { int64Column, readParquetTable, stringColumn } from '../core/parquet/reader.js';
import type { AgentMonth } from './commission.js';

/**
 * One month of the lake, aggregated per agent: reads only the month's partitions
 * (`event_type=<t>/dt=<YYYY-MM>-*`, the UTC day of occurred_at), only the columns it
 * needs, and counts every event_id once. Duplicates of an event always share its type and
 * day, hence its partition, so the dedupe set is per partition (bounded by a day of one
 * type, not by the month).
 */

export const MONEY_TYPES = { deposit_made: 'depositsMinor', withdrawal_made: 'withdrawalsMinor', investment_made: 'investmentsMinor' } as const;
export const EVENT_TYPES = ['customer_onboarded', ...Object.keys(MONEY_TYPES)] as const;

export interface MonthQuery {
  bucket: string;
  /** The lake's prefix, ending with `/` (lake/agent_events/). */
  prefix: string;
  month: string;
  agentIds?: ReadonlySet<string> | undefined;
  /** Objects downloaded at once. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface MonthAggregate {
  agents: Map<string, AgentMonth>;
  files: number;
  rows: number;
  duplicates: number;
  bytes: number;
}

interface AgentAcc extends AgentMonth {
  customers: Set<string>;
}

export async function aggregateMonth(s3: S3Client, q: MonthQuery): Promise<MonthAggregate> {
  const partitions = new Map<string, { type: string; keys: string[] }>();
  for (const type of EVENT_TYPES) {
    for (const key of await listKeys(s3, q.bucket, `${q.prefix}event_type=${type}/dt=${q.month}-`)) {
      if (!key.endsWith('.parquet')) continue;
      const partition = key.slice(0, key.lastIndexOf('/'));
      let p = partitions.get(partition);
      if (!p) partitions.set(partition, (p = { type, keys: [] }));
      p.keys.push(key);
    }
  }
  const agents: Agents = { byKey: new Map(), skipped: new Set() };
  const total = [...partitions.values()].reduce((n, p) => n + p.keys.length, 0);
  const result: MonthAggregate = { agents: new Map(), files: 0, rows: 0, duplicates: 0, bytes: 0 };
  const concurrency = q.concurrency ?? 16;
  for (const { type, keys } of partitions.values()) {
    const seen = new Set<string>();
    // Downloads overlap; parsing and counting happen in key order.
    const pending = keys.slice(0, concurrency).map((k) => download(s3, q.bucket, k));
    for (let i = 0; i < keys.length; i++) {
      const bytes = await pending[i]!;
      if (i + concurrency < keys.length) pending.push(download(s3, q.bucket, keys[i + concurrency]!));
      result.bytes += bytes.byteLength;
      result.rows += addFile(bytes, type, seen, agents, q.agentIds, result);
      result.files++;
      q.onProgress?.(result.files, total);
    }
  }
  for (const { customers, ...a } of agents.byKey.values()) result.agents.set(a.agentId, { ...a, customersOnboarded: customers.size });
  return result;
}

/** Agents by the raw bytes of their id; agents outside the request's agent_ids, likewise. */
interface Agents {
  byKey: Map<string, AgentAcc>;
  skipped: Set<string>;
}

function addFile(bytes: Uint8Array, type: string, seen: Set<string>, { byKey: agents, skipped }: Agents, only: ReadonlySet<string> | undefined, result: MonthAggregate): number {
  const money = MONEY_TYPES[type as keyof typeof MONEY_TYPES];
  const columns = ['event_id', 'agent_id', 'customer_id', ...(money ? ['amount_minor'] : [])];
  const table = readParquetTable(bytes, columns);
  let rows = 0;
  for (const batch of table.batches) {
    const ids = stringColumn(batch.getChild('event_id')!.data[0]!);
    const agentCol = stringColumn(batch.getChild('agent_id')!.data[0]!);
    const customers = stringColumn(batch.getChild('customer_id')!.data[0]!);
    const amounts = money ? int64Column(batch.getChild('amount_minor')!.data[0]!) : undefined;
    for (let i = 0; i < batch.numRows; i++) {
      rows++;
      // Agents are looked up by their raw bytes (latin1 slice, cheap); the UTF-8 text is decoded once per agent.
      const agentKey = agentCol.key(i);
      let a = agents.get(agentKey);
      if (!a) {
        if (skipped.has(agentKey)) continue;
        const agentId = agentCol.text(i);
        if (only && !only.has(agentId)) {
          skipped.add(agentKey);
          continue;
        }
        a = { agentId, events: 0, customersOnboarded: 0, depositsMinor: 0n, withdrawalsMinor: 0n, investmentsMinor: 0n, customers: new Set() };
        agents.set(agentKey, a);
      }
      const id = ids.key(i);
      if (seen.has(id)) {
        result.duplicates++;
        continue;
      }
      seen.add(id);
      a.events++;
      if (money) {
        if (!amounts!.isNull(i)) a[money] += amounts!.values[i]!;
      } else if (!customers.isNull(i)) a.customers.add(customers.key(i));
    }
  }
  return rows;
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

/** Started ahead of use: marked handled at once, so a failure surfaces where it is awaited, not as an unhandled rejection. */
function download(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const p = s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then((o) => o.Body!.transformToByteArray());
  p.catch(() => undefined);
  return p;
}
