import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectClient, pgVarsFromUrl, type ConnectorSpec } from '../../processors/core/connect/client.js';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { buildDist, ROOT } from '../support/build.js';
import { eventually, hostPortOf, requireServer, testSettings } from '../support/servers.js';

/**
 * `sluice connectors status` on the real stack: a Debezium connector whose topics cannot be
 * created says RUNNING without an error while its producer waits for them and its slot keeps
 * WAL; the command must call it STALLED. The connector has no topic.creation.* settings, so
 * on a broker that refuses auto-creation (MSK, the local stack) nothing creates its topics;
 * and a topic whose name collides with an existing one ('.' and '_' are the same to Kafka)
 * is refused even where auto-creation is on, so the test holds on any broker. A twin
 * connector that lets Connect create its topic is reported RUNNING.
 */

const settings = testSettings();
const pg = pgVarsFromUrl(settings.database.url);
const id = randomBytes(4).toString('hex');
const SCHEMA = 'sluice_status_test';
const dir = mkdtempSync(join(tmpdir(), 'sluice-connectors-status-'));

interface Probe {
  spec: ConnectorSpec;
  file: string;
  table: string;
  topic: string;
}

function probe(kind: 'stalled' | 'healthy'): Probe {
  const name = `sluice-status-${kind}-${id}`;
  const table = `${kind}_${id}`;
  const spec: ConnectorSpec = {
    name,
    config: {
      'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
      'tasks.max': '1',
      'plugin.name': 'pgoutput',
      'database.hostname': pg.PGHOST!,
      'database.port': pg.PGPORT!,
      'database.user': pg.PGUSER!,
      // By reference, as the shipped connector: the Connect worker holds the secret.
      'database.password': '${env:SLUICE_CONNECT_DATABASE_PASSWORD}',
      'database.dbname': pg.PGDATABASE!,
      'topic.prefix': name,
      'table.include.list': `${SCHEMA}.${table}`,
      'publication.name': `sluice_status_${kind}_${id}`,
      'publication.autocreate.mode': 'filtered',
      'slot.name': `sluice_status_${kind}_${id}`,
      'snapshot.mode': 'no_data',
      'heartbeat.interval.ms': '5000',
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable': 'false',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter.schemas.enable': 'false',
      ...(kind === 'healthy' ? { 'topic.creation.default.partitions': '1', 'topic.creation.default.replication.factor': '-1' } : {}),
    },
  };
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(spec, null, 2));
  return { spec, file, table, topic: `${name}.${SCHEMA}.${table}` };
}

const stalled = probe('stalled');
const healthy = probe('healthy');
const probes = [stalled, healthy];
/** Topics whose names collide with the stalled connector's change and heartbeat topics. */
const collisions = [stalled.topic, `__debezium-heartbeat.${stalled.spec.name}`].map((t) => t.replaceAll('.', '_'));
const db = createPool(settings.database.url, { max: 2 });
const connect = new ConnectClient(settings.connect.url);

/** Runs the CLI while rows keep arriving in `table`, so the WAL grows during its window. */
async function statusWhileInserting(p: Probe): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'connectors', 'status', p.file], { env: { ...process.env, ...pg }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    await db.query(`INSERT INTO ${SCHEMA}.${p.table} (note) VALUES ($1)`, [`row at ${new Date().toISOString()}`]);
    await new Promise((r) => setTimeout(r, 300));
  }
  return { code: await exited, out };
}

async function running(p: Probe): Promise<void> {
  await eventually(
    async () => {
      const s = await connect.status(p.spec.name);
      const slot = await db.query(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [p.spec.config['slot.name']]);
      return s?.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING') && slot.rows[0]?.active ? true : undefined;
    },
    90_000,
    `connector ${p.spec.name} RUNNING with an active slot`,
  );
}

describe('sluice connectors status', () => {
  beforeAll(async () => {
    buildDist('processors/cli/main.js');
    await requireServer('PostgreSQL', hostPortOf(settings.database.url));
    await requireServer('Kafka broker', settings.kafka.brokers[0]!);
    await requireServer('Kafka Connect', hostPortOf(settings.connect.url), () => connect.plugins());
    await db.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    const kafkaAdmin = createKafka(settings.kafka, { region: settings.s3.region }).admin();
    await kafkaAdmin.connect();
    try {
      await kafkaAdmin.createTopics({ waitForLeaders: true, topics: collisions.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })) });
    } finally {
      await kafkaAdmin.disconnect();
    }
    for (const p of probes) {
      await db.query(`CREATE TABLE ${SCHEMA}.${p.table} (id bigserial PRIMARY KEY, note text NOT NULL)`);
      await connect.apply(p.spec);
    }
    await Promise.all(probes.map(running));
  });

  afterAll(async () => {
    for (const p of probes) {
      await connect.delete(p.spec.name).catch(() => undefined);
      const slot = p.spec.config['slot.name'];
      await eventually(
        async () => ((await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot])).rowCount === 0 ? true : undefined),
        30_000,
        `slot ${slot} released`,
      ).catch(() => undefined);
      await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot]);
      await db.query(`DROP PUBLICATION IF EXISTS ${p.spec.config['publication.name']}`);
      await db.query(`DROP TABLE IF EXISTS ${SCHEMA}.${p.table}`);
    }
    await db.end();
    // The change and heartbeat topics of the three connectors.
    const kafkaAdmin = createKafka(settings.kafka, { region: settings.s3.region }).admin();
    await kafkaAdmin.connect();
    const mine = (await kafkaAdmin.listTopics()).filter((t) => /sluice[-_]status[-_]/.test(t) && t.includes(id));
    if (mine.length > 0) await kafkaAdmin.deleteTopics({ topics: mine });
    await kafkaAdmin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls a RUNNING connector whose topic cannot be created STALLED, exit 1, naming the topic and the growing WAL', async () => {
    const before = await connect.status(stalled.spec.name);
    expect(before?.connector.state).toBe('RUNNING');
    const { code, out } = await statusWhileInserting(stalled);
    expect(out).toContain(`${stalled.spec.name}: STALLED (connector RUNNING; task 0 RUNNING)`);
    expect(out).toContain(`topic ${stalled.topic} does not exist`);
    expect(out).toMatch(/nothing reached its topics in \d+ s while slot sluice_status_stalled_\w+ retains [\d.]+ \w*B of WAL/);
    expect(out).toContain('sluice topics apply');
    expect(code).toBe(1);
    // Kafka Connect alone still says all is well: the reason this check exists.
    const after = await connect.status(stalled.spec.name);
    expect(after?.connector.state).toBe('RUNNING');
    expect(after?.tasks.every((t) => t.state === 'RUNNING')).toBe(true);
  }, 90_000);

  it('calls a connector whose records reach its topic RUNNING, exit 0', async () => {
    const { code, out } = await statusWhileInserting(healthy);
    expect(out).toContain(`${healthy.spec.name}: RUNNING (connector RUNNING; task 0 RUNNING)`);
    expect(out).toMatch(new RegExp(`in \\d+ s: [^\\n]*${healthy.topic.replaceAll('.', '\\.')}[^\\n]* advanced`));
    expect(code).toBe(0);
  }, 90_000);
});
