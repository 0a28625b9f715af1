import { randomUUID } from 'node:crypto';
import { connects, externalIpv4 } from '../support/sockets.js';
import { Writable } from 'node:stream';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { startIngestApi, type RunningIngestApi } from '../../processors/ingest-api/ingest-api.js';
import { openApiSchemaCheck } from '../support/openapi-schemas.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';

const settings = testSettings();
const KEY = 'integration-test-key-0123456789';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** Every answer seen, as "METHOD /template STATUS": checked against the OpenAPI document at the end. */
const seen = new Set<string>();
/** Every JSON body answered, to check against the documented response schemas. */
const answered: { method: string; template: string; status: number; body: unknown }[] = [];

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

interface CallOptions {
  /** A value sent as JSON, or text sent as is. */
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Leave out the API key, or send this one. */
  key?: string | null;
  contentType?: string | null;
}

let api: RunningIngestApi;
let noDatabase: RunningIngestApi;
let pool: pg.Pool;
const run = randomUUID().slice(0, 8);

async function call(base: string, method: string, template: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== null) headers['x-api-key'] = options.key ?? KEY;
  const body = options.text ?? (options.json === undefined ? undefined : JSON.stringify(options.json));
  const contentType = options.contentType === undefined ? (body === undefined ? null : 'application/json') : options.contentType;
  if (contentType !== null) headers['content-type'] = contentType;
  const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  seen.add(`${method} ${template} ${response.status}`);
  let parsed: unknown = text;
  if (response.headers.get('content-type')?.startsWith('application/json')) {
    parsed = JSON.parse(text);
    answered.push({ method, template, status: response.status, body: parsed });
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

const postEvents = (options: CallOptions) => call(api.url, 'POST', '/events', '/events', options);

function deposit(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_id: randomUUID(),
    event_type: 'deposit_made',
    agent_id: `agent-${run}`,
    customer_id: `customer-${run}`,
    amount_minor: 1250,
    currency: 'USD',
    occurred_at: '2026-11-01T10:00:00Z',
    ...overrides,
  };
}

interface StoredRow {
  event_id: string;
  event_type: string;
  agent_id: string;
  customer_id: string | null;
  amount_minor: bigint | null;
  currency: string | null;
  occurred_at: string;
  received_at: string;
  source: string | null;
  session_id: string | null;
  correlation_id: string | null;
  metadata: unknown;
}

