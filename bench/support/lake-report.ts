import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../../processors/core/s3/client.js';
import { DEFAULT_RULES } from '../../processors/reports/commission.js';
import { generateReport } from '../../processors/reports/generate.js';

/**
 * One commission report of `month` over the lake under `prefix`, as `sluice reports` makes it
 * (a reader thread per core), timed: wall ms and the process's CPU ms (every thread). The
 * benches' generated months have 2,000 agents: any other count is an error.
 */
export async function timedMonthReport(o: { s3: S3Client; s3Settings: S3Settings; bucket: string; prefix: string; month: string }): Promise<{ ms: number; cpuMs: number; lakeFiles: number }> {
  const cpu = process.cpuUsage();
  const from = performance.now();
  const result = await generateReport(
    { request_id: `bench-${randomUUID()}`, report_type: 'agent_commissions', month: o.month, format: 'csv', requested_at: new Date().toISOString() },
    { s3: o.s3, bucket: o.bucket, lakePrefix: o.prefix, reportsPrefix: 'bench/reports-out/', currency: 'USD', rules: DEFAULT_RULES, readers: { count: availableParallelism(), s3: o.s3Settings } },
  );
  const ms = performance.now() - from;
  const used = process.cpuUsage(cpu);
  if (result.rows !== 2000) throw new Error(`report has ${result.rows} agents, expected 2000`);
  return { ms, cpuMs: (used.user + used.system) / 1000, lakeFiles: result.lake_files };
}
