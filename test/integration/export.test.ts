import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka, KafkaMessage, Message } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { RegistryRestClient } from '../../processors/core/registry/ccompat.js';
import { AgentEventProducer, type AgentEvent } from '../support/agent-events.js';
import { ROOT } from '../support/build.js';
import { collectUntilQuiet } from '../support/consume.js';
import { connectExportStack, freePort, LakeCopy, runId, RunnerProcess, testPipeline, verifyLake, waitDrained } from '../support/export-harness.js';
import { groupPosition, lakeEvent, lakeEvents, metricOf, produceBacklog, readTopic } from '../support/export-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 4's acceptance, CI-sized, against the real runner (`sluice run` child processes)
 * and the real stack: events spread over six months (first and last microsecond of UTC
 * days, late events, amounts up to the int64 maximum) land exactly once with their values
 * and types in their partitions; every kind of poison record reaches the DLQ with its
 * reason, its original key and bytes and a pointer to where it was; a SIGTERM in the middle
 * of a backlog commits exactly what it uploaded and a restart finishes without a duplicate;
 * `sluice lint` (the binary) on the shipped configs and a broken one. The fault scenarios
 * are in export-faults.test.ts; test/integration/export-exactly-once.test.ts has the
 * combined chaos run.
 */

const settings = testSettings();
const UNKNOWN_SCHEMA_ID = 999_999;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  await admin?.disconnect();
});

type PoisonReason = 'not_avro' | 'unknown_schema' | 'decode_error' | 'mapping_error';

interface Poison {
  reason: PoisonReason;
  message: Message & { key: string; value: Buffer };
}

/** The poison records of one kind each, `n` distinguishing repeats; `event` is a valid event to corrupt. */
function poisons(producer: AgentEventProducer, n: number, event: AgentEvent, poisonAgent: string): Poison[] {
  const avro = producer.encode(event);
  const unknownId = Buffer.from(avro);
  unknownId.writeInt32BE(UNKNOWN_SCHEMA_ID, 1);
  return [
    { reason: 'not_avro', message: { key: `poison-json-${n}`, value: Buffer.from(`{"event_id": "json-${n}", "amount_minor": 100}`) } },
    { reason: 'not_avro', message: { key: `poison-magic-${n}`, value: Buffer.concat([Buffer.from([1]), avro.subarray(1)]) } }, // magic byte 1
    { reason: 'not_avro', message: { key: `poison-short-${n}`, value: Buffer.from([0, 0, n % 256]) } }, // shorter than the 5-byte header
    { reason: 'unknown_schema', message: { key: `poison-unknown-${n}`, value: unknownId } }, // a valid body under an id no registry holds
    { reason: 'decode_error', message: { key: `poison-truncated-${n}`, value: avro.subarray(0, 5 + Math.floor((avro.length - 5) / 3)) } }, // the real id, a cut body
    { reason: 'mapping_error', message: producer.message({ ...event, agentId: poisonAgent }) as Poison['message'] }, // valid Avro, the mapping fails
  ];
}

function summary(messages: { key: Buffer | string | null; value: Buffer | null; reason?: string }[]): string[] {
  return messages.map((m) => `${m.reason ?? '?'} ${m.key?.toString() ?? 'null'} ${m.value?.toString('base64') ?? 'null'}`).sort();
}

