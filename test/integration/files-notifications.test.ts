import { randomUUID } from 'node:crypto';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { startFiles, type RunningFiles } from '../../processors/files/files.js';
import { filesEnv, generateCsv, openFileDropRig, put, storedCount, waitDone, type FileDropRig } from '../support/file-drops.js';
import { collect } from '../support/kafka.js';
import { testSettings } from '../support/servers.js';

/**
 * S3 event notifications read from a Kafka topic: with the listing slowed to once an hour,
 * an object dropped after the first listing is found through its notification alone; a
 * notification that is not JSON, one that is not an S3 event and one for a key outside
 * every incoming prefix go to the files DLQ, each with its reason.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const root = `files-notify-${run}/`;
const dlqTopic = `files-notify-${run}.dlq`;
const notificationsTopic = `files-notify-${run}.s3-events`;
const bucket = settings.s3.bucket;
let rig: FileDropRig;
let files: RunningFiles;

const s3Event = (key: string) =>
  JSON.stringify({
    Records: [{ eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size: 1 } } }],
  });

beforeAll(async () => {
  rig = await openFileDropRig(settings);
  files = await startFiles({
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: 'warn',
      ...filesEnv(root, { sources: 'partner:csv', dlqTopic, httpPort: 0, pollMs: 3_600_000 }),
      SLUICE_FILES_NOTIFICATIONS_TOPIC: notificationsTopic,
      SLUICE_FILES_NOTIFICATIONS_GROUP_ID: `files-notify-${run}`,
    },
  });
  // The first listing (at start) has run over an empty prefix; the next is an hour away.
  await files.pollOnce();
}, 120_000);

afterAll(async () => {
  await files?.stop();
  await rig?.close([dlqTopic, notificationsTopic]);
});

describe('sluice files with S3 event notifications', () => {
  it('processes a notified object without listing, and sends unusable notifications to the DLQ with their reason', async () => {
    const { s3, pool, kafka } = rig;
    const file = generateCsv({ run, rows: 200, invalidEvery: 0 });
    const key = `${root}incoming/partner/notified file.csv`;
    await put(s3, bucket, key, file.text);
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({
        topic: notificationsTopic,
        messages: [
          { key: 'a', value: s3Event(key) },
          { key: 'b', value: '{not json' },
          { key: 'c', value: JSON.stringify({ detail: { bucket: { name: bucket } } }) },
          { key: 'd', value: s3Event(`${root}elsewhere/x.csv`) },
        ],
      });
    } finally {
      await producer.disconnect();
    }
    const row = await waitDone(pool, bucket, key, 60_000);
    expect(row.status, row.first_error ?? '').toBe('succeeded');
    expect(await storedCount(pool, file.valid)).toBe(file.valid.length);

    const notes = (ms: KafkaMessage[]) => ms.filter((m) => readDeadLetterHeaders(m.headers)?.topic === notificationsTopic);
    const dead = notes(await collect(kafka, dlqTopic, (ms) => notes(ms).length >= 3, 30_000));
    expect(Object.fromEntries(dead.map((m) => [m.key?.toString(), readDeadLetterHeaders(m.headers)?.reason]))).toEqual({
      b: 'malformed_notification',
      c: 'not_an_s3_event',
      d: 'outside_incoming',
    });
  }, 120_000);
});
