import type { S3Client } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { S3Settings } from '../core/s3/client.js';
import { endianness } from 'node:os';
import { isNotFound, listObjects } from '../core/s3/objects.js';
import { readTypedColumns } from '../core/parquet/s3-columns.js';
import type { StringColumn, TypedColumn } from '../core/parquet/chunk-decoder.js';
import { compactionOf } from '../compact/layout.js';
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
  /** Distinct customers onboarded (created with the agent's first onboarding: most partitions hold money events only). */
  customers: Set<string> | undefined;
  /** Small amounts of the partition's money type summed as a double while exact (see addRowGroup); 0 once the partition is settled. */
  pending: number;
}

/** One partition: an event type and a day, and its objects (with their sizes, from the listing). */
export interface LakePartition {
  type: string;
  files: { key: string; size: number }[];
}

/** What a thread found in its partitions: agents keyed by their id. */
export interface PartialAggregate {
  agents: Map<string, AgentAcc>;
  files: number;
  rows: number;
  duplicates: number;
  bytes: number;
}

/**
 * Worker threads pay ~0.1-0.3 s each to start on an idle machine (seconds on a loaded one:
 * each loads the S3 client and the Parquet reader), paid once: they are kept between reports
 * (see acquireWorker). They are used only for enough work: bytes to decode plus a per-object
 * cost (a request, a footer) counted as 256 KiB an object; a 1M-event compacted month (124
 * objects, 16 MiB) is ~47 MiB of work, read on 2 threads.
 */
const WORK_PER_WORKER = 16 * 1024 * 1024;
const OBJECT_COST = 256 * 1024;
const WORKER_FILE = fileURLToPath(new URL('./lake-worker.js', import.meta.url));

