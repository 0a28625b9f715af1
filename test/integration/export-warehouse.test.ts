import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createS3Client } from '../../processors/core/s3/client.js';
import { DEFAULT_RULES } from '../../processors/reports/commission.js';
import { generateReport } from '../../processors/reports/generate.js';
import { AgentEventProducer } from '../support/agent-events.js';
import { connectExportStack, domainEvent, freePort, runId, RunnerProcess, stack, testPipeline, waitDrained } from '../support/export-harness.js';
import { hostPortOf, requireServer, testSettings } from '../support/servers.js';
import { runWarehouseChaos } from '../support/warehouse-chaos.js';
import { verifyWarehouse, waitWarehouseDrained, warehousePipelines, warehousePool } from '../support/warehouse.js';

/**
 * The warehouse pipelines (connectors/exports/warehouse.yaml and warehouse-daily.yaml) on
 * the real stack, CI-sized (`npm run test:soak` runs the chaos with 1,000,000 events):
 * exactly once into PostgreSQL through SIGKILLs, a PostgreSQL restart, a rebalance in and
 * out and poison records; and the month's report from the warehouse byte-identical to the
 * lake's.
 */

const settings = testSettings();
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
  await requireServer('PostgreSQL (the warehouse)', hostPortOf(process.env.SLUICE_WAREHOUSE_URL ?? 'postgres://localhost:5432'));
});

afterAll(async () => {
  stack('up', 'postgres');
  await admin?.disconnect();
});

describe('export to the warehouse', () => {
  it('holds every valid event exactly once, and agent_daily its GROUP BY, through three SIGKILLs, a PostgreSQL restart, a rebalance in and out and poison records', async () => {
    const result = await runWarehouseChaos({ kafka, admin, settings, events: 8000, perSecond: 400, count: 2000, logPrefix: 'export-warehouse-chaos', log: (l) => console.log(`[warehouse chaos] ${l}`) });
    expect(result).toMatchObject({ kills: 3, rebalances: 2, postgresRestarts: 1, refused: 5 });
  }, 300_000);

  it("the month's report read from the warehouse (source: warehouse) is byte-identical to the one read from the lake", async () => {
    const run = runId();
    const topic = `test.warehouse-report.${run}`;
    const producer = new AgentEventProducer(kafka, settings, topic);
    await producer.setUp();
    const events = Array.from({ length: 4000 }, (_, i) => domainEvent(run, i));
    await producer.sendEvents(events);

    const prefix = `test-warehouse-report-${run}/`;
    const lakeGroup = `test-warehouse-report-lake-${run}`;
    const lake = new RunnerProcess(testPipeline({ topic, dlq: `${topic}.lake.dlq`, prefix, group: lakeGroup }), `warehouse-report-lake-${run}`, await freePort()).start();
    const p = warehousePipelines({ run, topic });
    const warehouse = new RunnerProcess(p.files, `warehouse-report-${run}`, await freePort()).start();
    const pool = warehousePool();
    try {
      await Promise.all([lake.ready(), warehouse.ready()]);
      await Promise.all([waitDrained(admin, lakeGroup, topic, 120_000), waitWarehouseDrained(pool, admin, topic, p.names, 120_000)]);
      expect(await lake.kill('SIGTERM')).toBe(0);
      expect(await warehouse.kill('SIGTERM')).toBe(0);
      await verifyWarehouse(pool, p.schema, events);

      const s3 = createS3Client(settings.s3);
      const common = { s3, bucket: settings.s3.bucket, lakePrefix: prefix, reportsPrefix: `${prefix}reports/`, currency: 'USD', rules: DEFAULT_RULES };
      const request = (id: string) => ({ request_id: id, report_type: 'agent_commissions' as const, month: '2026-10', format: 'csv' as const, requested_at: new Date().toISOString(), requested_via: 'api' as const });
      const fromLake = await generateReport(request(`lake-${run}`), common);
      const fromWarehouse = await generateReport(request(`warehouse-${run}`), { ...common, warehouse: { pool, table: `${p.schema}.agent_events` } });
      const read = async (key: string) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: settings.s3.bucket, Key: key }))).Body!.transformToByteArray());
      const lakeCsv = await read(fromLake.key);
      const warehouseCsv = await read(fromWarehouse.key);
      expect(fromLake.rows).toBe(37); // every agent of domainEvent has events in October 2026
      expect(warehouseCsv.equals(lakeCsv)).toBe(true);
      expect(warehouseCsv.toString('utf8')).toBe(lakeCsv.toString('utf8'));
      await pool.query(`DROP SCHEMA ${p.schema} CASCADE`);
    } finally {
      await lake.kill('SIGKILL');
      await warehouse.kill('SIGKILL');
      await pool.end();
    }
  }, 240_000);
});
