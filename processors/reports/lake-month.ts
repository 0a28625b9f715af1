import type { S3Client } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { S3Settings } from '../core/s3/client.js';
import { download, isNotFound, listKeys } from '../core/s3/objects.js';
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
  /** Objects downloaded at once (per thread). */
  concurrency?: number;
  /**
   * Threads that read partitions side by side (worker_threads), each with its own S3
   * client from these settings. Default: one per core, when the month has enough files.
   */
  workers?: { count: number; s3: S3Settings } | undefined;
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

/** One partition: an event type and a day, and its objects. */
export interface LakePartition {
  type: string;
  keys: string[];
}

/** What a thread found in its partitions: agents keyed by the raw bytes of their id. */
export interface PartialAggregate {
  agents: Map<string, AgentAcc>;
  files: number;
  rows: number;
  duplicates: number;
  bytes: number;
}

/** Worker threads pay ~0.1 s to start: below this many files one thread is faster. */
const MIN_FILES_PER_WORKER = 48;
const WORKER_FILE = fileURLToPath(new URL('./lake-worker.js', import.meta.url));

export async function aggregateMonth(s3: S3Client, q: MonthQuery): Promise<MonthAggregate> {
  const partitions = await planPartitions(s3, q);
  const total = partitions.reduce((n, p) => n + p.keys.length, 0);
  const threads = q.workers && existsSync(WORKER_FILE) ? Math.min(q.workers.count, Math.floor(total / MIN_FILES_PER_WORKER)) : 0;
  let parts: PartialAggregate[];
  if (threads >= 2) {
    // Whole partitions per thread (a partition's dedupe set stays in one thread), balanced by file count.
    const groups: LakePartition[][] = Array.from({ length: threads }, () => []);
    const load = new Array<number>(threads).fill(0);
    for (const p of [...partitions].sort((a, b) => b.keys.length - a.keys.length)) {
      const i = load.indexOf(Math.min(...load));
      groups[i]!.push(p);
      load[i]! += p.keys.length;
    }
    let done = 0;
    parts = await Promise.all(
      groups.map((g) =>
        runWorker({ s3: q.workers!.s3, bucket: q.bucket, partitions: g, agentIds: q.agentIds ? [...q.agentIds] : undefined, concurrency: q.concurrency }, () => q.onProgress?.(++done, total)),
      ),
    );
  } else {
    let done = 0;
    parts = [await aggregatePartitions(s3, q.bucket, partitions, q.agentIds, q.concurrency ?? 16, () => q.onProgress?.(++done, total))];
  }
  return merge(parts);
}

/** The month's partitions: only `event_type=<t>/dt=<month>-*` of the four docs/domain.md types. */
export async function planPartitions(s3: S3Client, q: Pick<MonthQuery, 'bucket' | 'prefix' | 'month'>): Promise<LakePartition[]> {
  const partitions = new Map<string, LakePartition>();
  for (const type of EVENT_TYPES) {
    for (const key of await listKeys(s3, q.bucket, `${q.prefix}event_type=${type}/dt=${q.month}-`)) {
      if (!key.endsWith('.parquet')) continue;
      const partition = key.slice(0, key.lastIndexOf('/'));
      let p = partitions.get(partition);
      if (!p) partitions.set(partition, (p = { type, keys: [] }));
      p.keys.push(key);
    }
  }
  return [...partitions.values()];
}

/**
 * Reads partitions in this thread: downloads overlap, parsing and counting go in key order.
 * Each partition is counted on its own and added when complete: a file listed but gone when
 * read was replaced by `sluice compact` (its rows are in a compacted file written before the
 * inputs are deleted), so the partition is counted again from a new listing. Between a
 * compaction's outputs and the deletion of its inputs a listing holds both: the per-partition
 * event_id set counts each event once.
 */
export async function aggregatePartitions(
  s3: S3Client,
  bucket: string,
  partitions: readonly LakePartition[],
  only: ReadonlySet<string> | undefined,
  concurrency: number,
  onFile?: () => void,
): Promise<PartialAggregate> {
  const result: PartialAggregate = { agents: new Map(), files: 0, rows: 0, duplicates: 0, bytes: 0 };
  for (const partition of partitions) {
    let keys = partition.keys;
    for (let attempt = 1; ; attempt++) {
      try {
        mergeInto(result, await aggregatePartition(s3, bucket, partition.type, keys, only, concurrency, onFile));
        break;
      } catch (error) {
        if (!isNotFound(error) || attempt >= 5 || keys.length === 0) throw error;
        const dir = keys[0]!.slice(0, keys[0]!.lastIndexOf('/') + 1);
        keys = (await listKeys(s3, bucket, dir)).filter((k) => k.endsWith('.parquet'));
      }
    }
  }
  return result;
}

