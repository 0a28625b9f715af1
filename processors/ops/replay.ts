import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Admin } from 'kafkajs';
import { parseDocument } from 'yaml';
import { PermanentError } from '../core/errors/errors.js';
import type { PipelineConfig } from '../core/pipeline/pipeline.js';
import { keyCoordinates, staticPrefix } from '../core/pipeline/path-template.js';
import { deleteKeys, listKeys } from '../core/s3/objects.js';
import { compactedCoordinates, mergedFile, OFFSETS_METADATA, parseOffsetRanges, type OffsetRanges } from '../compact/layout.js';

/**
 * Replay by offset reset. A plan shows, per partition, the group's committed offset and the
 * target, before anything changes; executing it is refused while the group has members.
 * With the pipeline file, the objects the replay will write again (keys whose first offset
 * is at or after the target) are deleted first, so the re-export does not leave a file of
 * the old run beside a file of the new one where batch boundaries differ; object keys are
 * deterministic, so what the replay writes is the same data under the same layout.
 */

export type ReplayTarget = { kind: 'earliest' } | { kind: 'datetime'; at: Date } | { kind: 'offset'; offset: bigint } | { kind: 'shift'; by: bigint };

export interface PartitionPlan {
  partition: number;
  low: bigint;
  high: bigint;
  committed: bigint | null;
  target: bigint;
  /** The target asked for, when aligning to the pipeline's files moved it back. */
  requested: bigint;
}

export interface ReplayPlan {
  group: string;
  topic: string;
  partitions: PartitionPlan[];
  /** Members of the group right now (a replay needs none). */
  members: number;
  state: string;
}

export class ReplayRefusedError extends PermanentError {}

export async function planReplay(admin: Admin, group: string, topic: string, target: ReplayTarget, only?: number[]): Promise<ReplayPlan> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new ReplayRefusedError(`topic ${topic} does not exist`);
  const offsets = await admin.fetchTopicOffsets(topic);
  const partitions = only ? offsets.filter((o) => only.includes(o.partition)) : offsets;
  if (only) for (const p of only) if (!offsets.some((o) => o.partition === p)) throw new ReplayRefusedError(`topic ${topic} has no partition ${p} (it has 0-${offsets.length - 1})`);
  const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? [];
  const byTime = target.kind === 'datetime' ? await admin.fetchTopicOffsetsByTimestamp(topic, target.at.getTime()) : [];
  const [description] = (await admin.describeGroups([group])).groups;
  const plan: PartitionPlan[] = partitions.map((o) => {
    const low = BigInt(o.low);
    const high = BigInt(o.high);
    const c = committed.find((x) => x.partition === o.partition)?.offset;
    const current = c !== undefined && c !== '-1' ? BigInt(c) : null;
    let t: bigint;
    switch (target.kind) {
      case 'earliest':
        t = low;
        break;
      case 'datetime':
        t = BigInt(byTime.find((x) => x.partition === o.partition)?.offset ?? o.high);
        break;
      case 'offset':
        t = target.offset;
        break;
      case 'shift':
        t = (current ?? low) + target.by;
        break;
    }
    t = t < low ? low : t > high ? high : t;
    return { partition: o.partition, low, high, committed: current, target: t, requested: t };
  });
  return { group, topic, partitions: plan.sort((a, b) => a.partition - b.partition), members: description?.members.length ?? 0, state: description?.state ?? 'Dead' };
}

/**
 * Lines the plan up with the pipeline's files: a file that starts before a partition's
 * target but reaches it (its x-amz-meta-sluice-last-offset; a file without it counts as
 * reaching it) moves the target back to the file's first offset, so no file is cut in two
 * (a cut file would keep its old records beside their re-export). A compacted file of one
 * partition counts as one file from its first to its last offset (both in its name). A
 * merged compacted file (`sluice compact`) holds rows of several partitions, each an offset
 * range (x-amz-meta-sluice-offsets): if it holds any record at or after its partition's
 * target, it is written again whole, so every partition it holds moves back to that
 * partition's first offset in it (a partition the plan does not include refuses the replay:
 * include it). Moves repeat until none is needed. Returns the objects that start at or
 * after the (aligned) targets: the ones the replay writes again.
 */
