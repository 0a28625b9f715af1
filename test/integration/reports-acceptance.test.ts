import { PutObjectCommand } from '@aws-sdk/client-s3';
import { simpleParser } from 'mailparser';
import { createServer, type Server } from 'node:http';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { ParquetBatchWriter } from '../../processors/core/parquet/batch-writer.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { startExport } from '../../processors/export/export.js';
import { startReports, type RunningReports } from '../../processors/reports/reports.js';
import { collectUntilQuiet } from '../support/consume.js';
import { domainEvent, EventProducer, LakeCopy, runId, testPipeline, waitDrained, type ExpectedEvent } from '../support/export-harness.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * Issue 5's acceptance on the real stack: a generated month exported by the real runner,
 * the commission report requested by REST and by topic, compared cell for cell with an
 * independent computation (DuckDB SQL over the same Parquet files), repeated requests,
 * the link, notifications by SMTP and webhook, bad input and the schedule.
 */

const settings = testSettings();
const run = runId();
const topic = `test.reports.${run}`;
const prefix = `test-reports-${run}/`;
const KEY = 'reports-test-key-0123456789';
const MONTH = '2026-10';
let kafka: Kafka;
let admin: Admin;
let reports: RunningReports;
let smtp: SMTPServer;
let webhook: Server;
const mails: { to: string; text: string }[] = [];
const hooks: Record<string, unknown>[] = [];
const env = {
  ...process.env,
  SLUICE_LOG_LEVEL: 'warn',
  SLUICE_REPORTS_API_KEY: KEY,
  SLUICE_REPORTS_HTTP_PORT: '0',
  SLUICE_REPORTS_REQUESTS_TOPIC: `test.reports.${run}.requests`,
  SLUICE_REPORTS_STATUS_TOPIC: `test.reports.${run}.status`,
  SLUICE_REPORTS_DLQ_TOPIC: `test.reports.${run}.dlq`,
  SLUICE_REPORTS_GROUP_ID: `test-reports-${run}`,
  SLUICE_REPORTS_LAKE_PREFIX: prefix,
  SLUICE_REPORTS_REPORTS_PREFIX: `test-reports-out-${run}/`,
  SLUICE_REPORTS_LINK_EXPIRY_SECONDS: '4',
};

/** The month's events, with the edge cases DOMAIN.md names. */
function monthEvents(): ExpectedEvent[] {
  const events: ExpectedEvent[] = [];
  for (let i = 0; i < 4000; i++) events.push(domainEvent(run, i)); // four types, 37 agents, sums beyond 2^53, late arrivals
  const base = BigInt(Date.UTC(2026, 9, 15, 12)) * 1000n;
  const special = (n: number, e: Partial<ExpectedEvent>): ExpectedEvent => ({ ...domainEvent(run, 100_000 + n), receivedAtMicros: base + 1_000_000n, occurredAtMicros: base, ...e });
  // Only onboardings, one customer twice: N = 2.
  events.push(special(1, { type: 'customer_onboarded', agentId: 'agent-onboarder', customerId: 'c-1', amount: null }));
  events.push(special(2, { type: 'customer_onboarded', agentId: 'agent-onboarder', customerId: 'c-1', amount: null }));
  events.push(special(3, { type: 'customer_onboarded', agentId: 'agent-onboarder', customerId: 'c-2', amount: null }));
  // Withdrawals above deposits; and exactly the tier threshold.
  events.push(special(4, { type: 'deposit_made', agentId: 'agent-negative', amount: 1_000n }));
  events.push(special(5, { type: 'withdrawal_made', agentId: 'agent-negative', amount: 9_000n }));
  events.push(special(6, { type: 'deposit_made', agentId: 'agent-tier', amount: 9_000_000n }));
  events.push(special(7, { type: 'investment_made', agentId: 'agent-tier', amount: 1_000_000n }));
  // Neighbouring months: not in October's report.
  events.push(special(8, { type: 'deposit_made', agentId: 'agent-september', amount: 500n, occurredAtMicros: BigInt(Date.UTC(2026, 8, 30, 23, 59, 59)) * 1000n }));
  events.push(special(9, { type: 'deposit_made', agentId: 'agent-7', amount: 777n, occurredAtMicros: BigInt(Date.UTC(2026, 10, 1)) * 1000n }));
  return events;
}