async function aggregatePartition(
  s3: S3Client,
  bucket: string,
  type: string,
  keys: readonly string[],
  only: ReadonlySet<string> | undefined,
  concurrency: number,
  onFile?: () => void,
): Promise<PartialAggregate> {
  const agents: Agents = { byKey: new Map(), skipped: new Set() };
  const result: PartialAggregate = { agents: agents.byKey, files: 0, rows: 0, duplicates: 0, bytes: 0 };
  const seen = new Set<string>();
  const pending = keys.slice(0, concurrency).map((k) => download(s3, bucket, k));
  // After a failure, downloads still in flight are let go (download() marks each handled).
  for (let i = 0; i < keys.length; i++) {
    const bytes = await pending[i]!;
    if (i + concurrency < keys.length) pending.push(download(s3, bucket, keys[i + concurrency]!));
    result.bytes += bytes.byteLength;
    result.rows += addFile(bytes, type, seen, agents, only, result);
    result.files++;
    onFile?.();
  }
  return result;
}

/** Adds one partition's counts (agents keyed by raw id bytes) into the thread's. */
function mergeInto(into: PartialAggregate, p: PartialAggregate): void {
  into.files += p.files;
  into.rows += p.rows;
  into.duplicates += p.duplicates;
  into.bytes += p.bytes;
  for (const [key, a] of p.agents) {
    const m = into.agents.get(key);
    if (!m) {
      into.agents.set(key, a);
      continue;
    }
    m.events += a.events;
    m.depositsMinor += a.depositsMinor;
    m.withdrawalsMinor += a.withdrawalsMinor;
    m.investmentsMinor += a.investmentsMinor;
    for (const c of a.customers) m.customers.add(c);
  }
}

function merge(parts: PartialAggregate[]): MonthAggregate {
  const byKey = new Map<string, AgentAcc>();
  const out: MonthAggregate = { agents: new Map(), files: 0, rows: 0, duplicates: 0, bytes: 0 };
  for (const p of parts) {
    out.files += p.files;
    out.rows += p.rows;
    out.duplicates += p.duplicates;
    out.bytes += p.bytes;
    for (const [key, a] of p.agents) {
      const m = byKey.get(key);
      if (!m) {
        byKey.set(key, a);
        continue;
      }
      m.events += a.events;
      m.depositsMinor += a.depositsMinor;
      m.withdrawalsMinor += a.withdrawalsMinor;
      m.investmentsMinor += a.investmentsMinor;
      for (const c of a.customers) m.customers.add(c);
    }
  }
  for (const { customers, ...a } of byKey.values()) out.agents.set(a.agentId, { ...a, customersOnboarded: customers.size });
  return out;
}

export interface WorkerInput {
  s3: S3Settings;
  bucket: string;
  partitions: LakePartition[];
  agentIds: string[] | undefined;
  concurrency: number | undefined;
}

type WorkerMessage = { kind: 'file' } | { kind: 'done'; result: PartialAggregate } | { kind: 'error'; message: string } | { kind: 'warning'; name: string; message: string };

/** Warnings of the reader threads, emitted in this thread (where the process routes them) once each, not once per thread and report. */
const threadWarnings = new Set<string>();
function emitThreadWarning(name: string, message: string): void {
  if (threadWarnings.has(`${name}: ${message}`)) return;
  threadWarnings.add(`${name}: ${message}`);
  process.emitWarning(message, { type: name });
}

function runWorker(input: WorkerInput, onFile: () => void): Promise<PartialAggregate> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_FILE, { workerData: input });
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'file') onFile();
      else if (m.kind === 'warning') emitThreadWarning(m.name, m.message);
      else if (m.kind === 'done') resolve(m.result);
      else reject(new Error(`lake reader thread: ${m.message}`));
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (code !== 0) reject(new Error(`lake reader thread exited with ${code}`));
    });
  });
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