export async function alignToFiles(s3: S3Client, pipeline: PipelineConfig, plan: ReplayPlan): Promise<string[]> {
  const output = pipeline.output.config;
  const coordinates = keyCoordinates(output.path);
  const files = new Map<number, { key: string; dir: string; first: bigint }[]>();
  const merged: { key: string; ranges: OffsetRanges }[] = [];
  const lastOffsets = new Map<string, bigint | undefined>();
  const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: output.bucket, Key: key }));
  for (const key of await listKeys(s3, output.bucket, staticPrefix(output.path))) {
    const m = mergedFile(key);
    if (m) {
      if (m.topic !== plan.topic) continue;
      const ranges = parseOffsetRanges((await head(key)).Metadata?.[OFFSETS_METADATA]);
      if (!ranges) throw new ReplayRefusedError(`s3://${output.bucket}/${key} is a merged compacted file without readable x-amz-meta-${OFFSETS_METADATA}: replay cannot tell which offsets it holds`);
      merged.push({ key, ranges });
      continue;
    }
    // A compacted file of one partition holds one contiguous offset range too, named with its last offset.
    const compacted = compactedCoordinates(key);
    const c = coordinates(key) ?? compacted;
    if (!c || c.topic !== plan.topic) continue;
    if (compacted) lastOffsets.set(key, compacted.lastOffset);
    const list = files.get(c.partition) ?? [];
    list.push({ key, dir: key.slice(0, key.lastIndexOf('/')), first: c.firstOffset });
    files.set(c.partition, list);
  }
  const lastOf = async (key: string) => {
    if (!lastOffsets.has(key)) {
      const last = (await head(key)).Metadata?.['sluice-last-offset'];
      lastOffsets.set(key, last !== undefined && /^\d+$/.test(last) ? BigInt(last) : undefined);
    }
    return lastOffsets.get(key);
  };
  const byPartition = new Map(plan.partitions.map((p) => [p.partition, p] as const));
  const superseded = new Set<string>();
  for (let moved = true; moved; ) {
    moved = false;
    for (const p of plan.partitions) {
      const list = files.get(p.partition) ?? [];
      const before = new Map<string, { key: string; first: bigint }>();
      for (const f of list) if (f.first < p.target && (before.get(f.dir)?.first ?? -1n) < f.first) before.set(f.dir, f);
      for (const f of before.values()) {
        const last = await lastOf(f.key);
        if (last === undefined || last >= p.target) {
          p.target = f.first;
          moved = true;
        }
      }
    }
    for (const m of merged) {
      if (superseded.has(m.key)) continue;
      const touched = [...m.ranges].some(([q, r]) => {
        const t = byPartition.get(q);
        return t !== undefined && r.last >= t.target;
      });
      if (!touched) continue;
      superseded.add(m.key);
      for (const [q, r] of m.ranges) {
        const t = byPartition.get(q);
        if (!t) {
          throw new ReplayRefusedError(
            `s3://${output.bucket}/${m.key} (compacted) holds partition ${q} beside the replayed ones: replaying it means writing that file again, so partition ${q} must be replayed too (add it to --partitions)`,
          );
        }
        if (r.first < t.target) {
          t.target = r.first;
          moved = true;
        }
      }
    }
  }
  for (const p of plan.partitions) {
    if (p.target < p.low) {
      throw new ReplayRefusedError(
        `partition ${p.partition}: the files the replay must write again start at offset ${p.target}, but the topic keeps only ${p.low} and later (retention): re-exporting would lose the older rows; choose a later target`,
      );
    }
    for (const f of files.get(p.partition) ?? []) if (f.first >= p.target) superseded.add(f.key);
  }
  return [...superseded].sort();
}

export async function executeReplay(admin: Admin, plan: ReplayPlan, s3?: S3Client, bucket?: string, superseded: string[] = []): Promise<void> {
  // Checked again right before the change: a runner may have joined since the plan.
  const [description] = (await admin.describeGroups([plan.group])).groups;
  const members = description?.members.length ?? 0;
  if (members > 0) {
    throw new ReplayRefusedError(
      `consumer group ${plan.group} has ${members} active member${members === 1 ? '' : 's'} (${description!.members.map((m) => `${m.clientId}@${m.clientHost}`).join(', ')}): stop the pipeline's runners first (SIGTERM flushes and commits), then run the replay again`,
    );
  }
  if (s3 && bucket) await deleteKeys(s3, bucket, superseded);
  await admin.setOffsets({ groupId: plan.group, topic: plan.topic, partitions: plan.partitions.map((p) => ({ partition: p.partition, offset: p.target.toString() })) });
}

/**
 * A shadow copy of a pipeline file: its own consumer group, every key under `prefix`, and
 * its own DLQ, so a fixed pipeline can replay beside the live one and be compared with its
 * output before switching. Comments and layout are kept.
 */
export function writeShadowPipeline(file: string, out: string, shadow: { group: string; prefix: string; dlqTopic: string }): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const path = String(doc.getIn(['output', 's3', 'path']));
  doc.setIn(['input', 'kafka', 'consumer_group'], shadow.group);
  doc.setIn(['output', 's3', 'path'], `${shadow.prefix}${path}`);
  doc.setIn(['dlq', 'topic'], shadow.dlqTopic);
  writeFileSync(out, `# Shadow of ${file} written by sluice replay --to-sink-prefix ${shadow.prefix}\n${doc.toString()}`);
}
