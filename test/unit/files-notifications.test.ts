import { describe, expect, it } from 'vitest';
import { parseS3Notification, sourceOfKey } from '../../processors/files/notifications.js';

/** S3 event notifications as `sluice files` reads them from Kafka. */
const event = (records: unknown[]) => Buffer.from(JSON.stringify({ Records: records }));
const created = (key: string, extra: Record<string, unknown> = {}) => ({
  eventVersion: '2.1',
  eventSource: 'aws:s3',
  eventName: 'ObjectCreated:Put',
  s3: { bucket: { name: 'lake' }, object: { key, size: 10, eTag: '0123abcd', versionId: 'v1', ...extra } },
});

describe('parseS3Notification', () => {
  it('reads ObjectCreated records: bucket, URL-decoded key, version id and quoted ETag; ignores removals and the test event', () => {
    const parsed = parseS3Notification(event([created('incoming/p/a+b%2B1.csv'), { ...created('incoming/p/x.csv'), eventName: 'ObjectRemoved:Delete' }]));
    expect(parsed).toEqual({ ok: true, objects: [{ bucket: 'lake', key: 'incoming/p/a b+1.csv', versionId: 'v1', etag: '"0123abcd"' }] });
    expect(parseS3Notification(Buffer.from(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'lake' })))).toEqual({ ok: true, objects: [] });
  });

  it('gives a reason for what it cannot use', () => {
    const reasonOf = (v: Buffer | null) => {
      const p = parseS3Notification(v);
      return p.ok ? 'ok' : p.reason;
    };
    expect(reasonOf(null)).toBe('malformed_notification');
    expect(reasonOf(Buffer.from('{"Records": ['))).toBe('malformed_notification');
    expect(reasonOf(Buffer.from('[1]'))).toBe('not_an_s3_event');
    expect(reasonOf(Buffer.from('{"detail": {}}'))).toBe('not_an_s3_event');
    expect(reasonOf(event([{ ...created('k'), s3: { bucket: { name: 'lake' }, object: {} } }]))).toBe('missing_field');
    expect(reasonOf(event([created('incoming/p/%E0%A4%A.csv')]))).toBe('malformed_notification');
  });

  it('finds the source by incoming prefix', () => {
    const sources = [{ name: 'p', format: 'csv' as const, delimiter: ',', channel: 'backend' as const }];
    expect(sourceOfKey(sources, 'incoming/', 'incoming/p/x.csv')?.name).toBe('p');
    expect(sourceOfKey(sources, 'incoming/', 'incoming/q/x.csv')).toBeUndefined();
    expect(sourceOfKey(sources, 'incoming/', 'processed/p/x.csv')).toBeUndefined();
  });
});
