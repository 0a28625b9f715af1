import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PermanentError } from '../core/errors/errors.js';
import { withRetry } from '../core/errors/retry.js';
import type { Logger } from '../core/log/logger.js';
import type { ParquetCompression } from '../core/parquet/batch-writer.js';
import type { LakeSchema } from '../core/parquet/lake-schema.js';
import { deleteKeys, download, isNotFound, listObjects, type ListedObject } from '../core/s3/objects.js';
import { uploadDurably } from '../core/s3/upload.js';
import { OBJECT_METADATA } from '../export/formats.js';
import { deleteJournal, readJournal, writeJournal, type Journal } from './journal.js';
import { compactedKey, dataFiles, fileCoordinates, formatOffsetRanges, isClosed, journalKey, manifestKey, mergedFile, mergedKey, OFFSETS_METADATA, OFFSETS_METADATA_MAX, parseOffsetRanges, partitionOf, type FileCoordinates, type LakePartitionDir, type OffsetRanges } from './layout.js';
import { readColumns } from '../core/parquet/s3-columns.js';
import { compareIds, IdBuckets } from './id-check.js';
import { rewrite } from './rewrite.js';

/**
 * Compaction of closed lake partitions (see docs/lake-compaction.md).
 *
 * Per partition: finish or roll back what a crashed run left (the journal), then per topic,
 * rewrite the files the export is done with, of all its Kafka partitions, into ceil(bytes /
 * target) sorted files that keep each Kafka partition's offset range in their object metadata
 * (planPartition), read them back and check their rows and event ids against the inputs, switch
 * the partition's manifest to the new set, and only then delete the inputs.
 *
 * "Done with" is proved, not guessed: a file is an input only when the export's consumer
 * group has committed an offset past its last record (x-amz-meta-sluice-last-offset, which
 * the export writes on every object). Until then a crashed export may write that same key
 * again, which after a compaction would bring its rows back a second time.
 */

export interface CompactOptions {
  s3: S3Client;
  bucket: string;
  /** The lake's prefix, ending with `/`. */
  prefix: string;
  schema: LakeSchema;
  compression: ParquetCompression;
  targetBytes: number;
  rowGroupSize: number;
  /** A partition is compacted once its day has ended and this long has passed. */
  graceMs: number;
  /** The export's committed offsets of a topic (partition -> next offset to read). */
  committedOffsets: (topic: string) => Promise<Map<number, bigint>>;
  pipelineName: string;
  logger: Logger;
  now?: () => Date;
  dryRun?: boolean;
  /** Input files downloaded at once. */
  concurrency?: number;
  /** Bytes of rows a partition's sort holds in memory before it spills a sorted run to disk (default 256 MiB). */
  sortMemoryBytes?: number;
  /** Where sorted runs and output files are written before upload (default the OS temp directory). */
  tempDir?: string;
}

export const SORT_MEMORY_DEFAULT = 256 * 1024 * 1024;

export interface PartitionOutcome {
  partition: string;
  /** What the journal of a crashed run needed: nothing, a roll-back or a roll-forward. */
  recovered: 'none' | 'rolled_back' | 'finished';
  inputs: number;
  outputs: number;
  inputBytes: number;
  outputBytes: number;
  rows: number;
  duplicatesDropped: number;
  /** Files left alone because the export has not committed past them. */
  uncommitted: number;
  skipped?: 'open' | 'nothing_to_do' | 'dry_run';
}

type LakeFile = ListedObject & { c: FileCoordinates };

/** One rewrite: its inputs, the offset ranges they hold per Kafka partition, the keys and object metadata of its outputs. */
interface Plan {
  topic: string;
  inputs: ListedObject[];
  ranges: OffsetRanges;
  parts: number;
  keys: string[];
  objectMetadata: Record<string, string>;
}

