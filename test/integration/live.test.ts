import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse } from '../support/sse.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { changelogTopicName } from '../../processors/core/state/changelog.js';
import type { LiveTotals } from '../../processors/live/output.js';
import { commission } from '../../processors/reports/commission.js';
import { buildDist } from '../support/build.js';
import { freePort, waitDrained } from '../support/export-harness.js';
import { cli } from '../support/ops-lake.js';
import { AgentEventProducer, exportUntilCommitted, generateMonth, HAND_COMPUTED, producedTruth, type MonthEvent } from '../support/reports-lake.js';
import { eventually, requireServer, testSettings } from '../support/servers.js';
import { SluiceProcess } from '../support/sluice-process.js';

/**
 * `sluice live` end to end on the real broker and registry: the report tests' generated
 * month (duplicates within and across runs, late events, month boundaries, sums past
 * 2^53 and 2^63, half-even ties, the tier edge) produced as the normalizer writes events,
 * counted by two live instances (a rebalance) one of which is SIGKILLed three times
 * mid-stream; the totals the API serves must equal the month computed from what was
 * produced, the hand-computed rows, and `sluice reconcile` must find no difference with
 * the batch report over the lake the real export writes.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const base = `test.live.${run}`;
const eventsTopic = `${base}.events`;
const outputTopic = `${base}.out`;
const groupId = `test-live-${run}`;
const API_KEY = `live-test-key-${run}-0123456789`;
const kafka: Kafka = createKafka(settings.kafka, { region: settings.s3.region });
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-live-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const processes: SluiceProcess[] = [];
let admin: Admin;

function liveProcess(instance: string, port: number): SluiceProcess {
  const p = new SluiceProcess(`live-${run}-${instance}`, ['live'], {
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_LIVE_EVENTS_TOPIC: eventsTopic,
    SLUICE_LIVE_OUTPUT_TOPIC: outputTopic,
    SLUICE_LIVE_DLQ_TOPIC: `${base}.dlq`,
    SLUICE_LIVE_GROUP_ID: groupId,
    SLUICE_LIVE_INSTANCE_ID: instance,
    SLUICE_LIVE_STATE_DIR: stateDir,
    SLUICE_LIVE_HTTP_PORT: String(port),
    SLUICE_LIVE_API_KEY: API_KEY,
    SLUICE_LIVE_SESSION_TIMEOUT_MS: '6000',
    SLUICE_LIVE_MAX_BATCH_RECORDS: '200',
    // The generated month is October 2026: keep it (and its neighbours) open whatever today is.
    SLUICE_LIVE_OPEN_MONTHS: '120',
  }, port);
  processes.push(p);
  return p;
}

async function ready(p: SluiceProcess, timeoutMs = 60_000): Promise<void> {
  await eventually(async () => {
    if (p.exitCode !== null) throw new Error(`${p.name} exited ${p.exitCode}; see ${p.log}`);
    return (await p.readiness())?.status === 200 ? true : undefined;
  }, timeoutMs, `${p.name} ready`);
}

const api = (p: SluiceProcess, path: string, key: string | null = API_KEY) => fetch(`http://127.0.0.1:${p.port}${path}`, { headers: key ? { 'x-api-key': key } : {} });

async function monthRows(p: SluiceProcess, month: string): Promise<LiveTotals[]> {
  const rows: LiveTotals[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await api(p, `/live/months/${month}?limit=7${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { rows: LiveTotals[]; next_after?: string };
    rows.push(...page.rows);
    if (page.next_after === undefined) return rows;
    after = page.next_after;
  }
}

beforeAll(async () => {
  await requireServer('Kafka', settings.kafka.brokers[0]!, async () => undefined);
  buildDist('processors/cli/main.js');
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  for (const p of processes) await p.kill('SIGKILL');
  await admin.deleteTopics({ topics: [eventsTopic, outputTopic, `${base}.dlq`, changelogTopicName(groupId, 'live')] }).catch(() => undefined);
  await admin.deleteGroups([groupId]).catch(() => undefined);
  await admin.disconnect();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('sluice live', () => {
  it('counts the generated month exactly once through three SIGKILLs and a rebalance, serves it, and reconcile finds no difference with the batch report', async () => {
    const month = generateMonth(run, 900);
    const producer = new AgentEventProducer(kafka, settings, eventsTopic);
    await producer.setUp(6);
    const all: MonthEvent[] = [...month.phase1, ...month.phase2];
    const chunks = 6;
    const chunk = (k: number) => all.slice(Math.floor((all.length * k) / chunks), Math.floor((all.length * (k + 1)) / chunks));

    const a = liveProcess('a', await freePort()).start();
    await ready(a);
    // Unauthenticated and key-in-URL requests are refused.
    expect((await api(a, '/live/months/2026-10', null)).status).toBe(401);
    expect((await api(a, `/live/months/2026-10?api_key=${API_KEY}`, null)).status).toBe(400);

    await producer.sendEvents(chunk(0));
    await sleep(1500);
    expect(await a.kill('SIGKILL')).toBe(128); // 1st SIGKILL, mid-stream
    a.start();
    await producer.sendEvents(chunk(1));
    await ready(a);
    const b = liveProcess('b', await freePort()).start(); // the rebalance: partitions move to b with their state
    await producer.sendEvents(chunk(2));
    await ready(b);
    await sleep(1000);
    expect(await a.kill('SIGKILL')).toBe(128); // 2nd
    await producer.sendEvents(chunk(3));
    a.start();
    await sleep(2000);
    expect(await b.kill('SIGKILL')).toBe(128); // 3rd
    await producer.sendEvents(chunk(4));
    b.start();
    await producer.sendEvents(chunk(5));
    await ready(a);
    await ready(b);
    await waitDrained(admin, groupId, eventsTopic, 120_000);

    // What was produced, per agent of the month, priced by the report's rules.
    const truth = producedTruth(all, month.month);
    const expected = [...truth].map(([agentId, t]) => commission({ agentId, events: t.events, customersOnboarded: t.customers.size, depositsMinor: t.d, withdrawalsMinor: t.w, investmentsMinor: t.i }));
    const sseAgent = `agent-sse-${run}`;
    const rows = await eventually(async () => {
      const r = await monthRows(b, month.month);
      return r.length === expected.length && r.reduce((n, x) => n + x.events, 0) === expected.reduce((n, x) => n + x.events, 0) ? r : undefined;
    }, 30_000, 'the view holds every agent of the month');
    const byAgent = new Map(rows.map((r) => [r.agent_id, r]));
    for (const e of expected) {
      const r = byAgent.get(e.agentId);
      expect([e.agentId, r?.events, r?.customers_onboarded, r?.deposits_minor, r?.withdrawals_minor, r?.investments_minor, r?.net_inflow_minor, r?.commission_minor]).toEqual([
        e.agentId, e.events, e.customersOnboarded, String(e.depositsMinor), String(e.withdrawalsMinor), String(e.investmentsMinor), String(e.netInflowMinor), String(e.commissionMinor),
      ]);
    }
    for (const [agentId, cells] of Object.entries(HAND_COMPUTED)) {
      const r = byAgent.get(agentId)!;
      expect([r.events, r.customers_onboarded, r.deposits_minor, r.withdrawals_minor, r.investments_minor, r.net_inflow_minor, r.commission_minor], agentId).toEqual(cells);
    }
    // Report order: agent_id by code point (U+FF5E before U+1F600, unlike UTF-16 order).
    const ids = rows.map((r) => r.agent_id);
    expect(ids.indexOf('agent-\uFF5E')).toBeLessThan(ids.indexOf('agent-\u{1F600}'));
    // Either instance answers for any agent.
    for (const p of [a, b]) {
      const res = await api(p, `/live/agents/${encodeURIComponent('agent-sum-past-2^63')}/months/2026-10`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as LiveTotals).commission_minor).toBe('108086391056891904');
    }
    expect((await api(a, '/live/agents/nobody/months/2026-10')).status).toBe(404);
    // SSE of one agent, open before its events arrive.
    const sse = new AbortController();
    const seen: LiveTotals[] = [];
    const stream = await fetch(`http://127.0.0.1:${b.port}/live/stream?agent_id=${encodeURIComponent(sseAgent)}`, { headers: { 'x-api-key': API_KEY }, signal: sse.signal });
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = readSse<LiveTotals>(stream.body, (t) => seen.push(t)).catch(() => undefined);

    // Another agent's event, then one of the watched agent: only the latter is streamed.
    const at = BigInt(Date.UTC(2026, 9, 20)) * 1000n;
    const extra = (agentId: string, n: number): MonthEvent => ({ eventId: `${run}-0000-4000-9000-${String(n).padStart(12, '0')}`, type: 'deposit_made', agentId, customerId: 'customer-sse', amount: 4242n, occurredAtMicros: at, receivedAtMicros: at + 1000n });
    await producer.sendEvents([extra('agent-00', 1), extra(sseAgent, 2)]);
    await eventually(async () => (seen.length > 0 ? true : undefined), 30_000, 'the SSE event of the watched agent');
    sse.abort();
    await reading;
    expect(seen.map((t) => [t.agent_id, t.deposits_minor, t.commission_minor])).toEqual([[sseAgent, '4242', '21']]);

    // The batch path: the real export writes the lake; reconcile compares cell by cell.
    const prefix = `test-live/${run}/`;
    await exportUntilCommitted(kafka, { topic: eventsTopic, dlqTopic: `${base}.export-dlq`, prefix, group: `${groupId}-export` }, 120_000);
    const env = { SLUICE_LIVE_OUTPUT_TOPIC: outputTopic, SLUICE_REPORTS_LAKE_PREFIX: prefix, SLUICE_LOG_LEVEL: 'warn' };
    const reconciled = await cli(['reconcile', '--month', month.month, '--no-staging'], env, 120_000);
    expect(reconciled.stdout, reconciled.stderr).toContain('no difference');
    expect(reconciled.code).toBe(0);
    // A month live has not seen differs from the lake's: reconcile says so and exits 1.
    const differing = await cli(['reconcile', '--month', '2026-09', '--no-staging'], { ...env, SLUICE_LIVE_OUTPUT_TOPIC: `${base}.dlq` }, 120_000);
    expect(differing.code).toBe(1);
    expect(differing.stdout).toMatch(/batch: agent "agent-\d+": live absent, batch present/);
  }, 600_000);
});
