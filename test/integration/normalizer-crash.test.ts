import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../processors/core/db/pool.js';
import { createKafka } from '../../processors/core/kafka/client.js';
import { buildDist, ROOT } from '../support/build.js';
import { collectUntilQuiet, startGroupAtEnd } from '../support/consume.js';
import { registryReader } from '../support/registry-reader.js';
import { ensureCdcConnector, ensureCdcTopics } from '../support/cdc.js';
import { eventually, testSettings } from '../support/servers.js';

const settings = testSettings();
const ROWS = 3000;
const CHUNK = 100;
const KILLS = 3;

const run = randomUUID().slice(0, 8);
const eventsTopic = `test.normalizer-crash.${run}.events`;
const dlqTopic = `test.normalizer-crash.${run}.dlq`;
const groupId = `test-normalizer-crash-${run}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('normalizer crash: SIGKILLed three times mid-stream, every event exactly once', () => {
  const kafka = createKafka(settings.kafka, { region: settings.s3.region });
  let main: string;
  let port: number;
  let child: ChildProcess | undefined;
  let output = '';

  const env = () => ({
    ...process.env,
    SLUICE_LOG_LEVEL: 'warn',
    SLUICE_NORMALIZER_GROUP_ID: groupId,
    // The same instance id across restarts: each new process fences the killed one's transaction.
    SLUICE_NORMALIZER_INSTANCE_ID: `crash-${run}`,
    SLUICE_NORMALIZER_EVENTS_TOPIC: eventsTopic,
    SLUICE_NORMALIZER_DLQ_TOPIC: dlqTopic,
    SLUICE_NORMALIZER_SUBJECT: `test.normalizer-crash.${run}.events-value`,
    SLUICE_NORMALIZER_HTTP_PORT: String(port),
    // Small transactions, so a kill lands inside one; a short session, so a restart rejoins fast.
    SLUICE_NORMALIZER_MAX_BATCH_RECORDS: '50',
    SLUICE_NORMALIZER_SESSION_TIMEOUT_MS: '6000',
  });

  function startChild(): ChildProcess {
    const c = spawn(process.execPath, [main], { cwd: ROOT, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => void (output += d.toString()));
    c.stderr!.on('data', (d: Buffer) => void (output += d.toString()));
    return c;
  }

  const exited = (c: ChildProcess) =>
    new Promise<number | null>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(c.exitCode) : c.once('exit', (code) => resolve(code))));

  /** Records this process has consumed and committed (its counters start at 0). */
  async function committedRecords(): Promise<number> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return [...text.matchAll(/^sluice_normalizer_records_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    } catch {
      return 0;
    }
  }

  beforeAll(async () => {
    main = buildDist('processors/normalizer/main.js');
    port = await freePort();
    await ensureCdcConnector(settings);
    await ensureCdcTopics(kafka, settings); // a fresh cluster has it only after Debezium's first change
    // The CDC topic is shared and keeps growing: this group starts at its end, so the kills land in this test's rows.
    await startGroupAtEnd(kafka, groupId, 'sluice.staging.agent_events');
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [eventsTopic, dlqTopic] }).catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  });

  it(
    'loses and duplicates nothing on the events topic for read_committed consumers',
    async () => {
      const ids = Array.from({ length: ROWS }, () => randomUUID());
      const amounts = ids.map((_, i) => (i % 10 === 0 ? 2n ** 53n + BigInt(i) : BigInt(1 + i)));
      child = startChild();

      const pool = createPool(settings.database.url);
      const inserting = (async () => {
        try {
          for (let start = 0; start < ROWS; start += CHUNK) {
            const slice = ids.slice(start, start + CHUNK);
            await pool.query(
              `INSERT INTO staging.agent_events (event_id, event_type, agent_id, customer_id, amount_minor, currency, occurred_at, source)
               SELECT id, 'deposit_made', 'agent-' || $3 || '-' || (n % 50), 'customer-' || n, amount, 'USD', now(), 'backend'
               FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS t(id, amount, n)`,
              [slice, amounts.slice(start, start + CHUNK).map(String), run],
            );
            await sleep(400);
          }
        } finally {
          await pool.end();
        }
      })();

      const kills: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        // Wait until this process is committing, then kill it at a random moment while it
        // works through the backlog that piled up while it started (and, after a kill,
        // while the group waited for the dead member's session to expire).
        await eventually(async () => ((await committedRecords()) > 0 ? true : undefined), 90_000, `normalizer process ${k + 1} committing`);
        await sleep(Math.random() * 250);
        kills.push(await committedRecords());
        child.kill('SIGKILL');
        await exited(child);
        child = startChild();
      }
      await inserting;

      const reader = registryReader(settings.registry.url);
      const amountOf = new Map<string, bigint>(ids.map((id, i) => [id, amounts[i]!]));
      const isOurs = (m: { key: Buffer | null }) => m.key?.toString().startsWith(`agent-${run}-`) ?? false;
      const seen = await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(isOurs).length >= ROWS, { timeoutMs: 150_000, quietMs: 3000 });
      const counts = new Map<string, number>();
      for (const m of seen.filter(isOurs)) {
        const v = (await reader.decode(m.value!)) as { id: string; data: Record<string, { amount_minor: bigint }> };
        counts.set(v.id, (counts.get(v.id) ?? 0) + 1);
        expect(amountOf.has(v.id)).toBe(true);
        expect(v.data['io.sluice.events.DepositMade']!.amount_minor).toBe(amountOf.get(v.id));
      }
      const missing = ids.filter((id) => !counts.has(id));
      const doubled = [...counts].filter(([, n]) => n > 1);
      expect({ missing: missing.length, doubled: doubled.length, distinct: counts.size }, `kills after ${kills.join(', ')} committed records`).toEqual({ missing: 0, doubled: 0, distinct: ROWS });

      // How many of our records a read_uncommitted reader sees beyond the committed ones:
      // the output of transactions the kills left open (aborted by the next process).
      const uncommitted = await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.length >= seen.length, { readUncommitted: true, quietMs: 1000 });
      console.log(
        `normalizer crash test: ${KILLS} SIGKILLs (after ${kills.join(', ')} committed records of each process); ` +
          `${uncommitted.length - seen.length} records of aborted transactions that read_committed does not see; ${ROWS} events exactly once`,
      );

      // The last process shuts down gracefully on SIGTERM.
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    },
    300_000,
  );

  afterAll(() => {
    if (process.env.SLUICE_TEST_VERBOSE) console.log(output);
  });
});
