import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
}

/** Every object under a prefix (ListObjectsV2, all pages), sorted by key. */
export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, etag: o.ETag ?? '' });
    token = page.NextContinuationToken;
  } while (token);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Every key under a prefix, sorted. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return (await listObjects(s3, bucket, prefix)).map((o) => o.key);
}

/** Deletes the keys, 1,000 a request (the API's limit). */
export async function deleteKeys(s3: S3Client, bucket: string, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
  }
}

/** Deletes every object under a prefix; returns how many there were. */
export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  const keys = await listKeys(s3, bucket, prefix);
  await deleteKeys(s3, bucket, keys);
  return keys.length;
}

/** Started ahead of use: marked handled at once, so a failure surfaces where it is awaited, not as an unhandled rejection. */
export function download(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const p = s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then((o) => o.Body!.transformToByteArray());
  p.catch(() => undefined);
  return p;
}

/** A 404 of S3 (NoSuchKey on GET, NotFound on HEAD): the object is not there (any more). */
export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
