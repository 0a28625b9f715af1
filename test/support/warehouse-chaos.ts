import type { Message } from 'kafkajs';
import { DLQ_REASONS } from '../../processors/core/dlq/reasons.js';
import { readDeadLetterHeaders } from '../../processors/core/dlq/dead-letter.js';
import { collectUntilQuiet } from './consume.js';
import { runExportChaos, type ChaosOptions } from './export-chaos.js';
import { domainEvent, type ExpectedEvent } from './export-harness.js';
import { createRefusingTables, verifyWarehouse, waitWarehouseDrained, warehousePipelines, warehousePool, type WarehousePipelines } from './warehouse.js';

export interface WarehouseChaosOptions extends Omit<ChaosOptions, 's3OutageMs' | 'sink'> {
  /** Records a flush (the shipped batch size, or smaller for more commits in a short run). */
  count?: number;
}

export interface WarehouseChaosResult {
  kills: number;
  rebalances: number;
  postgresRestarts: number;
  refused: number;
  seconds: number;
}

export const REFUSED_AGENT = 'agent-refused';
const REFUSED = 5;

/**
 * Both warehouse pipelines (agent_events by MERGE, agent_daily by summed MERGE) in one
 * `sluice run`, through the export's fault run (export-chaos.ts: three SIGKILLs, a second
 * runner joining the groups and leaving; here PostgreSQL is the server restarted mid-run),
 * with poison records sent first (not Avro, an unknown schema id, and rows the database
 * refuses by a CHECK). Then the warehouse must hold every valid event exactly once with its
 * values, agent_daily its GROUP BY, and the DLQ every poison record with its reason.
 */
export async function runWarehouseChaos(o: WarehouseChaosOptions): Promise<WarehouseChaosResult> {
  const pool = warehousePool();
  let p: WarehousePipelines | undefined;
  let topic = '';
  try {
    const result = await runExportChaos({
      ...o,
      s3OutageMs: 0,
      sink: {
        async pipeline({ run, topic: t, producer }) {
          topic = t;
          p = warehousePipelines({ run, topic, ...(o.count ? { count: o.count } : {}) });
          await createRefusingTables(pool, p.schema, REFUSED_AGENT);
          const unknown = Buffer.alloc(12);
          unknown.writeInt32BE(2_000_000_000, 1);
          const refused: ExpectedEvent[] = Array.from({ length: REFUSED }, (_, i) => ({ ...domainEvent(run, 10_000_000 + i), agentId: REFUSED_AGENT }));
          const poison: Message[] = [{ key: 'poison', value: Buffer.from('{"not": "avro"}') }, { key: 'poison', value: unknown }, ...refused.map((e) => producer.message(e))];
          await producer.send(poison);
          return p.files;
        },
        outage: { service: 'postgres', label: 'PostgreSQL', ms: 3000 },
        drain: (timeoutMs) => waitWarehouseDrained(pool, o.admin, topic, p!.names, timeoutMs),
        async verify(expected) {
          await verifyWarehouse(pool, p!.schema, expected);
          await verifyDeadLetters(o, p!);
        },
      },
    });
    await pool.query(`DROP SCHEMA ${p!.schema} CASCADE`);
    return { kills: result.kills, rebalances: result.rebalances, postgresRestarts: result.outages, refused: REFUSED, seconds: result.seconds };
  } finally {
    await pool.end();
  }
}

/** Dead letters are at least once (a killed runner may send a batch's again): every poison record is there, for each pipeline, with its reason. */
async function verifyDeadLetters(o: WarehouseChaosOptions, p: WarehousePipelines): Promise<void> {
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
  if (rejectedLetters.length < REFUSED * p.names.length) throw new Error(`${rejectedLetters.length} sql_rejected letters, expected at least ${REFUSED * p.names.length}`);
}
