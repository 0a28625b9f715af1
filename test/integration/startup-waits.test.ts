import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { sleep } from '../../processors/core/errors/retry.js';
import { startReports, type RunningReports } from '../../processors/reports/reports.js';
import { debeziumKey, debeziumValue, stagingRow } from '../support/debezium.js';
import { connectExportStack, freePort, runId, stack, testPipeline } from '../support/export-harness.js';
import { readTopic } from '../support/export-faults.js';
import { collectUntilQuiet } from '../support/consume.js';
import { SluiceProcess, type Readiness } from '../support/sluice-process.js';
import { eventually, testSettings } from '../support/servers.js';

/**
 * Processors started while a server they need is down wait for it (a log line naming it,
 * /readyz false and saying what they wait for) instead of exiting, and /readyz turns true
 * only once they consume; the reports shim answers 503 within its timeout while Kafka
 * cannot take a request, and recovers by itself. Real servers, stopped and started with
 * infra/local/stack; the processors as `sluice` child processes (the built CLI).
 */
const settings = testSettings();
const run = runId();
const API_KEY = 'startup-waits-test-key-0123456789';
const PUBLISH_TIMEOUT_MS = 3000;

let kafka: Kafka;
let admin: Admin;
const children: SluiceProcess[] = [];

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  for (const c of children) await c.kill('SIGKILL');
  // Whatever happened, the stack is left whole for the next test file.
  stack('up', 'kafka');
  stack('up', 'registry');
  await admin?.disconnect();
});

/** A `sluice normalizer` of this test's own: its topics, group and subject; its CDC topic does not exist yet. */
async function spawnNormalizer(name: string): Promise<{ proc: SluiceProcess; topics: { cdc: string; events: string; dlq: string } }> {
  const t = `test.startup.${run}.${name}`;
  const topics = { cdc: `${t}.cdc`, events: `${t}.events`, dlq: `${t}.dlq` };
  const port = await freePort();
  const proc = new SluiceProcess(`startup-${run}-${name}`, ['normalizer'], {
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_NORMALIZER_CDC_TOPIC: topics.cdc,
    SLUICE_NORMALIZER_EVENTS_TOPIC: topics.events,
    SLUICE_NORMALIZER_DLQ_TOPIC: topics.dlq,
    SLUICE_NORMALIZER_GROUP_ID: `test-startup-${run}-${name}`,
    SLUICE_NORMALIZER_INSTANCE_ID: `startup-${run}-${name}`,
    SLUICE_NORMALIZER_SUBJECT: `${t}.events-value`,
    SLUICE_NORMALIZER_HTTP_PORT: String(port),
    SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: '10000',
    SLUICE_STARTUP_WARN_AFTER_MS: '5000',
  }, port).start();
  children.push(proc);
  return { proc, topics };
}

/** Waits until the process's /readyz answers as `matches` wants; fails naming the last answer and the log. */
async function readyzUntil(p: SluiceProcess, what: string, matches: (r: Readiness) => boolean, timeoutMs = 60_000): Promise<Readiness> {
  let last: Readiness | undefined;
  return eventually(async () => {
    if (p.exitCode !== null) throw new Error(`${p.name} exited (${p.exitCode}); see ${p.log}`);
    last = await p.readiness();
    return last && matches(last) ? last : undefined;
  }, timeoutMs, `${p.name}: /readyz ${what} (last: ${JSON.stringify(last)}; log ${p.log})`);
}

function logged(p: SluiceProcess, level: string, text: RegExp): boolean {
  return p.logLines().some((l) => l.level === level && text.test(l.msg));
}

