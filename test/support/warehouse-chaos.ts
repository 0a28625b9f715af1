import type { Admin, Kafka, Message } from 'kafkajs';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { DLQ_REASONS } from '../../processors/core/dlq/reasons.js';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { AgentEventProducer } from './agent-events.js';
import { collectUntilQuiet } from './consume.js';
import { domainEvent, freePort, runId, stack, type ExpectedEvent } from './export-harness.js';
import { createRefusingTables, verifyWarehouse, waitWarehouseDrained, warehousePipelines, warehousePool, WarehouseRunner } from './warehouse.js';

export interface WarehouseChaosOptions {
  kafka: Kafka;
  admin: Admin;
  settings: CoreSettings;
  events: number;
  /** Produce rate: the run lasts events / perSecond seconds. */
  perSecond: number;
  /** Records a flush (the shipped 20000, or smaller for more commits in a short run). */
  count?: number;
  logPrefix: string;
  log?: (line: string) => void;
}

export interface WarehouseChaosResult {
  kills: number;
  rebalances: number;
  postgresRestarts: number;
  refused: number;
  seconds: number;
}

export const REFUSED_AGENT = 'agent-refused';

/**
 * Both warehouse pipelines (agent_events by MERGE, agent_daily by summed MERGE) in one
 * `sluice run`, while events trickle in: three SIGKILLs at random moments, a second runner
 * joining the groups and leaving, PostgreSQL restarted mid-run, and poison records (not Avro,
 * an unknown schema id, and rows the database refuses by a CHECK). Then the warehouse must
 * hold every valid event exactly once with its values, and agent_daily its GROUP BY.
 */
export async function runWarehouseChaos(o: WarehouseChaosOptions): Promise<WarehouseChaosResult> {
  const log = o.log ?? (() => undefined);
  const run = runId();
  const topic = `test.warehouse-chaos.${run}`;
  const p = warehousePipelines({ run, topic, ...(o.count ? { count: o.count } : {}) });
  const pool = warehousePool();
  const result: WarehouseChaosResult = { kills: 0, rebalances: 0, postgresRestarts: 0, refused: 0, seconds: 0 };
  try {
    await createRefusingTables(pool, p.schema, REFUSED_AGENT);
    const producer = new AgentEventProducer(o.kafka, o.settings, topic);
    await producer.setUp();
    // Poison first, so every runner generation meets it: not Avro, an unknown schema id, refused rows.
    const unknown = Buffer.alloc(12);
    unknown.writeInt32BE(2_000_000_000, 1);
    const refused: ExpectedEvent[] = Array.from({ length: 5 }, (_, i) => ({ ...domainEvent(run, 10_000_000 + i), agentId: REFUSED_AGENT }));
    result.refused = refused.length;
    const poison: Message[] = [{ key: 'poison', value: Buffer.from('{"not": "avro"}') }, { key: 'poison', value: unknown }, ...refused.map((e) => producer.message(e))];
    await producer.send(poison);

    const started = Date.now();
    const duration = (o.events / o.perSecond) * 1000;
    const at = (fraction: number) => waitUntil(started + fraction * duration * (0.95 + Math.random() * 0.1));
    let generation = 0;
    const newRunner = async (name: string) => new WarehouseRunner(p.files, `${o.logPrefix}-${run}-${name}-${++generation}`, await freePort()).start();
    let a = await newRunner('a');
    let b: WarehouseRunner | undefined;
    const produced = producer.trickle((i) => domainEvent(run, i), 0, o.events, o.perSecond);
    produced.catch(() => undefined);
    try {
      await a.ready();
      const kill = async () => {
        await a.kill('SIGKILL');
        result.kills++;
        log(`SIGKILL runner a at ${seconds(started)} s`);
        a = await newRunner('a');
        await a.ready();
      };
      await at(0.15);
      await kill();
      await at(0.25);
      b = await newRunner('b');
      await b.ready();
      result.rebalances++;
      log(`runner b joined at ${seconds(started)} s`);
      await at(0.35);
      await kill();
      await at(0.45);
      stack('down', 'postgres');
      log(`PostgreSQL stopped at ${seconds(started)} s`);
      try {
        await new Promise((r) => setTimeout(r, 3000));
      } finally {
        stack('up', 'postgres');
      }
      result.postgresRestarts++;
      log(`PostgreSQL started at ${seconds(started)} s`);
      await at(0.7);
      if ((await b.kill('SIGTERM')) !== 0) throw new Error(`runner b did not stop cleanly; see ${b.log}`);
      result.rebalances++;
      log(`runner b left at ${seconds(started)} s`);
      await at(0.85);
      await kill();
      await produced;
      log(`all ${o.events} events produced at ${seconds(started)} s`);
      await waitWarehouseDrained(pool, o.admin, topic, p.names, 180_000 + o.events / 5);
      log(`drained at ${seconds(started)} s`);
      if ((await a.kill('SIGTERM')) !== 0) throw new Error(`runner a did not stop cleanly; see ${a.log}`);
    } finally {
      await a.kill('SIGKILL');
      await b?.kill('SIGKILL');
    }
    const expected = Array.from({ length: o.events }, (_, i) => domainEvent(run, i));
    await verifyWarehouse(pool, p.schema, expected);

    // Dead letters are at least once (a killed runner may send a batch's again): every poison record is there, for each pipeline, with its reason.
    const letters = await collectUntilQuiet(o.kafka, p.dlq, () => false, { quietMs: 3000, timeoutMs: 30_000, returnOnTimeout: true });
    const seen = new Set(
      letters.map((m) => {
        const h = readDeadLetterHeaders(m.headers);
        if (h?.reason === DLQ_REASONS.sqlRejected && !/violates check constraint/.test(h.error ?? '')) throw new Error(`a sql_rejected letter without the database's message: ${h.error}`);
        return `${h?.processor?.split('/')[0]} ${h?.reason} ${h?.reason === DLQ_REASONS.sqlRejected ? m.key?.toString() : ''}`;
      }),
    );
    for (const name of p.names) {
      for (const reason of [DLQ_REASONS.notAvro, DLQ_REASONS.unknownSchema]) if (!seen.has(`${name} ${reason} `)) throw new Error(`no ${reason} dead letter from ${name}: ${[...seen].join('; ')}`);
      if (!seen.has(`${name} ${DLQ_REASONS.sqlRejected} ${REFUSED_AGENT}`)) throw new Error(`no sql_rejected dead letter from ${name}: ${[...seen].join('; ')}`);
    }
    const rejectedLetters = letters.filter((m) => readDeadLetterHeaders(m.headers)?.reason === DLQ_REASONS.sqlRejected);
    if (rejectedLetters.length < refused.length * p.names.length) throw new Error(`${rejectedLetters.length} sql_rejected letters, expected at least ${refused.length * p.names.length}`);
    result.seconds = seconds(started);
    await pool.query(`DROP SCHEMA ${p.schema} CASCADE`);
    return result;
  } finally {
    await pool.end();
  }
}

async function waitUntil(t: number): Promise<void> {
  const wait = t - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}
