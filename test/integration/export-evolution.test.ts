import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import avro from 'avsc';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../processors/core/kafka/client.js';
import { RegistryRestClient } from '../../processors/core/registry/ccompat.js';
import { exactLongHook } from '../../processors/core/registry/codec.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { startExport, type RunningExport } from '../../processors/export/export.js';
import { ParquetReader } from '../support/parquet-reader.js';
import { eventually, hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * Schema evolution through the export: records of an older compatible writer are read with
 * the newest schema (one file, the new column null for them), while a writer the newest
 * cannot read gets a file of its own. Columns are derived from the Avro schema (no mapping).
 */

const settings = testSettings();
const id = randomUUID().slice(0, 8);
const topic = `test.export-evolution.${id}`;
const prefix = `test-evolution-${id}/`;
const v1 = { type: 'record', name: 'Payment', namespace: 'test.evo', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] };
const v2 = { ...v1, fields: [...v1.fields, { name: 'note', type: ['null', 'string'], default: null }] };
/** Same record name, amount as text: the newest (v2) cannot read it. */
const other = { ...v1, fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'string' }] };

let running: RunningExport | undefined;
let reader: ParquetReader;

beforeAll(async () => {
  await requireServer('Kafka', settings.kafka.brokers[0]!);
  await requireServer('Schema registry', hostPortOf(settings.registry.url));
  await requireServer('S3', hostPortOf(settings.s3.endpoint!));
  reader = await ParquetReader.open();
});

afterAll(async () => {
  await running?.stop();
  reader?.close();
});

describe('export and schema evolution', () => {
  it('projects older writers to the newest schema in the same file and gives an incompatible writer its own', async () => {
    const rest = new RegistryRestClient(settings.registry.url);
    const kafka = createKafka(settings.kafka, { region: settings.s3.region });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    const idV1 = await rest.register(`${topic}-value`, JSON.stringify(v1));
    const idV2 = await rest.register(`${topic}-value`, JSON.stringify(v2));
    const idOther = await rest.register(`${topic}-other-value`, JSON.stringify(other));
    const encode = (schemaId: number, schema: object, value: object) => {
      const head = Buffer.alloc(5);
      head.writeInt32BE(schemaId, 1);
      return Buffer.concat([head, avro.Type.forSchema(schema as avro.Schema, { typeHook: exactLongHook as never }).toBuffer(value)]);
    };
    const big = 2n ** 62n + 7n;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { value: encode(idV1, v1, { id: 'a', amount: 1 }) },
        { value: encode(idV2, v2, { id: 'b', amount: big, note: 'v2' }) },
        { value: encode(idOther, other, { id: 'c', amount: 'ten' }) },
        { value: encode(idV1, v1, { id: 'd', amount: 4 }) },
        { value: encode(idV2, v2, { id: 'e', amount: 5, note: null }) },
      ],
    });
    await producer.disconnect();

    const dir = mkdtempSync(join(tmpdir(), 'sluice-evolution-'));
    const file = join(dir, 'evolution.yaml');
    writeFileSync(
      file,
      [
        'input:',
        '  kafka:',
        `    topics: [${topic}]`,
        `    consumer_group: test-evolution-${id}`,
        'output:',
        '  s3:',
        `    bucket: ${settings.s3.bucket}`,
        `    path: ${prefix}\${topic}+\${partition}+\${first_offset}.parquet`,
        '    batching: { period: 500ms }',
        'dlq:',
        `  topic: ${topic}.dlq`,
        'http:',
        '  port: 0',
      ].join('\n'),
    );
    running = await startExport({ files: [file], env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' } });
    await eventually(
      async () => {
        const [committed] = await admin.fetchOffsets({ groupId: `test-evolution-${id}`, topics: [topic] });
        return committed?.partitions[0]?.offset === '5' ? true : undefined;
      },
      30_000,
      'the export to commit all 5 records',
    );
    await admin.disconnect();
    await running.stop();
    running = undefined;

    const s3 = createS3Client(settings.s3);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: settings.s3.bucket, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
    // One file from offset 0 (v1 and v2 records read as v2), one from offset 2 (the incompatible writer).
    expect(keys).toEqual([`${prefix}${topic}+0+0.parquet`, `${prefix}${topic}+0+2.parquet`]);
    const tables: string[] = [];
    for (const key of keys) {
      const object = await s3.send(new GetObjectCommand({ Bucket: settings.s3.bucket, Key: key }));
      tables.push(reader.table(await object.Body!.transformToByteArray()));
    }
    const projected = await reader.query(`SELECT id, amount::VARCHAR AS amount, note, kafka_offset::VARCHAR AS kafka_offset FROM ${tables[0]} ORDER BY kafka_offset`);
    expect(projected).toEqual([
      { id: 'a', amount: '1', note: null, kafka_offset: '0' },
      { id: 'b', amount: big.toString(), note: 'v2', kafka_offset: '1' },
      { id: 'd', amount: '4', note: null, kafka_offset: '3' },
      { id: 'e', amount: '5', note: null, kafka_offset: '4' },
    ]);
    const types = await reader.query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM ${tables[0]})`);
    expect(types).toContainEqual({ column_name: 'amount', column_type: 'BIGINT' });
    const incompatible = await reader.query(`SELECT id, amount FROM ${tables[1]}`);
    expect(incompatible).toEqual([{ id: 'c', amount: 'ten' }]);
  });
});
