import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { buildDist, ROOT } from '../support/build.js';
import { collect, endOffsetsOf } from '../support/kafka.js';
import { ensureCdcConnector, waitForConnectorRunning } from '../support/cdc.js';
import { cli } from '../support/ops-lake.js';
import { eventually, testSettings } from '../support/servers.js';

const settings = testSettings();
const CDC_TOPIC = 'sluice.staging.agent_events';

describe('PostgreSQL staging table -> Debezium -> Kafka', () => {
  let applied: Awaited<ReturnType<typeof ensureCdcConnector>>;

  beforeAll(async () => {
    applied = await ensureCdcConnector(settings);
  });

  it('applies the connector idempotently', async () => {
    await expect(applied.connect.apply(applied.spec)).resolves.toEqual({ created: false });
  });

  it('the shipped connector holds the password as a reference, which the worker resolves (it streams: the database checks the password)', async () => {
    const base = settings.connect.url.replace(/\/+$/, '');
    const config = (await (await fetch(`${base}/connectors/${applied.spec.name}/config`)).json()) as Record<string, string>;
    expect(config['database.password']).toBe('${env:SLUICE_CONNECT_DATABASE_PASSWORD}');
  });

  it('turns an INSERT into a Debezium change event on Kafka within seconds', async () => {
    const pool = createPool(settings.database.url);
    const kafka = createKafka(settings.kafka, { region: settings.s3.region });
    const eventId = randomUUID();
    const amount = 2n ** 53n + 3n;
    // The topic may hold millions of older changes: read only what comes after the insert.
    const from = await endOffsetsOf(kafka, CDC_TOPIC);
    try {
      await pool.query(
        `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source, metadata)
         VALUES ($1, 'deposit_made', 'agent-cdc', 'customer-cdc', $2, 'USD', '2026-11-01T10:00:00Z', 'web', '{"k":"v"}')`,
        [eventId, amount.toString()],
      );
    } finally {
      await pool.end();
    }
    const inserted = Date.now();
    const messages = await collect(kafka, CDC_TOPIC, (ms) => ms.some((m) => m.key?.toString().includes(eventId)), 15_000, from);
    const latencyMs = Date.now() - inserted;
    const message = messages.find((m) => m.key?.toString().includes(eventId))!;
    expect(JSON.parse(message.key!.toString())).toEqual({ event_id: eventId });
    const text = message.value!.toString();
    const change = JSON.parse(text) as { op: string; before: unknown; after: Record<string, unknown>; source: { table: string } };
    expect(change.op).toBe('c');
    expect(change.before).toBeNull();
    expect(change.source.table).toBe('agent_events');
    expect(change.after).toMatchObject({ event_id: eventId, event_type: 'deposit_made', agent_id: 'agent-cdc', currency: 'USD' });
    // JSON numbers lose precision past 2^53: the raw text must still carry the exact digits.
    expect(text).toContain(`"amount_minor":${amount}`);
    expect(latencyMs).toBeLessThan(15_000);
  });

  it('`sluice connectors apply` writes a config-provider reference: the password appears nowhere in the REST API, and the connector runs and streams', async () => {
    // A role of its own with a random password (the stack's own password, "sluice", is also the user, database and topic prefix).
    const run = randomUUID().replace(/-/g, '').slice(0, 8);
    const role = `sluice_cdc_${run}`;
    const password = `pw-${randomBytes(18).toString('hex')}`;
    const name = `sluice-secret-${run}`;
    const topic = `sluice-secret-${run}.staging.agent_events`;
    // The worker's file provider reads only under <state>/secrets (infra/local/components/connect.sh): a file of mode 600 there.
    const secretsDir = join(process.env.SLUICE_STATE_DIR ?? join(ROOT, '.sluice'), 'secrets');
    mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
    const secretsFile = join(secretsDir, `cdc-${run}.properties`);
    writeFileSync(secretsFile, `database.password=${password}\n`, { mode: 0o600 });
    chmodSync(secretsFile, 0o600);
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const shipped = JSON.parse(readFileSync(join(ROOT, 'connectors/debezium/staging-agent-events.json'), 'utf8')) as { config: Record<string, string> };
    const connectorFile = join(tmpdir(), `${name}.json`);
    writeFileSync(
      connectorFile,
      JSON.stringify({
        name,
        config: {
          ...shipped.config,
          'database.password': `\${file:${secretsFile}:database.password}`,
          'topic.prefix': `sluice-secret-${run}`,
          'slot.name': `sluice_secret_${run}`,
          'publication.name': `sluice_secret_${run}`,
          'publication.autocreate.mode': 'disabled',
          'snapshot.mode': 'no_data',
        },
      }),
    );
    const admin = createPool(settings.database.url, { max: 1 });
    const dbUrl = new URL(settings.database.url);
    dbUrl.username = role;
    dbUrl.password = password;
    const base = settings.connect.url.replace(/\/+$/, '');
    const connect = applied.connect;
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD '${password}'`);
      await admin.query(`GRANT USAGE ON SCHEMA staging TO ${role}; GRANT SELECT ON staging.agent_events TO ${role}`);
      await admin.query(`CREATE PUBLICATION sluice_secret_${run} FOR TABLE staging.agent_events`);

      buildDist('processors/cli/main.js');
      const applyRun = await cli(['connectors', 'apply', connectorFile], { SLUICE_DATABASE_URL: dbUrl.toString(), SLUICE_CONNECT_URL: settings.connect.url });
      expect(applyRun.code, applyRun.stderr).toBe(0);
      expect(applyRun.stdout).toContain(`${name}: created`);
      expect(applyRun.stdout + applyRun.stderr).not.toContain(password);

      await waitForConnectorRunning(connect, name);
      // Read back every way the REST API shows a connector: its config, the connector, its tasks.
      for (const path of [`/connectors/${name}/config`, `/connectors/${name}`, `/connectors/${name}/tasks`, `/connectors?expand=info`]) {
        const text = await (await fetch(`${base}${path}`)).text();
        expect(text, path).toContain(name);
        expect(text, `${path} shows the password`).not.toContain(password);
      }
      const config = (await (await fetch(`${base}/connectors/${name}/config`)).json()) as Record<string, string>;
      expect(config['database.password']).toBe(`\${file:${secretsFile}:database.password}`);
      expect(config['database.user']).toBe(role);

      // It streams: the worker resolved the reference and PostgreSQL accepted the password.
      const pool = createPool(settings.database.url, { max: 1 });
      const kafka = createKafka(settings.kafka, { region: settings.s3.region });
      const inserted: string[] = [];
      try {
        // A new row each attempt (a row written before the slot existed would never stream).
        await eventually(
          async () => {
            const eventId = randomUUID();
            inserted.push(eventId);
            await pool.query(
              `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source)
               VALUES ($1, 'deposit_made', 'agent-secret', 'customer-secret', 100, 'USD', '2026-11-01T10:00:00Z', 'web')`,
              [eventId],
            );
            const streamed = await collect(kafka, topic, (ms) => ms.some((m) => inserted.some((id) => m.key?.toString().includes(id))), 10_000);
            return streamed.some((m) => inserted.some((id) => m.key?.toString().includes(id))) ? true : undefined;
          },
          60_000,
          `a row on ${topic}`,
        );
      } finally {
        await pool.end();
      }
    } finally {
      await connect.delete(name).catch(() => undefined);
      // The slot stays active until the task stops: retry its drop for a while.
      await eventually(
        async () => {
          await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [`sluice_secret_${run}`]);
          return true;
        },
        30_000,
        'the test slot dropped',
      ).catch(() => undefined);
      await admin.query(`DROP PUBLICATION IF EXISTS sluice_secret_${run}`);
      await admin.query(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await admin.end();
      rmSync(secretsFile, { force: true });
      rmSync(connectorFile, { force: true });
    }
  }, 180_000);
});
