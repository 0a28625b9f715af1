import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFiles, type RunningFiles } from '../../processors/files/files.js';
import { generateReport } from '../../processors/reports/generate.js';
import { loadRules } from '../../processors/reports/rules.js';
import { ensureCdcConnector } from '../support/cdc.js';
import { collectUntilQuiet } from '../support/consume.js';
import { fileEventId, filesEnv, generateCsv, getText, openFileDropRig, put, waitDone, type FileDropRig } from '../support/file-drops.js';
import { startTestNormalizer } from '../support/normalizer.js';
import { registryReader } from '../support/registry-reader.js';
import { exportUntilCommitted, LakeSql, parseCsv, REPORT_HEADER } from '../support/reports-lake.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 16's promise that file rows are events like any other, end to end: a dropped file's
 * valid rows go through Debezium, the normalizer (its own events topic) and the real export
 * (the shipped lake.yaml, a prefix of the test's own), and are read back with DuckDB: every
 * valid event_id exactly once in the events topic and in the lake, no rejected row, nothing
 * twice from the same bytes dropped again under another key; and the month's report (the
 * report processor's own generateReport over that lake) counts them.
 */
const settings = testSettings();
const run = randomUUID().slice(0, 8);
const root = `files-lake-${run}/`;
const dlqTopic = `files-lake-${run}.dlq`;
const eventsTopic = `test.files-lake.${run}.events`;
const normalizerDlq = `test.files-lake.${run}.cdc-dlq`;
const lakePrefix = `${root}lake/agent_events/`;
const ROWS = 300;
let rig: FileDropRig;
let files: RunningFiles | undefined;

beforeAll(async () => {
  rig = await openFileDropRig(settings);
  await ensureCdcConnector(settings);
}, 120_000);

afterAll(async () => {
  await files?.stop();
  await rig?.close([dlqTopic, eventsTopic, normalizerDlq, `${eventsTopic}.export-dlq`]);
});

describe('sluice files -> lake', () => {
  it('puts every valid row of a dropped file in the events topic and the lake exactly once, and the month report counts them', async () => {
    const { s3, pool, kafka } = rig;
    const bucket = settings.s3.bucket;
    // Every 10th row invalid (each docs/domain.md reason in turn), every 7th with quotes and a line break in its metadata.
    const file = generateCsv({ run, rows: ROWS, invalidEvery: 10, trickyEvery: 7 });
    // One valid row repeated at the end of the file: the same event twice is stored once.
    const repeated = generateCsv({ run, rows: 1, from: 1 }).text.split('\n')[1]!;
    const text = `${file.text}${repeated}\n`;
    const agentOf = (i: number) => `agent-${run}-${i % 37}`;
    const validIds = new Set(file.valid);
    const agents = [...new Set(Array.from({ length: ROWS }, (_, i) => agentOf(i)))];

    const normalizer = await startTestNormalizer(kafka, settings, { name: `files-lake-${run}`, eventsTopic, dlqTopic: normalizerDlq });
    try {
      files = await startFiles({ env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...filesEnv(root, { sources: 'partner:csv', dlqTopic, httpPort: 0, batchRows: 64 }) } });
      const first = `${root}incoming/partner/drop-1.csv.gz`;
      const again = `${root}incoming/partner/drop-1-resent.csv.gz`;
      await put(s3, bucket, first, gzipSync(text));
      const done = await waitDone(pool, bucket, first, 120_000);
      expect(done.status, done.first_error ?? '').toBe('succeeded');
      expect(Number(done.rows_accepted)).toBe(file.valid.length);
      expect(Number(done.rows_duplicate)).toBe(1);
      expect(Number(done.rows_rejected)).toBe(file.invalid.length);
      // The same bytes under another key: a duplicate file, no row read.
      await put(s3, bucket, again, gzipSync(text));
      expect((await waitDone(pool, bucket, again, 120_000)).status).toBe('duplicate');

      // The events topic: each valid event_id exactly once, nothing else of ours.
      const reader = registryReader(settings.registry.url);
      const ours = (m: { key: Buffer | null }) => m.key?.toString().startsWith(`agent-${run}-`) ?? false;
      const seen = (await collectUntilQuiet(kafka, eventsTopic, (ms) => ms.filter(ours).length >= file.valid.length, { timeoutMs: 120_000, quietMs: 3000 })).filter(ours);
      const inTopic = new Map<string, number>();
      for (const m of seen) {
        const { id } = (await reader.decode(m.value!)) as { id: string };
        inTopic.set(id, (inTopic.get(id) ?? 0) + 1);
      }
      expect([...inTopic.keys()].filter((id) => !validIds.has(id)), 'events that are not valid rows of the file').toEqual([]);
      expect([...inTopic].filter(([, n]) => n > 1), 'events twice in the topic').toEqual([]);
      expect(inTopic.size).toBe(file.valid.length);
    } finally {
      await files?.stop();
      files = undefined;
      await normalizer.stop();
    }

    // The lake, read back with DuckDB: each valid event_id exactly once, no rejected row.
    await exportUntilCommitted(kafka, { topic: eventsTopic, dlqTopic: `${eventsTopic}.export-dlq`, prefix: lakePrefix, group: `files-lake-${run}-export` }, 120_000);
    const lake = await LakeSql.download(settings, lakePrefix);
    try {
      // Ours by agent, as in the topic: the stack's other rows (a connector's first snapshot) pass through too.
      const rows = (await lake.query(`SELECT event_id::VARCHAR AS event_id, count(*)::INTEGER AS n FROM ${lake.table} WHERE agent_id LIKE 'agent-${run}-%' GROUP BY 1`)) as { event_id: string; n: number }[];
      const inLake = new Map(rows.map((r) => [r.event_id, Number(r.n)]));
      expect([...inLake.keys()].filter((id) => !validIds.has(id)), 'lake rows that are not valid rows of the file').toEqual([]);
      expect([...inLake].filter(([, n]) => n !== 1), 'lake rows twice').toEqual([]);
      expect(inLake.size).toBe(file.valid.length);
      expect(inLake.has(fileEventId(run, 9)), 'row 9 is invalid (every 10th)').toBe(false);

      // The month's report, as the report processor writes it, counts every valid row once.
      const result = await generateReport(
        { request_id: `files-lake-${run}`, report_type: 'agent_commissions', month: '2026-10', agent_ids: agents, format: 'csv', requested_at: new Date().toISOString() },
        { s3, bucket, lakePrefix, reportsPrefix: `${root}reports/`, currency: 'USD', rules: loadRules() },
      );
      const [header, ...report] = parseCsv(await getText(s3, bucket, result.key));
      expect(header).toEqual(REPORT_HEADER);
      expect(report.reduce((n, r) => n + Number(r[2]), 0)).toBe(file.valid.length);
      const perAgent = new Map<string, number>();
      for (let i = 0; i < ROWS; i++) if (validIds.has(fileEventId(run, i))) perAgent.set(agentOf(i), (perAgent.get(agentOf(i)) ?? 0) + 1);
      expect(Object.fromEntries(report.map((r) => [r[0], Number(r[2])]))).toEqual(Object.fromEntries(perAgent));
      // And cell for cell what an independent DuckDB computation over the same lake says.
      expect(report).toEqual(await lake.report('2026-10', 'USD', agents));
    } finally {
      lake.close();
    }
  }, 400_000);
});
