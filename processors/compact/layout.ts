import type { ListedObject } from '../core/s3/objects.js';

/**
 * Where compaction reads and writes in the lake, and how its files are named.
 *
 * A Hive partition is a directory `<prefix>event_type=<t>/dt=<YYYY-MM-DD>/`. The export writes
 * `<topic>+<partition>+<first offset>.parquet` there; compaction rewrites the files of all the
 * Kafka partitions of a topic into `<topic>+merged-<hash>.compacted-<i>.parquet`, whose object
 * metadata `x-amz-meta-sluice-offsets` gives, per Kafka partition, the contiguous offset range
 * the file holds the partition's rows of (what `replay --pipeline` lines its targets up with).
 * Lakes compacted before files were merged hold `<topic>+<partition>+<first>-<last>.compacted-<i>.parquet`
 * (one Kafka partition, its range in the name): still read, and merged by the next compaction
 * of their partition. Journals and manifests live under `<prefix>_sluice/`:
 * Hive, Athena, Spark and Trino skip directories starting with `_`, and `*.parquet` globs one
 * level below the partition directories never match them.
 */

/** The directory (under the lake prefix) where Sluice keeps its own state. */
export const STATE_DIR = '_sluice/';

export interface FileCoordinates {
  topic: string;
  partition: number;
  firstOffset: bigint;
  /** Known from the name for compacted files; export files carry it in x-amz-meta-sluice-last-offset. */
  lastOffset?: bigint;
  /** Index of a compacted output among its group's outputs. */
  part?: number;
}

const EXPORT_NAME = /^(?<topic>[A-Za-z0-9._-]+)\+(?<partition>\d+)\+(?<first>\d+)\.parquet$/;
const COMPACTED_NAME = /^(?<topic>[A-Za-z0-9._-]+)\+(?<partition>\d+)\+(?<first>\d+)-(?<last>\d+)\.compacted-(?<part>\d+)\.parquet$/;

/** The coordinates of an export file name or a compacted one (basename only); undefined for anything else. */
export function fileCoordinates(key: string): FileCoordinates | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const c = COMPACTED_NAME.exec(name)?.groups;
  if (c) return { topic: c.topic!, partition: Number(c.partition), firstOffset: BigInt(c.first!), lastOffset: BigInt(c.last!), part: Number(c.part) };
  const e = EXPORT_NAME.exec(name)?.groups;
  if (e) return { topic: e.topic!, partition: Number(e.partition), firstOffset: BigInt(e.first!) };
  return undefined;
}

const MERGED_NAME = /^(?<topic>[A-Za-z0-9._-]+)\+merged-(?<hash>[0-9a-f]{16})\.compacted-(?<part>\d+)\.parquet$/;

/** A compacted file holding several Kafka partitions: its topic and part; the offset ranges are in its object metadata (offsetRanges). */
export function mergedFile(key: string): { topic: string; part: number } | undefined {
  const m = MERGED_NAME.exec(key.slice(key.lastIndexOf('/') + 1))?.groups;
  return m ? { topic: m.topic!, part: Number(m.part) } : undefined;
}

export function mergedKey(dir: string, topic: string, hash: string, part: number): string {
  return `${dir}/${topic}+merged-${hash}.compacted-${part}.parquet`;
}

/**
 * What one compaction wrote: its outputs share the name up to `.compacted-` (the inputs'
 * fingerprint), and every event_id is in exactly one of them. Undefined for an export file.
 */
export function compactionOf(key: string): string | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  if (!COMPACTED_NAME.test(name) && !MERGED_NAME.test(name)) return undefined;
  return key.slice(0, key.lastIndexOf('.compacted-'));
}

/** Per Kafka partition, the first and last offset of the records a file holds rows of (both inclusive). */
export type OffsetRanges = Map<number, { first: bigint; last: bigint }>;

/** The object metadata key (x-amz-meta-sluice-offsets) of a merged file's ranges: `0:12-340;3:5-77`. */
export const OFFSETS_METADATA = 'sluice-offsets';
/** S3 allows 2 KiB of user metadata an object: files whose ranges would not fit are split by Kafka partition. */
export const OFFSETS_METADATA_MAX = 1500;

export function formatOffsetRanges(r: OffsetRanges): string {
  return [...r].sort((a, b) => a[0] - b[0]).map(([p, x]) => `${p}:${x.first}-${x.last}`).join(';');
}

export function parseOffsetRanges(text: string | undefined): OffsetRanges | undefined {
  if (text === undefined || !/^\d+:\d+-\d+(;\d+:\d+-\d+)*$/.test(text)) return undefined;
  const out: OffsetRanges = new Map();
  for (const part of text.split(';')) {
    const [p, range] = part.split(':') as [string, string];
    const [first, last] = range.split('-') as [string, string];
    out.set(Number(p), { first: BigInt(first), last: BigInt(last) });
  }
  return out;
}

/** The coordinates of a compacted file's key (undefined for an export file or anything else). */
export function compactedCoordinates(key: string): (FileCoordinates & { lastOffset: bigint }) | undefined {
  const c = fileCoordinates(key);
  return c?.lastOffset !== undefined ? (c as FileCoordinates & { lastOffset: bigint }) : undefined;
}

export function compactedKey(dir: string, c: { topic: string; partition: number; firstOffset: bigint; lastOffset: bigint }, part: number): string {
  return `${dir}/${c.topic}+${c.partition}+${c.firstOffset}-${c.lastOffset}.compacted-${part}.parquet`;
}

/** A Hive partition of the lake: its directory (no trailing slash) and day. */
export interface LakePartitionDir {
  dir: string;
  /** The directory below the lake prefix, e.g. `event_type=deposit_made/dt=2026-10-01`. */
  relative: string;
  day: string;
}

const DAY = /(?:^|\/)dt=(\d{4}-\d{2}-\d{2})(?:\/|$)/;

/** The partition a key belongs to (undefined outside `dt=` partitions and for Sluice's own state). */
export function partitionOf(prefix: string, key: string): LakePartitionDir | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const relativeKey = key.slice(prefix.length);
  if (relativeKey.startsWith(STATE_DIR)) return undefined;
  const slash = relativeKey.lastIndexOf('/');
  if (slash < 0) return undefined;
  const relative = relativeKey.slice(0, slash);
  const day = DAY.exec(relative)?.[1];
  return day ? { dir: `${prefix}${relative}`, relative, day } : undefined;
}

/** The partition of a directory given on the command line (with or without the prefix or a trailing slash). */
export function partitionDir(prefix: string, given: string): LakePartitionDir | undefined {
  const trimmed = given.replace(/\/+$/, '');
  const relative = trimmed.startsWith(prefix) ? trimmed.slice(prefix.length) : trimmed;
  return partitionOf(prefix, `${prefix}${relative}/x.parquet`);
}

/** A partition is closed once its day has ended and the grace for late events has passed. */
export function isClosed(day: string, graceMs: number, now: Date): boolean {
  return Date.parse(`${day}T00:00:00Z`) + 86_400_000 + graceMs <= now.getTime();
}

export const journalKey = (prefix: string, p: LakePartitionDir) => `${prefix}${STATE_DIR}compaction/${p.relative}/journal.json`;
/** Athena's symlink manifest layout: a text file of `s3://` URIs, one a line. */
export const manifestKey = (prefix: string, p: LakePartitionDir) => `${prefix}${STATE_DIR}manifests/${p.relative}/manifest`;

/** The partition's data files (Parquet files only, sorted by key). */
export function dataFiles(objects: readonly ListedObject[]): ListedObject[] {
  return objects.filter((o) => o.key.endsWith('.parquet'));
}
