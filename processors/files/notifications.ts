import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Consumer, KafkaMessage, Producer } from 'kafkajs';
import { deadLetterMessage } from '../core/dlq/dead-letter.js';
import { ingestObject, type FileIngestDeps } from './ingest-file.js';
import { PROCESSOR } from './outputs.js';
import type { NotificationReason } from './reasons.js';
import type { FileSource } from './settings.js';

/**
 * S3 event notifications as a source of keys beside the listing, for buckets that publish
 * them (S3 -> EventBridge / SQS / SNS -> a Kafka topic, or MinIO's Kafka target): each
 * ObjectCreated record names a bucket, a key, and its version id and ETag; the object is
 * then processed exactly as a listed one (the ledger keeps it once whichever path finds it
 * first). Other event types (removals, the s3:TestEvent a bucket sends when notifications
 * are set up) are ignored. A notification that cannot be read, or names another bucket or
 * a key outside every source's incoming prefix, goes to the files DLQ with its reason.
 */

export interface NotifiedObject {
  bucket: string;
  key: string;
  versionId: string | undefined;
  etag: string | undefined;
}

export type ParsedNotification = { ok: true; objects: NotifiedObject[] } | { ok: false; reason: NotificationReason; message: string };

const bad = (reason: NotificationReason, message: string): ParsedNotification => ({ ok: false, reason, message });

/** The S3 event JSON (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html). */
export function parseS3Notification(value: Buffer | null): ParsedNotification {
  if (value === null || value.length === 0) return bad('malformed_notification', 'the record has no value');
  let doc: unknown;
  try {
    doc = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return bad('malformed_notification', `not JSON: ${(error as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return bad('not_an_s3_event', 'an S3 event notification is a JSON object with a Records list');
  const d = doc as { Event?: unknown; Records?: unknown };
  if (d.Event === 's3:TestEvent') return { ok: true, objects: [] };
  if (!Array.isArray(d.Records)) return bad('not_an_s3_event', 'no Records list: not an S3 event notification');
  const objects: NotifiedObject[] = [];
  for (const [i, r] of (d.Records as unknown[]).entries()) {
    const rec = r as { eventSource?: unknown; eventName?: unknown; s3?: { bucket?: { name?: unknown }; object?: { key?: unknown; versionId?: unknown; eTag?: unknown } } } | null;
    if (typeof rec !== 'object' || rec === null) return bad('not_an_s3_event', `Records[${i}] is not an object`);
    if (typeof rec.eventName !== 'string') return bad('missing_field', `Records[${i}].eventName is missing`);
    if (!rec.eventName.startsWith('ObjectCreated:') && !rec.eventName.startsWith('s3:ObjectCreated:')) continue;
    const bucket = rec.s3?.bucket?.name;
    const key = rec.s3?.object?.key;
    if (typeof bucket !== 'string' || bucket === '') return bad('missing_field', `Records[${i}].s3.bucket.name is missing`);
    if (typeof key !== 'string' || key === '') return bad('missing_field', `Records[${i}].s3.object.key is missing`);
    let decoded: string;
    try {
      // Keys arrive URL-encoded, a space as '+'.
      decoded = decodeURIComponent(key.replace(/\+/g, ' '));
    } catch {
      return bad('malformed_notification', `Records[${i}].s3.object.key is not valid URL encoding`);
    }
    const versionId = typeof rec.s3?.object?.versionId === 'string' && rec.s3.object.versionId !== '' ? rec.s3.object.versionId : undefined;
    const eTag = rec.s3?.object?.eTag;
    const etag = typeof eTag === 'string' && eTag !== '' ? (eTag.startsWith('"') ? eTag : `"${eTag}"`) : undefined;
    objects.push({ bucket, key: decoded, versionId, etag });
  }
  return { ok: true, objects };
}

/** The source whose incoming prefix holds the key. */
export function sourceOfKey(sources: readonly FileSource[], incomingPrefix: string, key: string): FileSource | undefined {
  return sources.find((s) => key.startsWith(`${incomingPrefix}${s.name}/`) && !key.endsWith('/'));
}

/** Reads the notifications topic and processes each notified object; offsets are committed after it. */
export class NotificationListener {
  constructor(
    private readonly deps: FileIngestDeps & { producer: Producer },
    private readonly consumer: Consumer,
    private readonly bucket: string,
    private readonly topic: string,
  ) {}

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({ autoCommit: true, eachMessage: async ({ partition, message }) => this.handle(partition, message) });
  }

  private async handle(partition: number, message: KafkaMessage): Promise<void> {
    const { deps } = this;
    const parsed = parseS3Notification(message.value);
    if (!parsed.ok) return this.deadLetter(partition, message, parsed.reason, parsed.message);
    for (const o of parsed.objects) {
      if (o.bucket !== this.bucket) return this.deadLetter(partition, message, 'other_bucket', `the notification is for bucket ${o.bucket}; this instance watches ${this.bucket}`);
      const source = sourceOfKey(deps.settings.sources, deps.settings.incomingPrefix, o.key);
      if (!source) return this.deadLetter(partition, message, 'outside_incoming', `${o.key} is not under ${deps.settings.incomingPrefix}<source>/ of any source (${deps.settings.sources.map((s) => s.name).join(', ')})`);
      // The object as it is now (a later version may have replaced the notified one: it is the one to read).
      const head = await deps.s3
        .send(new HeadObjectCommand({ Bucket: o.bucket, Key: o.key }), { abortSignal: deps.signal })
        .catch((error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
          if (error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404) return undefined;
          throw error;
        });
      if (!head) {
        deps.logger.info({ key: o.key }, 'notified object is gone (moved or deleted already); nothing to do');
        continue;
      }
      const etag = head.ETag ?? o.etag ?? '';
      const version = head.VersionId && head.VersionId !== 'null' ? head.VersionId : etag;
      deps.logger.info({ key: o.key, version }, 'object notified');
      await ingestObject(deps, source, { bucket: o.bucket, key: o.key, version, etag, source: source.name, size: head.ContentLength ?? 0, lastModified: head.LastModified ?? new Date() });
    }
  }

  private async deadLetter(partition: number, message: KafkaMessage, reason: NotificationReason, error: string): Promise<void> {
    this.deps.logger.warn({ reason, error, partition, offset: message.offset }, 'S3 notification not usable; sent to the DLQ');
    await this.deps.producer.send({ topic: this.deps.settings.dlqTopic, acks: -1, messages: [deadLetterMessage({ topic: this.topic, partition, message }, { reason, error }, PROCESSOR)] });
  }
}