async function rows(ids: readonly unknown[]): Promise<StoredRow[]> {
  const utc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${column}`;
  const result = await pool.query<StoredRow>(
    `SELECT event_id::text, event_type, agent_id, customer_id, amount_minor, currency, ${utc('occurred_at')}, ${utc('received_at')},
            source, session_id, correlation_id, metadata
       FROM staging.agent_events WHERE event_id = ANY($1::uuid[]) ORDER BY occurred_at, event_id`,
    [ids.map(String)],
  );
  return result.rows;
}

async function expectNoRows(ids: readonly unknown[]): Promise<void> {
  expect(await rows(ids.filter((id) => typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id)))).toEqual([]);
}

const idsOf = (events: Record<string, unknown>[]) => events.map((e) => e.event_id);

describe('ingest API against PostgreSQL', () => {
  beforeAll(async () => {
    await requireServer('PostgreSQL', hostPortOf(settings.database.url), async () => {
      const probe = createPool(settings.database.url, { max: 1 });
      try {
        const { rows: r } = await probe.query<{ t: string | null }>("SELECT to_regclass('staging.customers')::text AS t");
        if (!r[0]?.t) throw new Error('staging.customers is missing: the migrations are not applied (infra/postgres/migrate.sh)');
      } finally {
        await probe.end();
      }
    });
    pool = createPool(settings.database.url, { max: 2 });
    const env = { ...process.env, SLUICE_INGEST_API_KEY: KEY, SLUICE_LOG_LEVEL: 'silent' };
    api = await startIngestApi({ env, port: 0 });
    // The same API with its database away: what clients get during an outage.
    noDatabase = await startIngestApi({ env: { ...env, SLUICE_DATABASE_URL: 'postgres://sluice:sluice@127.0.0.1:1/sluice' }, port: 0 });
  });

  afterAll(async () => {
    await api?.close();
    await noDatabase?.close();
    await pool?.end();
  });

  describe('valid events', () => {
    it('stores one event exactly, enriched from the request; a 2^53 + 1 amount arrives intact', async () => {
      const event = deposit({ amount_minor: '9007199254740993', occurred_at: '2026-11-01T11:30:00.123456+01:30', metadata: { branch: 'north', quote: 'a"b\\c', n: 12345678901234567890 } });
      const text = JSON.stringify(event).replace('12345678901234567000', '12345678901234567890');
      const answer = await postEvents({ text, headers: { 'x-sluice-channel': 'mobile', 'x-session-id': `session-${run}`, traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } });
      expect(answer.status).toBe(201);
      expect(answer.body).toEqual({
        results: [{ event_id: event.event_id, status: 'inserted', agent_id: `agent-${run}` }],
        inserted: 1,
        duplicates: 0,
        received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
      });
      const stored = await rows([event.event_id]);
      expect(stored).toEqual([
        {
          event_id: event.event_id,
          event_type: 'deposit_made',
          agent_id: `agent-${run}`,
          customer_id: `customer-${run}`,
          amount_minor: 9007199254740993n,
          currency: 'USD',
          occurred_at: '2026-11-01T10:00:00.123456Z',
          received_at: answer.body.received_at,
          source: 'mobile',
          session_id: `session-${run}`,
          correlation_id: TRACE_ID,
          metadata: { branch: 'north', quote: 'a"b\\c', n: expect.any(Number) },
        },
      ]);
      // jsonb keeps the metadata number's digits.
      const { rows: meta } = await pool.query<{ n: string }>("SELECT metadata->>'n' AS n FROM staging.agent_events WHERE event_id = $1", [event.event_id]);
      expect(meta[0]!.n).toBe('12345678901234567890');
      // received_at is the server's clock, now.
      expect(Math.abs(Date.parse(answer.body.received_at) - Date.now())).toBeLessThan(60_000);
    });

    it('stores a batch of every event type in one request, the event fields winning over headers', async () => {
      const batch = [
        { event_id: randomUUID(), event_type: 'customer_onboarded', agent_id: `agent-${run}`, customer_id: `new-${run}`, occurred_at: '2026-11-02T09:00:00Z', source: 'web' },
        deposit({ event_type: 'withdrawal_made', amount_minor: 9007199254740991, occurred_at: '2026-11-02T10:00:00Z', correlation_id: 'own-corr' }),
        deposit({ event_type: 'investment_made', amount_minor: '9223372036854775807', occurred_at: '2026-11-02T11:00:00Z', metadata: { product: 'fund-a' } }),
      ];
      const answer = await postEvents({ json: batch, headers: { 'x-sluice-channel': 'backend', 'x-correlation-id': `corr-${run}` } });
      expect(answer.status).toBe(201);
      expect(answer.body.results.map((r: { event_id: string; status: string }) => [r.event_id, r.status])).toEqual(batch.map((e) => [e.event_id, 'inserted']));
      const stored = await rows(idsOf(batch));
      expect(stored.map((r) => [r.event_type, r.customer_id, r.amount_minor, r.currency, r.source, r.correlation_id, r.metadata])).toEqual([
        ['customer_onboarded', `new-${run}`, null, null, 'web', `corr-${run}`, null],
        ['withdrawal_made', `customer-${run}`, 9007199254740991n, 'USD', 'backend', 'own-corr', null],
        ['investment_made', `customer-${run}`, 9223372036854775807n, 'USD', 'backend', `corr-${run}`, { product: 'fund-a' }],
      ]);
      // One request, one received_at.
      expect(new Set(stored.map((r) => r.received_at)).size).toBe(1);
    });

    it('is idempotent by event_id: a repeat stores nothing and answers duplicate with the stored agent', async () => {
      const first = deposit();
      expect((await postEvents({ json: first })).status).toBe(201);
      // Same id again, even with another agent: the stored row stands.
      const again = await postEvents({ json: { ...first, agent_id: 'someone-else' } });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ results: [{ event_id: first.event_id, status: 'duplicate', agent_id: `agent-${run}` }], inserted: 0, duplicates: 1 });
      // A batch mixing a stored event, a new one and a repeat of the new one.
      const fresh = deposit();
      const mixed = await postEvents({ json: [first, fresh, fresh] });
      expect(mixed.status).toBe(201);
      expect(mixed.body.results.map((r: { status: string }) => r.status)).toEqual(['duplicate', 'inserted', 'duplicate']);
      expect(mixed.body).toMatchObject({ inserted: 1, duplicates: 2 });
      const stored = await rows([first.event_id, fresh.event_id]);
      expect(stored.map((r) => r.agent_id)).toEqual([`agent-${run}`, `agent-${run}`]);
      const { rows: counted } = await pool.query<{ n: bigint }>('SELECT count(*) AS n FROM staging.agent_events WHERE event_id = ANY($1::uuid[])', [[first.event_id, fresh.event_id]]);
      expect(counted[0]!.n).toBe(2n);
    });

    it('stores each event once when overlapping batches race (no deadlock, no error)', async () => {
      for (let round = 0; round < 5; round++) {
        const batch = Array.from({ length: 20 }, () => deposit());
        const answers = await Promise.all([postEvents({ json: batch }), postEvents({ json: [...batch].reverse() }), postEvents({ json: batch.slice(5, 15) })]);
        expect(answers.map((a) => a.status).every((s) => s === 200 || s === 201)).toBe(true);
        const statuses = answers.flatMap((a) => a.body.results as { event_id: string; status: string }[]);
        // Each event_id was inserted by exactly one of the racing requests.
        for (const e of batch) expect(statuses.filter((r) => r.event_id === e.event_id && r.status === 'inserted')).toHaveLength(1);
        expect((await rows(idsOf(batch))).length).toBe(20);
      }
    });

    it('takes an upper-case event_id as the same key', async () => {
      const event = deposit();
      expect((await postEvents({ json: event })).status).toBe(201);
      const upper = await postEvents({ json: { ...event, event_id: String(event.event_id).toUpperCase() } });
      expect(upper.status).toBe(200);
      expect(upper.body.results[0]).toEqual({ event_id: event.event_id, status: 'duplicate', agent_id: `agent-${run}` });
    });

    it('stores a full batch of 1000 events in one transaction quickly', async () => {
      const batch = Array.from({ length: 1000 }, (_, i) => deposit({ amount_minor: i + 1, metadata: { i } }));
      const started = Date.now();
      const answer = await postEvents({ json: batch });
      const ms = Date.now() - started;
      expect(answer.status).toBe(201);
      expect(answer.body.inserted).toBe(1000);
      expect((await rows(idsOf(batch))).length).toBe(1000);
      expect(ms).toBeLessThan(5000);
    });
  });

  describe('customers and their agents', () => {
    const customer = `assigned-${run}`;
    const path = `/customers/${encodeURIComponent(customer)}`;
    const template = '/customers/{customer_id}';

    it('assigns, reads and reassigns a customer', async () => {
      const created = await call(api.url, 'PUT', template, path, { json: { agent_id: `agent-a-${run}` } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ customer_id: customer, agent_id: `agent-a-${run}` });
      const same = await call(api.url, 'PUT', template, path, { json: { agent_id: `agent-a-${run}` } });
      expect(same.status).toBe(200);
      expect(same.body.updated_at).toBe(created.body.updated_at);
      const read = await call(api.url, 'GET', template, path);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);
    });

    it("credits an event without agent_id to the customer's agent, at ingest time", async () => {
      const before = deposit({ agent_id: undefined, customer_id: customer });
      const answer = await postEvents({ json: before });
      expect(answer.status).toBe(201);
      expect(answer.body.results[0].agent_id).toBe(`agent-a-${run}`);

      const moved = await call(api.url, 'PUT', template, path, { json: { agent_id: `agent-b-${run}` } });
      expect(moved.status).toBe(200);
      expect(moved.body.agent_id).toBe(`agent-b-${run}`);
      const after = deposit({ agent_id: null, customer_id: customer });
      expect((await postEvents({ json: after })).body.results[0].agent_id).toBe(`agent-b-${run}`);
      // Events already stored keep the agent they were credited to.
      expect((await rows([before.event_id, after.event_id])).map((r) => r.agent_id).sort()).toEqual([`agent-a-${run}`, `agent-b-${run}`]);
    });

    it('refuses an event whose customer has no agent (422 on agent_id), storing nothing of the batch', async () => {
      const batch = [deposit(), deposit({ agent_id: undefined, customer_id: `nobody-${run}` })];
      const answer = await postEvents({ json: batch });
      expect(answer.status).toBe(422);
      expect(answer.body.errors).toEqual([{ index: 1, field: 'agent_id', code: 'unknown_customer', message: expect.stringContaining('has no assigned agent') }]);
      await expectNoRows(idsOf(batch));
    });

    it('refuses bad assignments', async () => {
      expect((await call(api.url, 'PUT', template, path, { json: [{ agent_id: 'x' }] })).status).toBe(400);
      const missing = await call(api.url, 'PUT', template, path, { json: { agent: 'x' } });
      expect(missing.status).toBe(422);
      expect(missing.body.errors.map((e: { field: string; code: string }) => [e.field, e.code])).toEqual([
        ['agent', 'unknown_field'],
        ['agent_id', 'missing_field'],
      ]);
      expect((await call(api.url, 'PUT', template, path, { text: '{"agent_id":"x"}', contentType: 'text/plain' })).status).toBe(415);
      expect((await call(api.url, 'PUT', template, path, { json: { agent_id: 'x' }, key: null })).status).toBe(401);
      expect((await call(api.url, 'PUT', template, path, { json: { agent_id: 'x'.repeat(1024 * 1024) } })).status).toBe(413);
      expect((await call(api.url, 'GET', template, path, { key: 'wrong-key-0123456789' })).status).toBe(401);
      expect((await call(api.url, 'GET', template, `/customers/unknown-${run}`)).status).toBe(404);
      // The refused writes changed nothing.
      expect((await call(api.url, 'GET', template, path)).body.agent_id).toBe(`agent-b-${run}`);
    });

    it('takes customer ids longer than the router parameter limit (100)', async () => {
      const long = `long-${run}-${'x'.repeat(200)}`;
      const answer = await call(api.url, 'PUT', template, `/customers/${long}`, { json: { agent_id: `agent-${run}` } });
      expect(answer.status).toBe(201);
      const event = deposit({ agent_id: undefined, customer_id: long });
      expect((await postEvents({ json: event })).body.results[0].agent_id).toBe(`agent-${run}`);
    });
  });

  describe('refused requests store nothing', () => {
    it('400: malformed JSON', async () => {
      const event = deposit();
      const answer = await postEvents({ text: JSON.stringify(event).slice(0, -1) });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('malformed_json');
      await expectNoRows([event.event_id]);
      expect((await postEvents({ text: '' })).status).toBe(400);
    });

    it('400: the wrong shape', async () => {
      const event = deposit();
      for (const json of ['an event', [], [event, 5], null, { events: [event] }]) {
        const answer = await postEvents({ json });
        // {"events": [...]} is an object, so it is read as ONE event, whose fields are wrong: 422.
        const expected = json !== null && typeof json === 'object' && !Array.isArray(json) ? 422 : 400;
        expect(answer.status, JSON.stringify(json)).toBe(expected);
      }
      await expectNoRows([event.event_id]);
    });

    it.each([
      ['an unknown event_type', { event_type: 'deposit' }, 'event_type', 'unknown_event_type'],
      ['a deposit without currency', { currency: undefined }, 'currency', 'missing_field'],
      ['a withdrawal without amount', { event_type: 'withdrawal_made', amount_minor: undefined }, 'amount_minor', 'missing_field'],
      ['an event without customer_id', { customer_id: undefined }, 'customer_id', 'missing_field'],
      ['an event without event_id', { event_id: undefined }, 'event_id', 'missing_field'],
      ['an event_id that is no UUID', { event_id: 'evt-1' }, 'event_id', 'invalid_value'],
      ['a zero amount', { amount_minor: 0 }, 'amount_minor', 'invalid_amount'],
      ['a negative amount', { amount_minor: '-100' }, 'amount_minor', 'invalid_amount'],
      ['a fractional amount', { amount_minor: 12.5 }, 'amount_minor', 'invalid_amount'],
      ['an amount beyond 64 bits', { amount_minor: '9223372036854775808' }, 'amount_minor', 'invalid_amount'],
      ['another currency', { currency: 'EUR' }, 'currency', 'currency_mismatch'],
      ['occurred_at without a time zone', { occurred_at: '2026-11-01T10:00:00' }, 'occurred_at', 'invalid_timestamp'],
      ['occurred_at more than 24 h ahead', { occurred_at: new Date(Date.now() + 25 * 3600_000).toISOString() }, 'occurred_at', 'invalid_timestamp'],
      ['an amount on customer_onboarded', { event_type: 'customer_onboarded', currency: undefined }, 'amount_minor', 'not_allowed'],
      ['a client received_at', { received_at: '2026-11-01T10:00:00Z' }, 'received_at', 'unknown_field'],
      ['an unknown source', { source: 'fax' }, 'source', 'invalid_value'],
      ['a NUL in an id', { agent_id: 'a\u0000b' }, 'agent_id', 'invalid_value'],
    ])('422: %s', async (_what, overrides, field, code) => {
      const good = deposit();
      const bad = deposit(overrides);
      const answer = await postEvents({ json: [good, bad] });
      expect(answer.status).toBe(422);
      expect(answer.body).toMatchObject({ error: 'validation_failed', error_count: 1 });
      expect(answer.body.errors[0]).toMatchObject({ index: 1, field, code });
      // All-or-nothing: the valid event of the batch is not stored either.
      await expectNoRows([good.event_id, bad.event_id]);
    });

    it('422: an amount beyond 2^53 sent as a JSON number (it may have been rounded on the way)', async () => {
      const event = deposit({ amount_minor: 1 });
      const answer = await postEvents({ text: JSON.stringify(event).replace('"amount_minor":1', '"amount_minor":9007199254740993') });
      expect(answer.status).toBe(422);
      expect(answer.body.errors[0]).toMatchObject({ field: 'amount_minor', code: 'invalid_amount', message: expect.stringContaining('"9007199254740993"') });
      await expectNoRows([event.event_id]);
    });

    it('422: a bad X-Sluice-Channel header', async () => {
      const event = deposit();
      const answer = await postEvents({ json: event, headers: { 'x-sluice-channel': 'carrier-pigeon' } });
      expect(answer.status).toBe(422);
      expect(answer.body.errors).toEqual([{ field: 'X-Sluice-Channel', code: 'invalid_value', message: expect.any(String) }]);
      await expectNoRows([event.event_id]);
    });

    it('422: one event_id twice in a batch with different content', async () => {
      const event = deposit();
      const answer = await postEvents({ json: [event, { ...event, amount_minor: 999 }] });
      expect(answer.status).toBe(422);
      expect(answer.body.errors[0]).toMatchObject({ index: 1, field: 'event_id', code: 'conflicting_duplicate' });
      await expectNoRows([event.event_id]);
    });

    it('422: lists every problem of every event, each with its index', async () => {
      const batch = [deposit({ amount_minor: -1 }), deposit(), deposit({ currency: 'GBP', occurred_at: 'soon' })];
      const answer = await postEvents({ json: batch });
      expect(answer.status).toBe(422);
      expect(answer.body.errors.map((e: { index: number; field: string }) => [e.index, e.field])).toEqual([
        [0, 'amount_minor'],
        [2, 'currency'],
        [2, 'occurred_at'],
      ]);
      await expectNoRows(idsOf(batch));
    });

    it('413: a body over the limit (1 MiB)', async () => {
      const event = deposit({ metadata: { padding: 'x'.repeat(1024 * 1024) } });
      const answer = await postEvents({ json: event });
      expect(answer.status).toBe(413);
      expect(answer.body.error).toBe('payload_too_large');
      await expectNoRows([event.event_id]);
    });

    it('413: more events than a batch may hold (1000)', async () => {
      const batch = Array.from({ length: 1001 }, () => deposit());
      const answer = await postEvents({ json: batch });
      expect(answer.status).toBe(413);
      expect(answer.body.message).toMatch(/1001 events; at most 1000/);
      await expectNoRows(idsOf(batch));
    });

    it('401: no API key, or a wrong one (before looking at the body)', async () => {
      const event = deposit();
      for (const key of [null, 'wrong-key-0123456789', `${KEY}x`]) {
        const answer = await postEvents({ json: event, key });
        expect(answer.status).toBe(401);
        expect(answer.body.error).toBe('unauthorized');
      }
      expect((await postEvents({ text: 'not even json', key: null })).status).toBe(401);
      await expectNoRows([event.event_id]);
    });

    it('415: a body that is not sent as application/json', async () => {
      const event = deposit();
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', null]) {
        const answer = await postEvents({ text: JSON.stringify(event), contentType });
        expect(answer.status, String(contentType)).toBe(415);
        expect(answer.body.error).toBe('unsupported_media_type');
      }
      expect((await postEvents({ json: event, contentType: 'application/json; charset=utf-8' })).status).toBe(201);
    });

    it('404: an unknown route', async () => {
      const answer = await call(api.url, 'GET', '(unmatched)', '/nope');
      expect(answer.status).toBe(404);
      expect(answer.body.error).toBe('not_found');
      expect((await call(api.url, 'DELETE', '(unmatched)', '/events')).status).toBe(404);
    });

    it('503 with Retry-After while PostgreSQL is away, and /readyz says so', async () => {
      const event = deposit();
      const answer = await call(noDatabase.url, 'POST', '/events', '/events', { json: event });
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('2');
      expect(answer.body.error).toBe('unavailable');
      await expectNoRows([event.event_id]);
      expect((await call(noDatabase.url, 'PUT', '/customers/{customer_id}', '/customers/c', { json: { agent_id: 'a' } })).status).toBe(503);
      expect((await call(noDatabase.url, 'GET', '/customers/{customer_id}', '/customers/c')).status).toBe(503);
      const ready = await call(noDatabase.url, 'GET', '/readyz', '/readyz', { key: null });
      expect(ready.status).toBe(503);
      expect(ready.body.checks.postgres).toMatch(/ECONNREFUSED|connect/);
      // Validation still answers without the database.
      expect((await call(noDatabase.url, 'POST', '/events', '/events', { json: deposit({ currency: 'EUR' }) })).status).toBe(422);
    });
  });

  describe('hardening', () => {
    /** An API of its own whose JSON log lines (debug level: every request) are captured. */
    async function loggedApi(): Promise<{ api: RunningIngestApi; log: () => string }> {
      let captured = '';
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          captured += chunk.toString('utf8');
          done();
        },
      });
      const logged = await startIngestApi({ env: { ...process.env, SLUICE_INGEST_API_KEY: KEY, SLUICE_LOG_LEVEL: 'debug' }, port: 0, logDestination: destination });
      return { api: logged, log: () => captured };
    }

    it('400 for an API key in the query string (any common name), which is never logged; URLs are logged without their query', async () => {
      const { api: logged, log } = await loggedApi();
      try {
        const secret = `SECRET-${randomUUID()}`;
        const event = deposit();
        for (const name of ['api_key', 'apikey', 'apiKey', 'key', 'X-API-Key', 'x_api_key', 'access_token', 'token']) {
          // Even with the right key in the header: the URL has already leaked the one in the query.
          const answer = await call(logged.url, 'POST', '/events', `/events?${encodeURIComponent(name)}=${secret}`, { json: event });
          expect(answer.status, name).toBe(400);
          expect(answer.body.error).toBe('bad_request');
          expect(answer.body.message).toContain('X-API-Key header');
          expect(JSON.stringify(answer.body)).not.toContain(secret);
        }
        await expectNoRows([event.event_id]);
        // Other query strings are not logged either (a 401 and a 2xx, both logged with their path only).
        expect((await call(logged.url, 'POST', '/events', `/events?trace=${secret}-2`, { json: event, key: 'wrong-key-0123456789' })).status).toBe(401);
        expect((await call(logged.url, 'POST', '/events', `/events?trace=${secret}-3`, { json: event })).status).toBe(201);
        const lines = log()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { msg: string; url?: string; status?: number });
        expect(lines.filter((l) => l.msg === 'request refused').map((l) => [l.url, l.status])).toEqual([...Array(8).fill(['/events', 400]), ['/events', 401]]);
        expect(lines.filter((l) => l.msg === 'request').map((l) => [l.url, l.status])).toEqual([['/events', 201]]);
        expect(log()).not.toContain(secret);
        // The customer lookup refuses a key in the query string the same way.
        const lookup = await call(logged.url, 'GET', '/customers/{customer_id}', `/customers/c-${run}?api_key=${secret}`);
        expect(lookup.status).toBe(400);
        expect(lookup.body.error).toBe('bad_request');
        expect(JSON.stringify(lookup.body)).not.toContain(secret);
        expect(log()).not.toContain(secret);
      } finally {
        await logged.close();
      }
    });

    it('listens on 127.0.0.1 only by default; SLUICE_HTTP_API_HOST=0.0.0.0 opens it to every interface', async () => {
      const external = externalIpv4();
      expect(api.host).toBe('127.0.0.1');
      expect(await connects('127.0.0.1', api.port)).toBe(true);
      expect(await connects(external, api.port), `${external}:${api.port} must be closed`).toBe(false);
      const open = await startIngestApi({ env: { ...process.env, SLUICE_INGEST_API_KEY: KEY, SLUICE_LOG_LEVEL: 'silent', SLUICE_HTTP_API_HOST: '0.0.0.0' }, port: 0 });
      try {
        expect(open.host).toBe('0.0.0.0');
        const health = await fetch(`http://${external}:${open.port}/healthz`);
        expect(health.status).toBe(200);
      } finally {
        await open.close();
      }
    });
  });

  describe('operations', () => {
    it('serves /healthz, /readyz and /metrics without a key', async () => {
      expect((await call(api.url, 'GET', '/healthz', '/healthz', { key: null })).status).toBe(200);
      const ready = await call(api.url, 'GET', '/readyz', '/readyz', { key: null });
      expect(ready).toMatchObject({ status: 200, body: { status: 'ready', checks: { postgres: 'ok' } } });
      const metrics = await call(api.url, 'GET', '/metrics', '/metrics', { key: null });
      expect(metrics.status).toBe(200);
      const text = metrics.body as string;
      for (const outcome of ['inserted', 'duplicate', 'rejected']) {
        const m = new RegExp(`sluice_ingest_api_events_total\\{outcome="${outcome}",processor="ingest-api"\\} (\\d+)`).exec(text);
        expect(Number(m?.[1]), outcome).toBeGreaterThan(0);
      }
      expect(text).toMatch(/sluice_ingest_api_requests_total\{method="POST",route="\/events",status="422",processor="ingest-api"\} \d+/);
      expect(text).toMatch(/sluice_ingest_api_requests_total\{method="GET",route="unmatched",status="404",processor="ingest-api"\} \d+/);
      expect(text).toMatch(/sluice_ingest_api_insert_seconds_count\{processor="ingest-api"\} [1-9]/);
    });

    it('closes gracefully: a request in flight completes, then the port is closed', async () => {
      const extra = await startIngestApi({ env: { ...process.env, SLUICE_INGEST_API_KEY: KEY, SLUICE_LOG_LEVEL: 'silent' }, port: 0 });
      const batch = Array.from({ length: 200 }, () => deposit());
      const bytes = new TextEncoder().encode(JSON.stringify(batch));
      // Half the body now, the rest once the shutdown has begun.
      let body!: ReadableStreamDefaultController<Uint8Array>;
      const stream = new ReadableStream<Uint8Array>({ start: (c) => void ((body = c), c.enqueue(bytes.slice(0, bytes.length / 2))) });
      const inFlight = fetch(`${extra.url}/events`, {
        method: 'POST',
        headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      await new Promise((r) => setTimeout(r, 300));
      const closing = extra.close();
      await new Promise((r) => setTimeout(r, 100));
      body.enqueue(bytes.slice(bytes.length / 2));
      body.close();
      const answer = await inFlight;
      const started = Date.now();
      await closing;
      // The client's keep-alive connection did not hold the shutdown up.
      expect(Date.now() - started).toBeLessThan(2000);
      expect(answer.status).toBe(201);
      expect((await rows(idsOf(batch))).length).toBe(200);
      await expect(fetch(`${extra.url}/healthz`)).rejects.toThrow();
    });

    it('documents exactly the statuses the API answers (GET /openapi.json)', async () => {
      const answer = await call(api.url, 'GET', '/openapi.json', '/openapi.json', { key: null });
      expect(answer.status).toBe(200);
      const doc = answer.body as { openapi: string; paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
      expect(doc.openapi).toBe('3.1.0');
      const documented = new Set<string>();
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(item)) {
          for (const status of Object.keys(op.responses ?? {})) documented.add(`${method.toUpperCase()} ${path} ${status}`);
        }
      }
      const documentedPaths = new Set(Object.keys(doc.paths));
      const answeredOnDocumentedPaths = [...seen].filter((s) => documentedPaths.has(s.split(' ')[1]!));
      expect([...documented].filter((d) => !seen.has(d)).sort(), 'documented but never answered in this test').toEqual([]);
      expect(answeredOnDocumentedPaths.filter((s) => !documented.has(s)).sort(), 'answered but not documented').toEqual([]);

      // And every JSON body matches the schema documented for its status.
      const schemas = await openApiSchemaCheck(doc);
      try {
        const mismatches: string[] = [];
        let checked = 0;
        for (const a of answered.filter((x) => documentedPaths.has(x.template))) {
          expect(schemas.has(a.method, a.template, a.status), `${a.method} ${a.template} ${a.status} documents a JSON body`).toBe(true);
          const problem = await schemas.check(a.method, a.template, a.status, a.body);
          if (problem) mismatches.push(`${a.method} ${a.template} ${a.status}: ${problem}: ${JSON.stringify(a.body).slice(0, 200)}`);
          checked++;
        }
        expect(mismatches).toEqual([]);
        expect(checked).toBeGreaterThan(50);
      } finally {
        await schemas.close();
      }
    });
  });
});