/** DOMAIN.md's report, computed independently: DuckDB SQL over the lake files, exact integers, half-to-even by hand. */
async function independentCsv(lake: LakeCopy): Promise<string> {
  const rows = await lake.query(`
    WITH e AS (SELECT DISTINCT event_id, event_type, agent_id, customer_id, amount_minor::HUGEINT AS amount
               FROM LAKE WHERE dt >= '${MONTH}-01' AND dt < '2026-11-01'),
    a AS (SELECT agent_id, count(*) AS events,
                 count(DISTINCT customer_id) FILTER (WHERE event_type = 'customer_onboarded') AS n,
                 coalesce(sum(amount) FILTER (WHERE event_type = 'deposit_made'), 0) AS d,
                 coalesce(sum(amount) FILTER (WHERE event_type = 'withdrawal_made'), 0) AS w,
                 coalesce(sum(amount) FILTER (WHERE event_type = 'investment_made'), 0) AS i
          FROM e GROUP BY agent_id),
    f AS (SELECT *, (greatest(d - w, 0) * 50 + i * 100) * (CASE WHEN d - w + i >= 10000000 THEN 5 ELSE 1 END) AS num,
                 10000 * (CASE WHEN d - w + i >= 10000000 THEN 4 ELSE 1 END) AS den FROM a),
    r AS (SELECT *, num // den AS q, num % den AS rem FROM f)
    SELECT agent_id, events::VARCHAR AS events, n::VARCHAR AS n, d::VARCHAR AS d, w::VARCHAR AS w, i::VARCHAR AS i, (d - w + i)::VARCHAR AS net,
           (n * 2500 + q + CASE WHEN 2 * rem > den OR (2 * rem = den AND q % 2 = 1) THEN 1 ELSE 0 END)::VARCHAR AS commission
    FROM r ORDER BY agent_id`); // DuckDB orders text by its UTF-8 bytes, which is code-point order
  const header = 'agent_id,month,events,customers_onboarded,deposits_minor,withdrawals_minor,investments_minor,net_inflow_minor,commission_minor,currency';
  return [header, ...rows.map((r) => [r.agent_id, MONTH, r.events, r.n, r.d, r.w, r.i, r.net, r.commission, 'USD'].join(','))].join('\n') + '\n';
}

async function api(path: string, init: RequestInit = {}, key: string | null = KEY): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${reports.url}${path}`, { ...init, headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}), ...(init.headers ?? {}) } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function finished(id: string): Promise<Record<string, unknown>> {
  await reports.store.waitFor(id, (s) => s.state === 'succeeded' || s.state === 'failed', 60_000);
  return (await api(`/reports/${id}`)).body;
}

let lake: LakeCopy;

beforeAll(async () => {
  await requireServer('Kafka', settings.kafka.brokers[0]!);
  await requireServer('S3', hostPortOf(settings.s3.endpoint!));
  kafka = createKafka(settings.kafka, { region: settings.s3.region });
  admin = kafka.admin();
  await admin.connect();
  // The month through the real export.
  const producer = new EventProducer(kafka, settings, topic);
  await producer.setUp();
  await producer.send(monthEvents().map((e) => producer.message(e)));
  const group = `test-reports-${run}`;
  const exporter = await startExport({ files: [testPipeline({ topic, dlq: `${topic}.dlq`, prefix, group })], env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', SLUICE_EXPORT_HTTP_PORT: '0' } });
  await waitDrained(admin, group, topic, 90_000);
  await exporter.stop();
  // A duplicate left in the lake (as an interrupted replay could): counted once.
  const dup = domainEvent(run, 1);
  const writer = new ParquetBatchWriter(
    { columns: [{ name: 'event_id', type: 'string', nullable: false }, { name: 'event_type', type: 'string', nullable: false }, { name: 'agent_id', type: 'string', nullable: false }, { name: 'customer_id', type: 'string', nullable: true }, { name: 'amount_minor', type: 'int64', nullable: true }, { name: 'occurred_at', type: 'timestamp_us', nullable: false }] },
    { compression: 'zstd' },
  );
  writer.append({ event_id: dup.eventId, event_type: dup.type, agent_id: dup.agentId, customer_id: dup.customerId, amount_minor: dup.amount, occurred_at: dup.occurredAtMicros });
  const day = new Date(Number(dup.occurredAtMicros / 1000n)).toISOString().slice(0, 10);
  await createS3Client(settings.s3).send(new PutObjectCommand({ Bucket: settings.s3.bucket, Key: `${prefix}event_type=${dup.type}/dt=${day}/${topic}+9+999999.parquet`, Body: await writer.finish() }));
  lake = await LakeCopy.download(settings, prefix);

  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, session, callback) {
      void simpleParser(stream).then((m) => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), text: m.text ?? '' });
        callback();
      }, callback);
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as Record<string, unknown>);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  const smtpPort = (smtp.server.address() as { port: number }).port;
  reports = await startReports({ env: { ...env, SLUICE_REPORTS_SMTP_URL: `smtp://127.0.0.1:${smtpPort}` } });
}, 240_000);

