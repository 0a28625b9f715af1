import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { AgentEventProducer } from '../support/agent-events.js';
import { collectUntilQuiet } from '../support/consume.js';
import { connectExportStack, domainEvent, type ExpectedEvent, freePort, LakeCopy, runId, RunnerProcess, stack, testPipeline, verifyLake, waitDrained } from '../support/export-harness.js';
import { testSettings } from '../support/servers.js';
import { runExportChaos } from '../support/export-chaos.js';

/**
 * The export engine's acceptance on the real stack, CI-sized (`npm run test:soak` runs the
 * chaos with 1,000,000 events): exactly once in the lake, read back by DuckDB, through
 * poison records, SIGTERM and restart, SIGKILLs, a 30 s S3 outage and a rebalance.
 */

const settings = testSettings();
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  await admin?.disconnect();
});

describe('export to the Parquet lake', () => {
  it('writes every event once with its values and types, sends poison records to the DLQ with reasons, and a SIGTERM + restart adds nothing', async () => {
    const run = runId();
    const topic = `test.export.${run}`;
    const dlq = `${topic}.dlq`;
    const prefix = `test-export-${run}/`;
    const group = `test-export-${run}`;
    const poisonAgent = 'agent-poison';
    const producer = new AgentEventProducer(kafka, settings, topic);
    await producer.setUp();
    const expected: ExpectedEvent[] = [];
    const messages = [];
    for (let i = 0; i < 20_000; i++) {
      const e = domainEvent(run, i);
      expected.push(e);
      messages.push(producer.message(e));
      if (i % 5000 === 2500) {
        messages.push({ key: 'poison', value: Buffer.from('{"not": "avro"}') }); // not_avro
        const unknown = Buffer.alloc(12);
        unknown.writeInt32BE(2_000_000_000, 1); // unknown_schema: magic 0, an id no registry holds
        messages.push({ key: 'poison', value: unknown });
        messages.push(producer.message({ ...domainEvent(run, 1_000_000 + i), agentId: poisonAgent })); // mapping_error
      }
    }
    await producer.send(messages);

    const file = testPipeline({ topic, dlq, prefix, group, poisonAgent });
    const runner = new RunnerProcess(file, `export-${run}`, await freePort()).start();
    await runner.ready();
    await waitDrained(admin, group, topic, 90_000);
    expect(await runner.metric('sluice_export_records_out_total')).toBe(expected.length);
    expect(await runner.kill('SIGTERM')).toBe(0);

    const letters = await collectUntilQuiet(kafka, dlq, (m) => m.length >= 12, { quietMs: 1500 });
    const reasons = letters.map((m) => readDeadLetterHeaders(m.headers)?.reason).sort();
    expect(reasons).toEqual([...Array(4).fill('mapping_error'), ...Array(4).fill('not_avro'), ...Array(4).fill('unknown_schema')]);
    const notAvro = letters.find((m) => readDeadLetterHeaders(m.headers)?.reason === 'not_avro')!;
    expect(notAvro.value!.toString()).toBe('{"not": "avro"}'); // the original bytes
    expect(readDeadLetterHeaders(notAvro.headers)).toMatchObject({ topic, processor: expect.stringContaining('/input') });
    expect(readDeadLetterHeaders(letters.find((m) => readDeadLetterHeaders(m.headers)?.reason === 'mapping_error')!.headers)?.error).toContain(`cannot map ${poisonAgent}`);

    // A restart finds nothing to do: no object is added or rewritten with new content.
    const before = await LakeCopy.download(settings, prefix);
    try {
      await verifyLake(before, expected);
      const restarted = new RunnerProcess(file, `export-${run}-restart`, await freePort()).start();
      await restarted.ready();
      await new Promise((r) => setTimeout(r, 2000));
      expect(await restarted.metric('sluice_export_records_in_total')).toBe(0);
      expect(await restarted.kill('SIGTERM')).toBe(0);
      const after = await LakeCopy.download(settings, prefix);
      try {
        expect(after.keys).toEqual(before.keys);
      } finally {
        after.close();
      }
    } finally {
      before.close();
    }
  }, 240_000);

  it('stays exactly once through three SIGKILLs, a second runner joining and leaving, and S3 stopped for 30 s', async () => {
    const result = await runExportChaos({ kafka, admin, settings, events: 60_000, perSecond: 1_000, s3OutageMs: 30_000, logPrefix: 'export-chaos' });
    expect(result.kills).toBe(3);
    expect(result.rebalances).toBeGreaterThanOrEqual(2);
    expect(result.failuresDuringOutage).toBeGreaterThan(0);
  }, 420_000);
});

afterAll(() => {
  // Whatever happened, leave the stack's S3 running for the next test file.
  stack('up', 's3');
});
