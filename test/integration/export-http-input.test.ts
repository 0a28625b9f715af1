import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../processors/core/s3/client.js';
import { listKeys } from '../../processors/core/s3/objects.js';
import { connectExportStack, freePort, RunnerProcess, runId, pipelineFromLines } from '../support/export-harness.js';
import { testSettings } from '../support/servers.js';

/**
 * The http_server input with a real runner (`sluice run`) and a real S3: a 202 means the
 * records are already in the bucket; keys, limits and bad bodies get their status codes.
 */

const settings = testSettings();
let kafka: Kafka;
let admin: Admin;
const KEY = 'test-http-input-key-0123456789';

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  await admin?.disconnect();
});

async function objectLines(prefix: string): Promise<string[]> {
  const s3 = createS3Client(settings.s3);
  try {
    const lines: string[] = [];
    for (const key of await listKeys(s3, settings.s3.bucket, prefix)) {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: settings.s3.bucket, Key: key }))).Body!.transformToString();
      lines.push(...body.split('\n').filter((l) => l.trim() !== ''));
    }
    return lines;
  } finally {
    s3.destroy();
  }
}

describe('the http_server input', () => {
  it('answers 202 only once the records are in S3, keeps 64-bit numbers exact, and refuses bad keys, bodies and sizes', async () => {
    const run = runId();
    const prefix = `test-http-input-${run}/`;
    const port = await freePort();
    const file = pipelineFromLines(`http-${run}`, [
      'input:',
      '  http_server:',
      `    port: ${port}`,
      `    api_keys: [${KEY}]`,
      '    max_records: 100',
      'output:',
      '  s3:',
      `    bucket: ${settings.s3.bucket}`,
      `    path: ${prefix}\${topic}+\${partition}+\${first_offset}.jsonl`,
      '    format: jsonl',
      '    columns:',
      '      - { name: id, type: string }',
      '      - { name: amount_minor, type: int64 }',
      '    batching: { period: 200ms }',
      'dlq:',
      `  topic: test.http-input.${run}.dlq`,
    ]);
    const runner = new RunnerProcess(file, `export-http-input-${run}`, await freePort()).start();
    try {
      await runner.ready();
      const post = (body: string, key = KEY, query = '') =>
        fetch(`http://127.0.0.1:${port}/records${query}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) }, body });

      const records = Array.from({ length: 50 }, (_, i) => `{"id": "r-${i}", "amount_minor": ${i === 7 ? '9007199254740993' : String(100 + i)}}`);
      const accepted = await post(`[${records.join(',')}]`);
      expect(accepted.status).toBe(202);
      expect(await accepted.json()).toEqual({ accepted: 50, first_offset: '0' });
      // Durable when answered: the objects are there now, with the exact amount.
      const lines = await objectLines(prefix);
      expect(lines.map((l) => /"id":"(r-\d+)"/.exec(l)?.[1]).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `r-${i}`).sort());
      expect(lines.find((l) => l.includes('"r-7"'))).toContain('9007199254740993');

      expect((await post('[{"id": "x", "amount_minor": 1}]', '')).status).toBe(401);
      expect((await post('[{"id": "x", "amount_minor": 1}]', 'wrong-key-wrong-key-wrong')).status).toBe(401);
      const inQuery = await post('[{"id": "x", "amount_minor": 1}]', KEY, `?api_key=${KEY}`);
      expect(inQuery.status).toBe(400);
      expect(await inQuery.text()).not.toContain(KEY);
      expect((await post('{"id": ')).status).toBe(400);
      expect((await post('[]')).status).toBe(400);
      expect((await post(`[${Array.from({ length: 101 }, () => '{}').join(',')}]`)).status).toBe(413);
      expect((await post(`[{"id": "${'x'.repeat(1024 * 1024)}"}]`)).status).toBe(413);
      expect(await runner.kill('SIGTERM')).toBe(0);
    } finally {
      await runner.kill('SIGKILL');
    }
  }, 120_000);
});
