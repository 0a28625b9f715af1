import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PermanentError } from '../core/errors/errors.js';
import { isNotFound } from '../core/s3/objects.js';

/**
 * The journal of one partition's compaction, written before any output exists and kept
 * until the swap is over. `writing`: outputs may be partly written, the inputs are intact;
 * the next run deletes the outputs (rolled back). `swapping`: every output was written, read
 * back and checked, deleting the inputs has begun; the next run deletes what is left of them
 * (finished). So whatever the moment of a crash, the next run leaves exactly one copy of
 * every row and no object that no list knows.
 */

export interface JournalFile {
  key: string;
  etag: string;
  size: number;
}

export interface Journal {
  version: 1;
  partition: string;
  state: 'writing' | 'swapping';
  startedAt: string;
  inputs: JournalFile[];
  /** Planned output keys (all of them, before the first is written). */
  outputs: string[];
  /** Rows in the outputs (every input event_id once). */
  rows?: number;
}

export async function readJournal(s3: S3Client, bucket: string, key: string): Promise<Journal | undefined> {
  try {
    const o = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const journal = JSON.parse(await o.Body!.transformToString()) as Journal;
    if (journal.version !== 1 || !Array.isArray(journal.inputs) || !Array.isArray(journal.outputs)) {
      throw new PermanentError(`s3://${bucket}/${key} is not a compaction journal Sluice can read (version ${String(journal.version)})`);
    }
    return journal;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function writeJournal(s3: S3Client, bucket: string, key: string, journal: Journal): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(journal, null, 1), ContentType: 'application/json' }));
}

export async function deleteJournal(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}
