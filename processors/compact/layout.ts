import type { ListedObject } from '../core/s3/objects.js';

/**
 * Where compaction reads and writes in the lake, and how its files are named.
 *
 * A Hive partition is a directory `<prefix>event_type=<t>/dt=<YYYY-MM-DD>/`. The export writes
 * `<topic>+<partition>+<first offset>.parquet` there; compaction rewrites the files of one
 * Kafka partition into `<topic>+<partition>+<first>-<last>.compacted-<i>.parquet`, so every
 * file still covers one contiguous offset range of one Kafka partition (what `replay
 * --pipeline` lines its targets up with). Journals and manifests live under `<prefix>_sluice/`:
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