describe('processors started while a server is down wait for it', () => {
  it('registry down: the normalizer waits (no exit), the export says so in /readyz; both resume, and /readyz waits for the CDC topic', async () => {
    stack('down', 'registry');
    const registryDown = Date.now();
    const { proc: norm, topics } = await spawnNormalizer('registry');
    try {
      // The export reads the normalizer's events topic (the normalizer creates it before it needs the registry).
      const file = testPipeline({ topic: topics.events, dlq: `${topics.events}.export-dlq`, prefix: `test-startup-${run}/`, group: `test-startup-export-${run}` });
      const exportPort = await freePort();
      const exp = new SluiceProcess(`startup-${run}-export`, ['run', file], { SLUICE_EXPORT_HTTP_PORT: String(exportPort), SLUICE_LOG_LEVEL: 'info' }, exportPort).start();
      children.push(exp);

      const waiting = await readyzUntil(norm, 'naming the registry it waits for', (r) => r.status === 503 && /^waiting for the schema registry at http:\/\/[^ ]+\/apis\/ccompat\/v7/.test(r.checks.startup ?? ''));
      expect(waiting.checks.registry).toMatch(/unreachable/);
      expect(logged(norm, 'warn', /^waiting for the schema registry at /)).toBe(true);
      const exportWaiting = await readyzUntil(exp, 'failing on the registry only', (r) => r.status === 503 && r.checks[`test-startup-export-${run}: consumer group`] === 'ok');
      expect(exportWaiting.checks[`test-startup-export-${run}: schema registry`]).toMatch(/unreachable/);
      expect(exportWaiting.checks.startup).toBe('ok');

      // Before, the normalizer gave up after ~20 s; it must still be waiting well past that.
      await sleep(Math.max(0, registryDown + 30_000 - Date.now()));
      expect(norm.exitCode).toBeNull();
      expect(exp.exitCode).toBeNull();
      expect(logged(norm, 'warn', /^still waiting for the schema registry at .* after \d+ s$/)).toBe(true);

      stack('up', 'registry');
      // The registry answers; now it waits for its input topic, and says who creates it: still not ready.
      const forTopic = await readyzUntil(norm, 'naming the CDC topic it waits for', (r) => r.status === 503 && r.checks.registry === 'ok' && r.checks.startup !== undefined && r.checks.startup.startsWith(`waiting for topic ${topics.cdc}`));
      expect(forTopic.checks.startup).toContain('(created by the Debezium connector');
      expect(logged(norm, 'info', new RegExp(`^waiting for topic ${topics.cdc.replaceAll('.', '\\.')} \\(created by the Debezium connector`))).toBe(true);
      await readyzUntil(exp, 'ready', (r) => r.status === 200);

      // The topic appears (as Debezium's first change would create it): the normalizer consumes and turns ready.
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: topics.cdc, numPartitions: 1 }] });
      const row = stagingRow({ agent_id: `agent-startup-${run}` });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: topics.cdc, messages: [{ key: debeziumKey(row.event_id), value: debeziumValue('c', { after: row }) }] });
      await producer.disconnect();
      await readyzUntil(norm, 'ready once it consumes', (r) => r.status === 200 && r.checks.startup === 'ok');
      const events = await readTopic(kafka, topics.events, 1, () => true, 60_000);
      expect(events.map((e) => e.message.key?.toString())).toEqual([`agent-startup-${run}`]);
    } finally {
      stack('up', 'registry');
    }
  }, 240_000);

  it('Kafka down: the shim answers 503 within its timeout and never publishes the refused request; a normalizer waits for Kafka; both recover', async () => {
    const t = `test.startup.${run}.reports`;
    let reports: RunningReports | undefined;
    try {
      reports = await startReports({
        env: {
          ...process.env,
          // kafkajs logs every refused connection at error while the broker is down: not worth the test's output.
          SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'fatal',
          SLUICE_REPORTS_ROLE: 'shim',
          SLUICE_REPORTS_API_KEY: API_KEY,
          SLUICE_REPORTS_REQUESTS_TOPIC: `${t}.requests`,
          SLUICE_REPORTS_STATUS_TOPIC: `${t}.status`,
          SLUICE_REPORTS_DLQ_TOPIC: `${t}.dlq`,
          SLUICE_REPORTS_GROUP_ID: `test-startup-reports-${run}`,
          SLUICE_REPORTS_HTTP_PORT: '0',
          SLUICE_REPORTS_PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
        },
      });
      const r = reports;
      const post = async (requestId: string) => {
        const started = Date.now();
        const res = await fetch(`${r.url}/reports/generate`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
          body: JSON.stringify({ request_id: requestId, report_type: 'agent_commissions', month: '2026-10', format: 'csv' }),
        });
        return { status: res.status, ms: Date.now() - started, body: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get('retry-after') };
      };
      expect((await post(`before-${run}`)).status).toBe(202);

      stack('down', 'kafka');
      const refusedId = `during-${run}`;
      const answer = await post(refusedId);
      expect(answer.status).toBe(503);
      expect(answer.ms).toBeLessThan(PUBLISH_TIMEOUT_MS + 1500);
      expect(answer.retryAfter).toBe('5');
      expect(answer.body).toMatchObject({ error: 'unavailable', request_id: refusedId });

      // A normalizer started now waits for Kafka, naming it, instead of exiting.
      const { proc: norm } = await spawnNormalizer('kafka');
      const waiting = await readyzUntil(norm, 'naming Kafka', (x) => x.status === 503 && /^waiting for Kafka at /.test(x.checks.startup ?? ''));
      expect(waiting.checks.startup).toContain(settings.kafka.brokers[0]!);
      await eventually(async () => (logged(norm, 'warn', /^waiting for Kafka at /) ? true : undefined), 30_000, `the normalizer to log what it waits for (${norm.log})`);

      stack('up', 'kafka');
      // The shim recovers by itself: a new request is taken and its state served.
      const after = `after-${run}`;
      await eventually(async () => ((await post(after)).status === 202 ? true : undefined), 90_000, 'the shim to take a request again after Kafka is back');
      const status = await (await fetch(`${r.url}/reports/${after}`, { headers: { 'x-api-key': API_KEY } })).json();
      expect(status).toMatchObject({ request_id: after, state: 'queued' });
      // The normalizer got past Kafka and now waits for its CDC topic.
      await readyzUntil(norm, 'waiting for its CDC topic', (x) => x.status === 503 && (x.checks.startup ?? '').startsWith('waiting for topic '), 90_000);
      expect(norm.exitCode).toBeNull();

      // The refused request was never published behind its 503 (the producer does not retry after the answer).
      const requests = await collectUntilQuiet(kafka, `${t}.requests`, (ms) => ms.length >= 2, { quietMs: 3000, timeoutMs: 90_000 });
      expect(requests.map((m) => m.key?.toString()).sort()).toEqual([after, `before-${run}`].sort());
    } finally {
      stack('up', 'kafka');
      await reports?.stop();
    }
  }, 300_000);
});