export async function aggregateMonth(s3: S3Client, q: MonthQuery): Promise<MonthAggregate> {
  const partitions = await planPartitions(s3, q);
  const total = partitions.reduce((n, p) => n + p.files.length, 0);
  const work = partitions.reduce((n, p) => n + p.files.reduce((m, f) => m + f.size + OBJECT_COST, 0), 0);
  const threads = q.workers && existsSync(WORKER_FILE) ? Math.min(q.workers.count, Math.floor(work / WORK_PER_WORKER)) : 0;
  let parts: PartialAggregate[];
  if (threads >= 2) {
    // Whole partitions per thread (a partition's dedupe set stays in one thread), balanced by file count.
    const groups: LakePartition[][] = Array.from({ length: threads }, () => []);
    const load = new Array<number>(threads).fill(0);
    const weight = (p: LakePartition) => p.files.reduce((n, f) => n + f.size, 0) + 64 * 1024 * p.files.length;
    for (const p of [...partitions].sort((a, b) => weight(b) - weight(a))) {
      const i = load.indexOf(Math.min(...load));
      groups[i]!.push(p);
      load[i]! += weight(p);
    }
    let done = 0;
    parts = await Promise.all(
      groups.map((g) =>
        runWorker(q.workers!.s3, { bucket: q.bucket, partitions: g, agentIds: q.agentIds ? [...q.agentIds] : undefined, concurrency: q.concurrency }, q.workers!.count, () => q.onProgress?.(++done, total)),
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
    for (const { key, size } of await listObjects(s3, q.bucket, `${q.prefix}event_type=${type}/dt=${q.month}-`)) {
      if (!key.endsWith('.parquet')) continue;
      const partition = key.slice(0, key.lastIndexOf('/'));
      let p = partitions.get(partition);
      if (!p) partitions.set(partition, (p = { type, files: [] }));
      p.files.push({ key, size });
    }
  }
  return [...partitions.values()];
}

/**
 * Reads partitions in this thread, `concurrency` objects at a time across partitions (a
 * compacted partition is one or a few objects). Each partition is counted on its own and
 * added when complete: a file listed but gone when read was replaced by `sluice compact`
 * (its rows are in a compacted file written before the inputs are deleted), so the partition
 * is counted again from a new listing. Between a compaction's outputs and the deletion of its
 * inputs a listing holds both: the per-partition event_id set counts each event once. A
 * partition whose files are all the outputs of one compaction holds every event_id once
 * (the compaction checked it): its event_ids are not read at all.
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
  const prune = only ? [...only].map((a) => Buffer.from(a, 'utf8')) : undefined;
  let pending = [...partitions];
  for (let attempt = 1; pending.length > 0; attempt++) {
    const gone: LakePartition[] = [];
    await readPartitions(s3, bucket, pending, only, prune, concurrency, onFile, result, gone);
    if (gone.length > 0 && attempt >= 5) throw new Error(`lake partitions kept changing while read (5 listings): ${gone.map((p) => dirOf(p)).join(', ')}`);
    pending = [];
    for (const p of gone) {
      const files = (await listObjects(s3, bucket, `${dirOf(p)}/`)).filter((o) => o.key.endsWith('.parquet')).map(({ key, size }) => ({ key, size }));
      pending.push({ type: p.type, files });
    }
  }
  return result;
}

const dirOf = (p: LakePartition) => p.files[0]!.key.slice(0, p.files[0]!.key.lastIndexOf('/'));

interface PartitionState {
  partition: LakePartition;
  acc: PartialAggregate;
  seen: Set<string> | undefined;
  left: number;
  gone: boolean;
}

async function readPartitions(
  s3: S3Client,
  bucket: string,
  partitions: readonly LakePartition[],
  only: ReadonlySet<string> | undefined,
  prune: Uint8Array[] | undefined,
  concurrency: number,
  onFile: (() => void) | undefined,
  into: PartialAggregate,
  gone: LakePartition[],
): Promise<void> {
  const queue: { state: PartitionState; file: { key: string; size: number } }[] = [];
  for (const partition of partitions) {
    if (partition.files.length === 0) continue;
    const compactions = new Set(partition.files.map((f) => compactionOf(f.key)));
    const oneCompaction = compactions.size === 1 && !compactions.has(undefined);
    const state: PartitionState = {
      partition,
      acc: { agents: new Map(), files: 0, rows: 0, duplicates: 0, bytes: 0 },
      seen: oneCompaction ? undefined : new Set(),
      left: partition.files.length,
      gone: false,
    };
    for (const file of partition.files) queue.push({ state, file });
  }
  let next = 0;
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      while (next < queue.length && failures.length === 0) {
        const { state, file } = queue[next++]!;
        if (state.gone) continue;
        try {
          const money = MONEY_TYPES[state.partition.type as keyof typeof MONEY_TYPES];
          const columns = ['agent_id', ...(money ? ['amount_minor'] : ['customer_id']), ...(state.seen ? ['event_id'] : [])];
          const read = await readTypedColumns(s3, bucket, { key: file.key, size: file.size, columns, prune: prune ? { column: 'agent_id', values: prune } : undefined }, (cols, rows) =>
            addRowGroup(cols, rows, money, state, only, into),
          );
          state.acc.bytes += read.bytesFetched;
          state.acc.files++;
          onFile?.();
        } catch (error) {
          if (!isNotFound(error)) {
            failures.push(error);
            continue;
          }
          if (!state.gone) gone.push(state.partition);
          state.gone = true;
        }
        if (--state.left === 0 && !state.gone) {
          settle(state);
          mergeInto(into, state.acc);
        }
      }
    }),
  );
  if (failures.length > 0) throw failures[0];
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
    addAgent(m, a);
  }
}

/**
 * Adds one agent's counts into another. A partition holds one event type, so two of the three
 * sums are zero: skipped (a bigint add allocates, and this runs per agent and partition).
 */
function addAgent(m: AgentAcc, a: AgentAcc): void {
  m.events += a.events;
  if (a.depositsMinor !== 0n) m.depositsMinor += a.depositsMinor;
  if (a.withdrawalsMinor !== 0n) m.withdrawalsMinor += a.withdrawalsMinor;
  if (a.investmentsMinor !== 0n) m.investmentsMinor += a.investmentsMinor;
  if (a.customers) {
    if (!m.customers) m.customers = a.customers;
    else for (const c of a.customers) m.customers.add(c);
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
      addAgent(m, a);
    }
  }
  // An agent with no event counted (its customers were added before its partition was found replaced and read again, and it is not there) is not in the month.
  for (const { customers, pending: _, ...a } of byKey.values()) if (a.events > 0) out.agents.set(a.agentId, { ...a, customersOnboarded: customers?.size ?? 0 });
  return out;
}

/** A reader thread's S3 client settings (given once, when the thread starts). */
export interface WorkerStart {
  s3: S3Settings;
}

/** One job of a reader thread: its partitions in, its partial aggregate out. */
export interface WorkerInput {
  bucket: string;
  partitions: LakePartition[];
  agentIds: string[] | undefined;
  concurrency: number | undefined;
}

type WorkerMessage = { kind: 'ready' } | { kind: 'file' } | { kind: 'done'; result: PartialAggregate } | { kind: 'error'; message: string } | { kind: 'warning'; name: string; message: string };

/** Warnings of the reader threads, emitted in this thread (where the process routes them) once each, not once per thread and report. */
const threadWarnings = new Set<string>();
function emitThreadWarning(name: string, message: string): void {
  if (threadWarnings.has(`${name}: ${message}`)) return;
  threadWarnings.add(`${name}: ${message}`);
  process.emitWarning(message, { type: name });
}

/**
 * Reader threads are kept between reports (a thread's start, its S3 client and Parquet reader
 * loaded, costs ~0.1-0.3 s idle and seconds on a loaded machine: more than a small month's
 * reading). An idle thread is unref'd, so it never keeps the process alive; a thread that
 * failed is dropped. At most `count` idle threads are kept per S3 settings.
 */
interface PooledWorker {
  worker: Worker;
  key: string;
  busy: boolean;
  /** The thread has loaded its modules and compiled its zstd decoder (its 'ready' message). */
  ready: boolean;
  /** The job's handlers while busy. */
  job: { onFile: () => void; resolve: (r: PartialAggregate) => void; reject: (e: Error) => void } | undefined;
}
const pool: PooledWorker[] = [];

function acquireWorker(s3: S3Settings): PooledWorker {
  const key = JSON.stringify(s3);
  const idle = pool.find((w) => !w.busy && w.key === key);
  if (idle) {
    idle.busy = true;
    idle.worker.ref();
    return idle;
  }
  return newWorker(s3, key);
}

/**
 * Starts reader threads ahead of the first report, up to `count` for these S3 settings, idle
 * (unref'd): `sluice reports` calls it when it starts, so that a fresh process's first report
 * does not pay the threads' start (~0.6 s for two on an idle machine, BENCHMARKS.md, Reports
 * over a compacted month). Fewer than two threads are never used (aggregateMonth), so none are
 * started then. Resolves when each thread has loaded its modules and compiled its zstd decoder
 * (which the first report otherwise waits for: BENCHMARKS.md, Reports), or failed (a failed thread
 * is dropped, and the report that needs one starts another, which reports the error).
 */
export async function startReaderThreads(s3: S3Settings, count: number): Promise<void> {
  if (count < 2 || !existsSync(WORKER_FILE)) return;
  const key = JSON.stringify(s3);
  const started: Promise<void>[] = [];
  for (let n = pool.filter((w) => w.key === key).length; n < count; n++) {
    const p = newWorker(s3, key);
    started.push(
      new Promise<void>((resolve) => {
        const done = () => {
          p.worker.off('message', onReady);
          p.worker.off('exit', done);
          // Referenced while it loads (a caller awaiting this keeps the process alive), idle after.
          if (!p.busy) p.worker.unref();
          resolve();
        };
        const onReady = (m: WorkerMessage) => m.kind === 'ready' && done();
        p.worker.on('message', onReady);
        p.worker.once('exit', done);
      }),
    );
    p.busy = false; // a report may take it at once
  }
  await Promise.all(started);
}

let threadsStarted = 0;
/** Reader threads started by this process so far, those alive now, and of those the loaded ones (tests). */
export function readerThreadStats(): { started: number; alive: number; ready: number } {
  return { started: threadsStarted, alive: pool.length, ready: pool.filter((w) => w.ready).length };
}

function newWorker(s3: S3Settings, key: string): PooledWorker {
  threadsStarted++;
  const start: WorkerStart = { s3 };
  const p: PooledWorker = { worker: new Worker(WORKER_FILE, { workerData: start }), key, busy: true, ready: false, job: undefined };
  const fail = (error: Error) => {
    const i = pool.indexOf(p);
    if (i >= 0) pool.splice(i, 1);
    const job = p.job;
    p.job = undefined;
    job?.reject(error);
  };
  p.worker.on('message', (m: WorkerMessage) => {
    if (m.kind === 'ready') return void (p.ready = true);
    if (m.kind === 'warning') return emitThreadWarning(m.name, m.message);
    const job = p.job;
    if (!job) return;
    if (m.kind === 'file') job.onFile();
    else if (m.kind === 'done') {
      p.job = undefined;
      releaseWorker(p);
      job.resolve(m.result);
    } else {
      p.job = undefined;
      releaseWorker(p);
      job.reject(new Error(`lake reader thread: ${m.message}`));
    }
  });
  p.worker.on('error', fail);
  p.worker.on('exit', (code) => fail(new Error(`lake reader thread exited with ${code}`)));
  pool.push(p);
  return p;
}

function releaseWorker(p: PooledWorker): void {
  p.busy = false;
  p.worker.unref();
}

/** Stops the kept reader threads (tests, shutdown); the next report starts new ones. */
export async function stopReaderThreads(): Promise<void> {
  const all = pool.splice(0);
  await Promise.all(all.map((p) => p.worker.terminate()));
}

function runWorker(s3: S3Settings, input: WorkerInput, keep: number, onFile: () => void): Promise<PartialAggregate> {
  const p = acquireWorker(s3);
  return new Promise<PartialAggregate>((resolve, reject) => {
    p.job = { onFile, resolve, reject };
    p.worker.postMessage(input);
  }).finally(() => {
    // Keep at most `keep` idle threads for these settings.
    const idle = pool.filter((w) => !w.busy && w.key === p.key);
    for (const extra of idle.slice(keep)) {
      pool.splice(pool.indexOf(extra), 1);
      void extra.worker.terminate();
    }
  });
}

/** Sums of small amounts are kept in a double while exact (below 2^53) and moved into the bigint before. */
const EXACT_LIMIT = 2 ** 52;

/**
 * One row group's rows into its partition's counts. Columns come as typed arrays
 * (chunk-decoder.ts): agent_id and customer_id as indices into their strings, amount_minor as
 * a BigInt64Array with a presence bitmap. The agent of a string index is looked up once per
 * row group (a dictionary page gives each agent one index; compacted files are sorted by
 * agent, so a PLAIN page's runs are looked up once per run). Amounts below 2^32 are summed
 * as doubles in the agent's `pending` (read from the int64's two 32-bit halves: no BigInt a
 * row or a run) and moved into its exact bigint sum before the double could round and when
 * the partition is complete (settle).
 */
function addRowGroup(
  cols: Map<string, TypedColumn>,
  rows: number,
  money: (typeof MONEY_TYPES)[keyof typeof MONEY_TYPES] | undefined,
  state: PartitionState,
  only: ReadonlySet<string> | undefined,
  into: PartialAggregate,
): void {
  const acc = state.acc;
  const seen = state.seen;
  const agentCol = stringColumn(cols, 'agent_id');
  const agentStrings = agentCol.strings;
  const agentIndex = agentCol.indices;
  const idCol = seen ? stringColumn(cols, 'event_id') : undefined;
  const customerCol = money ? undefined : stringColumn(cols, 'customer_id');
  const amountCol = money ? cols.get('amount_minor') : undefined;
  if (money && amountCol?.kind !== 'int64') throw new Error(`lake column amount_minor is ${amountCol ? amountCol.kind : 'missing'}, not int64`);
  const amounts = amountCol?.kind === 'int64' ? amountCol.values : undefined;
  const present = amountCol?.kind === 'int64' ? amountCol.present : undefined;
  const words = amounts ? new Int32Array(amounts.buffer, amounts.byteOffset, amounts.length * 2) : undefined;
  const lo = LITTLE_ENDIAN ? 0 : 1;
  const hi = 1 - lo;
  acc.rows += rows;
  // Per string index of agent_id: its agent (null: not counted) and, for onboardings, its customer set in the thread.
  const slots: (AgentAcc | null | undefined)[] = new Array(agentStrings.length);
  const customerSlots: (Set<string> | undefined)[] | undefined = money ? undefined : new Array(agentStrings.length);
  let previousIndex = -2;
  let previous: string | undefined;
  let a: AgentAcc | null | undefined = null;
  let customerSet: Set<string> | undefined;
  for (let i = 0; i < rows; i++) {
    const k = agentIndex[i]!;
    if (k !== previousIndex) {
      previousIndex = k;
      if (k < 0) {
        a = null;
        previous = undefined;
      } else {
        const agentId = agentStrings[k]!;
        const last: AgentAcc | null | undefined = a;
        a = slots[k];
        if (a === undefined) {
          // A PLAIN page gives every row its own index: the previous row's agent when the string is the same.
          a = agentId === previous && i > 0 ? last : only && !only.has(agentId) ? null : agentOf(acc.agents, agentId);
          slots[k] = a;
          // Customers go straight into the thread's set of the agent: a union, so a partition counted again adds nothing twice.
          if (a && customerSlots) customerSlots[k] = agentOf(into.agents, agentId).customers ??= new Set();
        }
        previous = agentId;
        if (customerSlots) customerSet = customerSlots[k];
      }
    }
    if (!a) continue;
    if (idCol) {
      const j = idCol.indices[i]!;
      const id = j < 0 ? '' : idCol.strings[j]!;
      if (seen!.has(id)) {
        acc.duplicates++;
        continue;
      }
      seen!.add(id);
    }
    a.events++;
    if (money) {
      if (present !== undefined && present[i] === 0) continue;
      if (words![2 * i + hi] === 0) {
        a.pending += words![2 * i + lo]! >>> 0;
        if (a.pending >= EXACT_LIMIT) {
          a[money] += BigInt(a.pending);
          a.pending = 0;
        }
      } else a[money] += amounts![i]!;
    } else {
      const j = customerCol!.indices[i]!;
      if (j >= 0) customerSet!.add(customerCol!.strings[j]!);
    }
  }
}

/** Moves a complete partition's pending small sums into its agents' exact sums. */
function settle(state: PartitionState): void {
  const money = MONEY_TYPES[state.partition.type as keyof typeof MONEY_TYPES];
  if (!money) return;
  for (const a of state.acc.agents.values()) {
    if (a.pending === 0) continue;
    a[money] += BigInt(a.pending);
    a.pending = 0;
  }
}

function stringColumn(cols: Map<string, TypedColumn>, name: string): StringColumn {
  const c = cols.get(name);
  if (c?.kind !== 'string') throw new Error(`lake column ${name} is ${c ? c.kind : 'missing'}, not a string`);
  return c;
}

const LITTLE_ENDIAN = endianness() === 'LE';

function agentOf(agents: Map<string, AgentAcc>, agentId: string): AgentAcc {
  let a = agents.get(agentId);
  if (!a) agents.set(agentId, (a = { agentId, events: 0, customersOnboarded: 0, depositsMinor: 0n, withdrawalsMinor: 0n, investmentsMinor: 0n, customers: undefined, pending: 0 }));
  return a;
}