describe('export engine acceptance (CI-sized)', () => {
  it('lands 20,000 events exactly once with exact values, types and partitions, and sends every poison record to the DLQ with its reason and original bytes', async () => {
    const known = await new RegistryRestClient(settings.registry.url).request('GET', `/schemas/ids/${UNKNOWN_SCHEMA_ID}`);
    expect(known.status, `the registry holds a schema with id ${UNKNOWN_SCHEMA_ID}: pick another unknown id`).toBe(404);

    const run = runId();
    const topic = `test.export-accept.${run}`;
    const dlq = `${topic}.dlq`;
    const prefix = `test-export-accept-${run}/`;
    const group = `test-export-accept-${run}`;
    const poisonAgent = 'agent-poison';
    const producer = new AgentEventProducer(kafka, settings, topic);
    await producer.setUp();

    const expected = lakeEvents(run, 20_000);
    const poisoned: Poison[] = [];
    const messages: Message[] = [];
    expected.forEach((e, i) => {
      messages.push(producer.message(e));
      if (i % 4000 === 1234) {
        const batch = poisons(producer, i, lakeEvent(run, 1_000_000 + i), poisonAgent);
        poisoned.push(...batch);
        messages.push(...batch.map((p) => p.message));
      }
    });
    await producer.send(messages);

    // Parquet encoded on a worker thread here (encode_threads: 1); the other tests encode on the event loop.
    const file = testPipeline({ topic, dlq, prefix, group, poisonAgent, encodeThreads: 1 });
    const port = await freePort();
    const runner = new RunnerProcess(file, `export-accept-${run}`, port).start();
    try {
      await runner.ready();
      await waitDrained(admin, group, topic, 90_000);
      expect(await metricOf(port, 'sluice_export_records_out_total'), `records out; see ${runner.log}`).toBe(expected.length);
      for (const reason of ['not_avro', 'unknown_schema', 'decode_error', 'mapping_error'] as const) {
        expect(await metricOf(port, 'sluice_export_records_dlq_total', { reason }), `dead letters counted with reason ${reason}`).toBe(poisoned.filter((p) => p.reason === reason).length);
      }
      expect(await runner.kill('SIGTERM'), `SIGTERM exit code; see ${runner.log}`).toBe(0);
    } finally {
      await runner.kill('SIGKILL');
    }

    // Every valid event, and nothing else, in the lake.
    const lake = await LakeCopy.download(settings, prefix);
    try {
      await verifyLake(lake, expected);
      const months = await lake.query(`SELECT DISTINCT strftime(occurred_at, '%Y-%m') AS m FROM LAKE ORDER BY 1`);
      expect(months.map((r) => r.m)).toEqual(['2026-08', '2026-09', '2026-10', '2026-11', '2026-12', '2027-01']);
      // The last microsecond of a day stays in that day's partition; midnight opens the next.
      const edges = await lake.query(`SELECT dt, strftime(occurred_at, '%H:%M:%S.%f') AS t FROM LAKE WHERE event_id = '${expected[211]!.eventId}' OR event_id = '${expected[212]!.eventId}' ORDER BY event_id`);
      const dayOf = (e: AgentEvent) => new Date(Number(e.occurredAtMicros / 1000n)).toISOString().slice(0, 10);
      expect(edges).toEqual([
        { dt: dayOf(expected[211]!), t: '23:59:59.999999' },
        { dt: dayOf(expected[212]!), t: '00:00:00.000000' },
      ]);
      const [max] = await lake.query(`SELECT max(amount_minor)::VARCHAR AS a FROM LAKE`);
      expect(max!.a).toBe(expected.reduce((m, e) => (e.amount !== null && e.amount > m ? e.amount : m), 0n).toString());
    } finally {
      lake.close();
    }

    // The dead letters: one per poison record, with its reason, original key and bytes.
    const letters = await collectUntilQuiet(kafka, dlq, (m) => m.length >= poisoned.length, { quietMs: 1500 });
    const got = letters.map((m) => ({ key: m.key, value: m.value, reason: readDeadLetterHeaders(m.headers)?.reason }));
    expect(summary(got)).toEqual(summary(poisoned.map((p) => ({ ...p.message, reason: p.reason }))));
    // Each points at its original record (topic, partition, offset), byte for byte.
    const originals = await readTopic(kafka, topic, messages.length, (m) => m.key?.toString().startsWith('poison') === true || m.key?.toString() === poisonAgent);
    const at = new Map(originals.map((o) => [`${o.partition}/${o.message.offset}`, o.message]));
    const pointers = new Set<string>();
    for (const letter of letters) {
      const h = readDeadLetterHeaders(letter.headers)!;
      expect(h.topic).toBe(topic);
      const where = `${h.partition}/${h.offset}`;
      pointers.add(where);
      const original: KafkaMessage | undefined = at.get(where);
      expect(original, `dead letter ${h.reason} points at ${topic} ${where}, which holds no poison record`).toBeDefined();
      expect(original!.value!.equals(letter.value!)).toBe(true);
      expect(original!.key!.equals(letter.key!)).toBe(true);
      expect(h.error.length).toBeGreaterThan(0);
      if (h.reason === 'mapping_error') expect(h.error).toContain(`cannot map ${poisonAgent}`);
    }
    expect(pointers.size).toBe(letters.length);
  }, 180_000);

  it('a SIGTERM in the middle of a backlog commits exactly what it uploaded and exits 0; a restart finishes without a duplicate', async () => {
    const run = runId();
    const topic = `test.export-sigterm.${run}`;
    const prefix = `test-export-sigterm-${run}/`;
    const group = `test-export-sigterm-${run}`;
    const events = 150_000;
    const producer = new AgentEventProducer(kafka, settings, topic);
    await producer.setUp();
    await produceBacklog(producer, (i) => lakeEvent(run, i), 0, events);
    const file = testPipeline({ topic, dlq: `${topic}.dlq`, prefix, group, count: 5000 });

    const port = await freePort();
    const first = new RunnerProcess(file, `export-sigterm-${run}`, port).start();
    let stopped: Awaited<ReturnType<typeof groupPosition>>;
    try {
      await first.ready();
      const deadline = Date.now() + 90_000;
      while ((await metricOf(port, 'sluice_export_records_in_total')) < events * 0.2) {
        if (Date.now() > deadline) throw new Error(`the runner did not consume ${events * 0.2} records within 90 s; see ${first.log}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await first.kill('SIGTERM'), `SIGTERM exit code; see ${first.log}`).toBe(0);
      stopped = await groupPosition(admin, group, topic);
    } finally {
      await first.kill('SIGKILL');
    }
    expect(stopped.behind, `the backlog was drained before the SIGTERM (raise the event count): the test would prove nothing`).toBeGreaterThan(0n);
    expect(stopped.committed).toBeGreaterThan(0n);

    // Exactly what was committed is in the lake: nothing committed without its file, no file beyond the commits.
    const mid = await LakeCopy.download(settings, prefix);
    let midKeys: string[];
    try {
      const [row] = await mid.query('SELECT count(*)::VARCHAR AS n, count(DISTINCT event_id)::VARCHAR AS d FROM LAKE');
      expect({ rows: row!.n, distinct: row!.d }).toEqual({ rows: stopped.committed.toString(), distinct: stopped.committed.toString() });
      midKeys = mid.keys;
    } finally {
      mid.close();
    }

    const second = new RunnerProcess(file, `export-sigterm-${run}-restart`, await freePort()).start();
    try {
      await second.ready();
      await waitDrained(admin, group, topic, 120_000);
      expect(await second.kill('SIGTERM'), `SIGTERM exit code; see ${second.log}`).toBe(0);
    } finally {
      await second.kill('SIGKILL');
    }
    const lake = await LakeCopy.download(settings, prefix);
    try {
      await verifyLake(lake, lakeEvents(run, events));
      expect(lake.keys).toEqual(expect.arrayContaining(midKeys));
    } finally {
      lake.close();
    }
  }, 240_000);
});

describe('sluice lint (the binary)', () => {
  const lint = (...files: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'lint', ...files], { encoding: 'utf8', env: { ...process.env } });

  it('accepts every shipped pipeline in connectors/exports', () => {
    const files = readdirSync(join(ROOT, 'connectors/exports'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(ROOT, 'connectors/exports', f));
    expect(files.length).toBeGreaterThan(0);
    const r = lint(...files);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const f of files) expect(r.stdout).toContain(`${f}: ok`);
  });

  it('rejects a broken copy of lake.yaml with file:line:column and the config path of each problem, exit 1', () => {
    const text = readFileSync(join(ROOT, 'connectors/exports/lake.yaml'), 'utf8').replace('format: parquet', 'format: paruqet').replace('    decode: avro_registry', '    decode: avro_registry\n    fetch_max_bytez: 1');
    const lines = text.split('\n');
    const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lint-')), 'lake-broken.yaml');
    writeFileSync(file, text);
    const r = lint(file);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(new RegExp(`${escape(file)}:${lineOf('fetch_max_bytez')}:\\d+ input\\.kafka\\.fetch_max_bytez: unknown field`));
    expect(out).toMatch(new RegExp(`${escape(file)}:${lineOf('paruqet')}:\\d+ output\\.s3\\.format: unknown value "paruqet".*did you mean "parquet"`));
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