afterAll(async () => {
  await reports?.stop();
  await admin?.disconnect();
  lake?.close();
  smtp?.close();
  webhook?.close();
});

describe('commission reports', () => {
  it('by REST: 202 at once, then a CSV equal cell for cell to SQL over the same Parquet, with a working link that expires', async () => {
    const t = Date.now();
    const accepted = await api('/reports/generate', { method: 'POST', body: JSON.stringify({ request_id: `rest-${run}`, report_type: 'agent_commissions', month: MONTH }) });
    expect(Date.now() - t).toBeLessThan(2000);
    expect(accepted).toMatchObject({ status: 202, body: { request_id: `rest-${run}`, state: 'queued', status_url: `${reports.url}/reports/rest-${run}` } });
    const status = await finished(`rest-${run}`);
    expect(status.state).toBe('succeeded');
    const link = (status.download as { url: string }).url;
    const csv = await (await fetch(link)).text();
    expect(csv).toBe(await independentCsv(lake));
    const lines = csv.trim().split('\n');
    expect(lines.find((l) => l.startsWith('agent-onboarder,'))).toBe('agent-onboarder,2026-10,3,2,0,0,0,0,5000,USD');
    expect(lines.find((l) => l.startsWith('agent-negative,'))).toBe('agent-negative,2026-10,2,0,1000,9000,0,-8000,0,USD');
    expect(lines.find((l) => l.startsWith('agent-tier,'))).toBe('agent-tier,2026-10,2,0,9000000,0,1000000,10000000,68750,USD');
    expect(lines.some((l) => l.startsWith('agent-september,'))).toBe(false);
    expect(lines.slice(1).some((l) => BigInt(l.split(',')[4]!) > 2n ** 53n)).toBe(true); // sums beyond 2^53, exact
    await new Promise((r) => setTimeout(r, 5000));
    expect((await fetch(link)).status).toBe(403); // the link expired
  }, 120_000);

  it('by topic gives the same file; a repeated request id is answered from its result, not recomputed', async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: env.SLUICE_REPORTS_REQUESTS_TOPIC, acks: -1, messages: [{ key: `topic-${run}`, value: JSON.stringify({ request_id: `topic-${run}`, report_type: 'agent_commissions', month: MONTH }) }] });
    const byTopic = await finished(`topic-${run}`);
    const byRest = (await api(`/reports/rest-${run}`)).body;
    const [a, b] = await Promise.all([fetch((byTopic.download as { url: string }).url).then((r) => r.text()), fetch((byRest.download as { url: string }).url).then((r) => r.text())]);
    expect(a).toBe(b);
    const first = reports.store.get(`topic-${run}`)!;
    await producer.send({ topic: env.SLUICE_REPORTS_REQUESTS_TOPIC, acks: -1, messages: [{ key: `topic-${run}`, value: JSON.stringify({ request_id: `topic-${run}`, report_type: 'agent_commissions', month: MONTH }) }] });
    const again = await reports.store.waitFor(`topic-${run}`, (s) => s.from_earlier_result === true, 30_000);
    expect(again.result).toEqual(first.result); // same key, same generated_at: nothing recomputed
    await producer.disconnect();
    const repeated = await api('/reports/generate', { method: 'POST', body: JSON.stringify({ request_id: `rest-${run}`, report_type: 'agent_commissions', month: MONTH }) });
    expect(repeated).toMatchObject({ status: 202, body: { state: 'succeeded' } });
  }, 120_000);

  it('JSON carries the same rows and the rules version', async () => {
    await api('/reports/generate', { method: 'POST', body: JSON.stringify({ request_id: `json-${run}`, report_type: 'agent_commissions', month: MONTH, format: 'json' }) });
    const status = await finished(`json-${run}`);
    const text = await (await fetch((status.download as { url: string }).url)).text();
    const doc = JSON.parse(text.replace(/:\s*(-?\d{16,})/g, ':"$1"')) as { metadata: { rules_version: string }; rows: Record<string, unknown>[] };
    expect(doc.metadata.rules_version).toBe('domain-default-1');
    const csvRows = (await independentCsv(lake)).trim().split('\n').slice(1);
    expect(doc.rows.map((r) => Object.values(r).join(','))).toEqual(csvRows);
  }, 120_000);

  it('sends the link, never the file, by email and webhook', async () => {
    const hook = `http://127.0.0.1:${(webhook.address() as { port: number }).port}/hook/secret`;
    await api('/reports/generate', { method: 'POST', body: JSON.stringify({ request_id: `notify-${run}`, report_type: 'agent_commissions', month: MONTH, agent_ids: ['agent-tier'], notify: { email: 'ops@example.com', webhook: hook } }) });
    const status = await finished(`notify-${run}`);
    expect(status.notifications).toEqual([
      { channel: 'email', target: 'ops@example.com', ok: true },
      { channel: 'webhook', target: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/…$/), ok: true },
    ]);
    const mail = mails.find((m) => m.text.includes(`notify-${run}`))!;
    expect(mail.to).toBe('ops@example.com');
    const url = /(http:\/\/\S+X-Amz-Signature=\S+)/.exec(mail.text)?.[1];
    expect(url).toBeDefined();
    expect(await (await fetch(url!)).text()).toBe('agent_id,month,events,customers_onboarded,deposits_minor,withdrawals_minor,investments_minor,net_inflow_minor,commission_minor,currency\nagent-tier,2026-10,2,0,9000000,0,1000000,10000000,68750,USD\n');
    const posted = hooks.find((h) => h.request_id === `notify-${run}`)!;
    expect(String(posted.text)).toContain(String(posted.url));
    expect(mail.text).not.toContain('agent-tier,2026-10'); // the link, not the file
  }, 120_000);

  it('answers bad requests with field errors, 401 and 404, and dead-letters malformed requests on the topic', async () => {
    const bad = await api('/reports/generate', { method: 'POST', body: JSON.stringify({ report_type: 'payroll', month: '2026-13', format: 'pdf', notify: { email: 'nope' } }) });
    expect(bad.status).toBe(400);
    expect((bad.body.errors as { field: string }[]).map((e) => e.field).sort()).toEqual(['format', 'month', 'notify.email', 'report_type']);
    expect((await api('/reports/generate', { method: 'POST', body: '{}' }, null)).status).toBe(401);
    expect((await api('/reports/generate', { method: 'POST', body: '{}' }, 'wrong-key-0123456789')).status).toBe(401);
    expect((await api(`/reports/no-such-${run}`)).status).toBe(404);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: env.SLUICE_REPORTS_REQUESTS_TOPIC, messages: [{ value: 'not json' }, { value: JSON.stringify({ report_type: 'agent_commissions', month: 'October' }) }] });
    await producer.disconnect();
    const letters = await collectUntilQuiet(kafka, env.SLUICE_REPORTS_DLQ_TOPIC, (m) => m.length >= 2);
    expect(letters.map((m) => readDeadLetterHeaders(m.headers)?.reason).sort()).toEqual(['invalid_request', 'malformed_json']);
    expect(letters.map((m) => m.value?.toString()).sort()).toEqual(['not json', JSON.stringify({ report_type: 'agent_commissions', month: 'October' })].sort());
  }, 60_000);

  it('the schedule requests the previous month once, whatever the number of runs', async () => {
    const id = await reports.runSchedule(new Date('2026-11-01T06:00:00Z'));
    expect(id).toBe('scheduled-agent_commissions-2026-10');
    const first = await reports.store.waitFor(id, (s) => s.state === 'succeeded', 60_000);
    await reports.runSchedule(new Date('2026-11-01T06:00:05Z'));
    const second = await reports.store.waitFor(id, (s) => s.from_earlier_result === true, 30_000);
    expect(second.result).toEqual(first.result);
    expect(first.request.month).toBe('2026-10');
  }, 120_000);
});