/** Every closed partition under the prefix (one listing of the lake). */
export async function closedPartitions(o: Pick<CompactOptions, 's3' | 'bucket' | 'prefix' | 'graceMs' | 'now'>): Promise<LakePartitionDir[]> {
  const now = (o.now ?? (() => new Date()))();
  const found = new Map<string, LakePartitionDir>();
  for (const obj of await listObjects(o.s3, o.bucket, o.prefix)) {
    const p = partitionOf(o.prefix, obj.key);
    if (p && !found.has(p.dir) && isClosed(p.day, o.graceMs, now)) found.set(p.dir, p);
  }
  // Partitions whose journal survived a crash but whose files are all gone are not in the listing: recovery finds them through their journal.
  for (const obj of await listObjects(o.s3, o.bucket, `${o.prefix}_sluice/compaction/`)) {
    const relative = obj.key.slice(`${o.prefix}_sluice/compaction/`.length).replace(/\/journal\.json$/, '');
    const p = partitionOf(o.prefix, `${o.prefix}${relative}/x.parquet`);
    if (p && !found.has(p.dir)) found.set(p.dir, p);
  }
  return [...found.values()].sort((a, b) => (a.dir < b.dir ? -1 : 1));
}

export async function compactPartition(o: CompactOptions, p: LakePartitionDir): Promise<PartitionOutcome> {
  const outcome: PartitionOutcome = { partition: p.relative, recovered: 'none', inputs: 0, outputs: 0, inputBytes: 0, outputBytes: 0, rows: 0, duplicatesDropped: 0, uncommitted: 0 };
  const jKey = journalKey(o.prefix, p);
  const pending = await readJournal(o.s3, o.bucket, jKey);
  if (pending) outcome.recovered = await recover(o, p, pending);
  const now = (o.now ?? (() => new Date()))();
  if (!isClosed(p.day, o.graceMs, now)) return { ...outcome, skipped: 'open' };

  const listed = dataFiles(await listObjects(o.s3, o.bucket, `${p.dir}/`));
  const plans = await planPartition(o, p, listed, outcome);
  if (plans.length === 0) {
    await writeManifest(o, p, listed.map((f) => f.key));
    return { ...outcome, skipped: 'nothing_to_do' };
  }
  const inputs = plans.flatMap((pl) => pl.inputs);
  outcome.inputs = inputs.length;
  outcome.inputBytes = inputs.reduce((n, f) => n + f.size, 0);
  if (o.dryRun) return { ...outcome, skipped: 'dry_run' };

  const outputs = plans.flatMap((pl) => pl.keys);
  const overlap = outputs.filter((k) => inputs.some((f) => f.key === k));
  if (overlap.length > 0) throw new PermanentError(`partition ${p.relative}: compaction would overwrite its own input ${overlap[0]}`);
  const journal: Journal = {
    version: 1,
    partition: p.relative,
    state: 'writing',
    startedAt: now.toISOString(),
    inputs: inputs.map((f) => ({ key: f.key, etag: f.etag, size: f.size })),
    outputs,
  };
  await writeJournal(o.s3, o.bucket, jKey, journal);

  for (const pl of plans) {
    const dir = await mkdtemp(join(o.tempDir ?? tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
    try {
      const result = await rewrite(downloadAll(o, pl.inputs), {
        schema: o.schema,
        compression: o.compression,
        rowGroupSize: o.rowGroupSize,
        parts: pl.parts,
        dir,
        memoryBytes: o.sortMemoryBytes ?? SORT_MEMORY_DEFAULT,
        metadata: { 'sluice.pipeline': o.pipelineName, 'sluice.compacted': 'true', 'sluice.sorted_by': 'agent_id,occurred_at,event_id', 'sluice.offsets': `${pl.topic}:${formatOffsetRanges(pl.ranges)}` },
      });
      const rows = result.parts.reduce((n, x) => n + x.rows, 0);
      if (rows !== result.inputRows - result.duplicates) throw new PermanentError(`partition ${p.relative}: rewrite wrote ${rows} rows of ${result.inputRows - result.duplicates}`);
      const readBack = new IdBuckets(dir, 'read', result.written.buckets);
      // Fewer rows than parts leaves planned keys empty: they are not written (the journal lists them; deleting a missing key is harmless).
      for (let i = 0; i < result.parts.length; i++) {
        const part = result.parts[i]!;
        await uploadDurably(o.s3, {
          bucket: o.bucket,
          key: pl.keys[i]!,
          // Streamed from the temp file: memory holds a part or a few, not the output (up to --target-bytes).
          body: { file: part.path },
          contentType: 'application/vnd.apache.parquet',
          metadata: {
            ...pl.objectMetadata,
            [OBJECT_METADATA.records]: String(part.rows),
            'sluice-compacted-inputs': String(pl.inputs.length),
          },
          partSize: UPLOAD_PART_BYTES,
          partConcurrency: UPLOAD_PART_CONCURRENCY,
          logger: o.logger,
          policy: { maxAttempts: 8 },
        });
        // Read back from S3, not from disk: what readers will get.
        const back = await readBackIds(o, pl.keys[i]!, part.bytes, readBack);
        if (back !== part.rows) throw new PermanentError(`partition ${p.relative}: ${pl.keys[i]} read back with ${back} rows, written with ${part.rows}; the inputs stay, the next run rolls it back`);
        outcome.outputBytes += part.bytes;
        outcome.outputs++;
      }
      readBack.close();
      const problem = compareIds(result.written, readBack);
      if (problem) throw new PermanentError(`partition ${p.relative}: the compacted files do not hold the inputs' event ids: ${problem}; the inputs stay, the next run rolls it back`);
      outcome.rows += rows;
      outcome.duplicatesDropped += result.duplicates;
      o.logger.debug({ partition: p.relative, topic: pl.topic, rows, runs: result.runs, spilledBytes: result.spilledBytes }, 'partition rewritten');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  // The inputs must be the very objects that were read: an ETag that changed means someone rewrote one (a replay): roll back.
  const now2 = new Map(dataFiles(await listObjects(o.s3, o.bucket, `${p.dir}/`)).map((f) => [f.key, f] as const));
  const changed = inputs.filter((f) => now2.get(f.key)?.etag !== f.etag);
  if (changed.length > 0) {
    o.logger.warn({ partition: p.relative, changed: changed.map((f) => f.key) }, 'inputs changed while compacting; rolled back, the next run tries again');
    await deleteKeys(o.s3, o.bucket, outputs);
    await deleteJournal(o.s3, o.bucket, jKey);
    return { ...outcome, outputs: 0, outputBytes: 0, skipped: 'nothing_to_do' };
  }
  await writeJournal(o.s3, o.bucket, jKey, { ...journal, state: 'swapping', rows: outcome.rows });
  await finishSwap(o, p, { ...journal, state: 'swapping' });
  return outcome;
}

/**
 * What to rewrite in a partition, per topic: the files the export is done with (per Kafka
 * partition, committedFiles) and earlier merged files whose every range is committed, into
 * ceil(bytes / target) merged files whose object metadata keeps each Kafka partition's offset
 * range. A topic whose ranges would not fit in object metadata (S3 allows 2 KiB) is compacted
 * per Kafka partition instead, with the range in the file name.
 */
async function planPartition(o: CompactOptions, p: LakePartitionDir, listed: readonly ListedObject[], outcome: PartitionOutcome): Promise<Plan[]> {
  const topics = new Map<string, { byPartition: Map<number, LakeFile[]>; merged: ListedObject[] }>();
  const topicOf = (t: string) => {
    let g = topics.get(t);
    if (!g) topics.set(t, (g = { byPartition: new Map(), merged: [] }));
    return g;
  };
  for (const f of listed) {
    const m = mergedFile(f.key);
    if (m) {
      topicOf(m.topic).merged.push(f);
      continue;
    }
    const c = fileCoordinates(f.key);
    if (!c) continue; // not a file of the export or of compaction: left as is
    const g = topicOf(c.topic);
    const list = g.byPartition.get(c.partition) ?? [];
    list.push({ ...f, c });
    g.byPartition.set(c.partition, list);
  }
  const plans: Plan[] = [];
  for (const [topic, g] of topics) {
    const committed = await o.committedOffsets(topic);
    const perPartition: { partition: number; inputs: LakeFile[]; first: bigint; last: bigint }[] = [];
    for (const [partition, files] of g.byPartition) {
      files.sort((a, b) => (a.c.firstOffset < b.c.firstOffset ? -1 : a.c.firstOffset > b.c.firstOffset ? 1 : (a.c.part ?? 0) - (b.c.part ?? 0)));
      const done = await committedFiles(o, files, committed.get(partition));
      outcome.uncommitted += files.length - done.files.length;
      if (done.files.length > 0) perPartition.push({ partition, inputs: done.files, first: done.files[0]!.c.firstOffset, last: done.last });
    }
    const mergedInputs: { file: ListedObject; ranges: OffsetRanges }[] = [];
    for (const f of g.merged) {
      const ranges = await rangesOf(o, f.key);
      if (ranges && [...ranges].every(([q, r]) => { const c = committed.get(q); return c !== undefined && r.last < c; })) mergedInputs.push({ file: f, ranges });
      else outcome.uncommitted++;
    }
    const ranges: OffsetRanges = new Map();
    const widen = (q: number, first: bigint, last: bigint) => {
      const r = ranges.get(q);
      ranges.set(q, r ? { first: first < r.first ? first : r.first, last: last > r.last ? last : r.last } : { first, last });
    };
    for (const x of perPartition) widen(x.partition, x.first, x.last);
    for (const m of mergedInputs) for (const [q, r] of m.ranges) widen(q, r.first, r.last);
    const partsFor = (files: readonly ListedObject[]) => Math.max(1, Math.ceil(files.reduce((n, f) => n + f.size, 0) / o.targetBytes));
    if (formatOffsetRanges(ranges).length <= OFFSETS_METADATA_MAX) {
      const inputs = [...perPartition.flatMap((x) => x.inputs), ...mergedInputs.map((m) => m.file)];
      const parts = partsFor(inputs);
      // Already as few files as the target allows: nothing to gain.
      if (inputs.length <= parts) continue;
      const formatted = formatOffsetRanges(ranges);
      const hash = createHash('sha256').update(`${topic}|${formatted}|${inputs.map((f) => `${f.key}@${f.etag}`).sort().join(',')}`).digest('hex').slice(0, 16);
      plans.push({ topic, inputs, ranges, parts, keys: Array.from({ length: parts }, (_, i) => mergedKey(p.dir, topic, hash, i)), objectMetadata: { [OFFSETS_METADATA]: formatted } });
      continue;
    }
    // Too many Kafka partitions to list in one object's metadata: a file per Kafka partition (merged files of the topic stay as they are).
    for (const x of perPartition) {
      const parts = partsFor(x.inputs);
      if (x.inputs.length <= parts) continue;
      const c = { topic, partition: x.partition, firstOffset: x.first, lastOffset: x.last };
      plans.push({
        topic,
        inputs: x.inputs,
        ranges: new Map([[x.partition, { first: x.first, last: x.last }]]),
        parts,
        keys: Array.from({ length: parts }, (_, i) => compactedKey(p.dir, c, i)),
        objectMetadata: { [OBJECT_METADATA.firstOffset]: x.first.toString(), [OBJECT_METADATA.lastOffset]: x.last.toString() },
      });
    }
  }
  return plans;
}

/**
 * The files the export is done with, in offset order: those before the committed offset
 * whose last record (the newest one's x-amz-meta-sluice-last-offset, or a compacted file's
 * name) is before it too.
 */
async function committedFiles(o: CompactOptions, files: LakeFile[], committed: bigint | undefined): Promise<{ files: LakeFile[]; last: bigint }> {
  if (committed === undefined) return { files: [], last: -1n };
  const candidates = files.filter((f) => f.c.firstOffset < committed);
  while (candidates.length > 0) {
    const newest = candidates.at(-1)!;
    const last = newest.c.lastOffset ?? (await lastOffsetOf(o, newest.key));
    if (last !== undefined && last < committed) return { files: candidates, last };
    candidates.pop();
  }
  return { files: [], last: -1n };
}

/** A merged file's offset ranges (its x-amz-meta-sluice-offsets); undefined when it is gone or has none. */
async function rangesOf(o: CompactOptions, key: string): Promise<OffsetRanges | undefined> {
  try {
    const head = await o.s3.send(new HeadObjectCommand({ Bucket: o.bucket, Key: key }));
    return parseOffsetRanges(head.Metadata?.[OFFSETS_METADATA]);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function lastOffsetOf(o: CompactOptions, key: string): Promise<bigint | undefined> {
  try {
    const head = await o.s3.send(new HeadObjectCommand({ Bucket: o.bucket, Key: key }));
    const last = head.Metadata?.[OBJECT_METADATA.lastOffset];
    return last !== undefined && /^\d+$/.test(last) ? BigInt(last) : undefined;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Outputs are uploaded from their temp file in parts of this size, this many at once: at most 64 MiB of an output in memory. */
const UPLOAD_PART_BYTES = 16 * 1024 * 1024;
const UPLOAD_PART_CONCURRENCY = 4;

/** Bytes of input objects downloaded ahead of the sort (one object at least, whatever its size). */
const PREFETCH_BYTES = 64 * 1024 * 1024;

/** The inputs' bytes in order, up to `concurrency` downloads and PREFETCH_BYTES ahead. */
async function* downloadAll(o: CompactOptions, files: readonly ListedObject[]): AsyncGenerator<Uint8Array> {
  const window = Math.max(1, o.concurrency ?? 16);
  const pending: { bytes: Promise<Uint8Array>; size: number }[] = [];
  let ahead = 0;
  let next = 0;
  const fill = () => {
    while (next < files.length && pending.length < window && (pending.length === 0 || ahead + files[next]!.size <= PREFETCH_BYTES)) {
      const f = files[next++]!;
      // Retried: a prefetched body can stall while the sort holds the event loop, and a server may hang up on it (ECONNRESET).
      const bytes = withRetry(() => download(o.s3, o.bucket, f.key), {
        policy: { maxAttempts: 5 },
        onRetry: (error, attempt) => o.logger.warn({ key: f.key, attempt, err: error }, 'download of a compaction input failed, retrying'),
      });
      bytes.catch(() => undefined); // awaited in order below; a failure surfaces there
      pending.push({ bytes, size: f.size });
      ahead += f.size;
    }
  };
  fill();
  while (pending.length > 0) {
    const head = pending.shift()!;
    const bytes = await head.bytes;
    ahead -= head.size;
    fill();
    yield bytes;
  }
}

/** Reads a written file's event ids back from S3 into buckets (a row group at a time); returns its rows. */
async function readBackIds(o: CompactOptions, key: string, size: number, into?: IdBuckets): Promise<number> {
  let rows = 0;
  await readColumns(o.s3, o.bucket, { key, size, columns: ['event_id'] }, (columns, n) => {
    rows += n;
    if (!into) return;
    const ids = columns.get('event_id')!;
    for (let i = 0; i < n; i++) into.add(Buffer.from(String(ids[i]), 'utf8').toString('latin1'));
  });
  return rows;
}

/** Temp directories of compactions, `<prefix><pid>-<random>`: those of a process that is gone are removed by the next run. */
const TEMP_PREFIX = 'sluice-compact-';

async function removeStaleTempDirs(o: CompactOptions): Promise<void> {
  const base = o.tempDir ?? tmpdir();
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = new RegExp(`^${TEMP_PREFIX}(\\d+)-`).exec(name)?.[1];
    if (!pid || Number(pid) === process.pid || alive(Number(pid))) continue;
    await rm(join(base, name), { recursive: true, force: true });
    o.logger.info({ dir: join(base, name) }, 'removed the temp directory of a compaction that stopped (its journal rolls it back or finishes it)');
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The swap's second half, also what the next run does after a crash in it: manifest first, then the inputs go. */
async function finishSwap(o: CompactOptions, p: LakePartitionDir, journal: Journal): Promise<void> {
  const inputs = new Set(journal.inputs.map((f) => f.key));
  const current = dataFiles(await listObjects(o.s3, o.bucket, `${p.dir}/`)).map((f) => f.key);
  const outputs = new Set(journal.outputs.filter((k) => current.includes(k)));
  await writeManifest(
    o,
    p,
    current.filter((k) => !inputs.has(k) || outputs.has(k)),
  );
  await deleteKeys(o.s3, o.bucket, [...inputs]);
  await deleteJournal(o.s3, o.bucket, journalKey(o.prefix, p));
}

async function recover(o: CompactOptions, p: LakePartitionDir, journal: Journal): Promise<'rolled_back' | 'finished'> {
  if (journal.state === 'writing') {
    await deleteKeys(o.s3, o.bucket, journal.outputs);
    await deleteJournal(o.s3, o.bucket, journalKey(o.prefix, p));
    o.logger.warn({ partition: p.relative, outputs: journal.outputs.length, startedAt: journal.startedAt }, 'a compaction stopped before its swap: rolled back (its outputs deleted, its inputs untouched)');
    return 'rolled_back';
  }
  // swapping: every output was written and checked before this state was written; make sure they are still there.
  const present = new Map(dataFiles(await listObjects(o.s3, o.bucket, `${p.dir}/`)).map((f) => [f.key, f] as const));
  const missing = journal.outputs.filter((k) => !present.has(k));
  // Outputs a rewrite left empty were never written: the journal's row count says whether what is there holds everything.
  if (missing.length > 0) {
    let rows = 0;
    for (const k of journal.outputs) {
      const f = present.get(k);
      if (f) rows += await readBackIds(o, k, f.size);
    }
    if (rows !== journal.rows) {
      throw new PermanentError(
        `partition ${p.relative}: the compaction journal ${journalKey(o.prefix, p)} is swapping but its outputs hold ${rows} rows of ${String(journal.rows)} (${missing.length} missing): an operator removed them? Restore them or the inputs before deleting the journal`,
      );
    }
  }
  await finishSwap(o, p, journal);
  o.logger.warn({ partition: p.relative, inputs: journal.inputs.length, startedAt: journal.startedAt }, 'a compaction stopped during its swap: finished (its remaining inputs deleted)');
  return 'finished';
}

/** The partition's manifest: every data file a reader should read, as `s3://` URIs (Athena symlink format; DuckDB reads it as a list). */
async function writeManifest(o: CompactOptions, p: LakePartitionDir, keys: readonly string[]): Promise<void> {
  const body = keys.map((k) => `s3://${o.bucket}/${k}\n`).join('');
  const key = manifestKey(o.prefix, p);
  try {
    if ((await (await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }))).Body!.transformToString()) === body) return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  await o.s3.send(new PutObjectCommand({ Bucket: o.bucket, Key: key, Body: body, ContentType: 'text/plain; charset=utf-8' }));
}

/**
 * Every closed partition, `partitionConcurrency` at a time (default 4); a failed partition is
 * logged and the others go on. The export's committed offsets are read once a run: an older
 * committed offset only leaves more files for the next run.
 */
export async function compactLake(o: CompactOptions & { partitionConcurrency?: number }, only?: LakePartitionDir): Promise<{ outcomes: PartitionOutcome[]; failed: number }> {
  await removeStaleTempDirs(o);
  const partitions = only ? [only] : await closedPartitions(o);
  const offsets = new Map<string, Promise<Map<number, bigint>>>();
  const run: CompactOptions = {
    ...o,
    committedOffsets: (topic) => {
      let p = offsets.get(topic);
      if (!p) offsets.set(topic, (p = o.committedOffsets(topic)));
      return p;
    },
  };
  const outcomes: PartitionOutcome[] = [];
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.partitionConcurrency ?? 4, partitions.length) }, async () => {
      while (next < partitions.length) {
        const p = partitions[next++]!;
        try {
          const outcome = await compactPartition(run, p);
          outcomes.push(outcome);
          if (!outcome.skipped || outcome.recovered !== 'none') o.logger.info(outcome, 'partition compacted');
        } catch (error) {
          failed++;
          o.logger.error({ err: error, partition: p.relative }, 'partition compaction failed; its journal makes the next run finish or roll it back');
        }
      }
    }),
  );
  return { outcomes, failed };
}
