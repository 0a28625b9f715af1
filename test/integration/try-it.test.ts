import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInteger, parse } from 'lossless-json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/build.js';
import { ParquetReader } from '../support/parquet-reader.js';

/**
 * The try-it loop in a terminal, with NO server: the built CLI (`sluice run`) with every
 * SLUICE_* variable removed and the local stack's settings off, so a pipeline that tried to
 * reach Kafka, a registry or S3 could not even load (lake.yaml's kafka block needs
 * SLUICE_KAFKA_BROKERS: `--set input=stdin` must have replaced it).
 */

const OFFLINE = { ...(Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_') && !k.startsWith('AWS_'))) as NodeJS.ProcessEnv), SLUICE_STACK_ENV: 'off' };
const sluiceRun = (args: string[], input?: string) =>
  spawnSync(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'run', ...args], { encoding: 'utf8', cwd: ROOT, env: OFFLINE, input: input ?? '', timeout: 60_000 });

const SAMPLE = readFileSync(join(ROOT, 'connectors/try-it/agent-events.jsonl'), 'utf8');
const exact = (text: string) => parse(text, null, (n) => (isInteger(n) ? BigInt(n) : Number(n))) as Record<string, unknown>;

describe('sluice run with no server', () => {
  it('stdin -> the lake mapping and dedupe -> stdout: the rows as JSON lines (amounts beyond 2^53 exact), a bad line to stderr with its reason, exit 0 at EOF', () => {
    const input = `${SAMPLE.trimEnd()}\nthis is not json\n\n`;
    const r = sluiceRun(['--set', 'input=stdin', '--set', 'output=stdout', 'connectors/exports/lake.yaml'], input);
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map(exact);
    // 4 sample lines, the 4th a repeat of the 1st (dropped by the dedupe), then the bad line.
    expect(rows.map((row) => row.event_type)).toEqual(['deposit_made', 'customer_onboarded', 'investment_made']);
    expect(rows[0]).toMatchObject({ event_id: '0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c', agent_id: 'agent-7', amount_minor: 1500n, currency: 'USD', source: 'web', occurred_at: 1793527200000000n });
    expect(rows[2]!.amount_minor).toBe(9007199254740993n);
    expect(rows[1]).not.toHaveProperty('amount_minor');
    const letters = r.stderr.split('\n').filter((l) => l.includes('"dead_letter"')).map((l) => JSON.parse(l) as { dead_letter: Record<string, unknown>; value: string });
    expect(letters).toHaveLength(1);
    expect(letters[0]!.dead_letter).toMatchObject({ reason: 'decode_error', topic: 'stdin', partition: 0, offset: '4', processor: 'lake/input' });
    expect(letters[0]!.value).toBe('this is not json');
    // The logs went to stderr: stdout is only rows.
    expect(r.stderr).toContain('"msg":"pipeline stopped"');
  });

  it('a --set value that does not fit the spec stops the start naming --set, exit 78', () => {
    const r = sluiceRun(['--set', 'input=stdin', '--set', 'input.stdin.decode=xml', '--set', 'output=stdout', 'connectors/exports/lake.yaml']);
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('input.stdin.decode');
    expect(r.stderr).toContain('(from --set input.stdin.decode=xml)');
  });

  describe('generate -> file', () => {
    let reader: ParquetReader;
    let dir: string;
    beforeAll(async () => {
      reader = await ParquetReader.open();
      dir = mkdtempSync(join(tmpdir(), 'sluice-try-it-'));
    });
    afterAll(() => reader.close());

    it('writes Parquet files partitioned as the lake that DuckDB reads: every generated record once, exact values, no temporary file left', async () => {
      const r = sluiceRun(['--set', `output.file.directory=${dir}`, '--set', 'input.generate.count=2000', 'connectors/try-it/generate-to-file.yaml']);
      expect(r.status, r.stderr).toBe(0);
      const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
      expect(files.some((f) => f.name.includes('.tmp-'))).toBe(false);
      expect(files.every((f) => /^generate\+0\+\d+\.parquet$/.test(f.name))).toBe(true);
      const glob = `read_parquet('${dir}/**/*.parquet', hive_partitioning = true)`;
      const [totals] = await reader.query(`SELECT count(*) AS n, count(DISTINCT event_id) AS ids, sum(amount_minor)::VARCHAR AS total, min(occurred_at)::VARCHAR AS first FROM ${glob}`);
      // amount_minor = 100 + i except every 4th (i % 4 = 3: null), i = 0..1999.
      let total = 0n;
      for (let i = 0; i < 2000; i++) if (i % 4 !== 3) total += BigInt(100 + i);
      expect(totals).toEqual({ n: '2000', ids: '2000', total: total.toString(), first: '2026-11-01 10:00:00+00' });
      const types = await reader.query(`SELECT event_type, count(*) AS n FROM ${glob} GROUP BY 1 ORDER BY 1`);
      expect(types).toEqual(['customer_onboarded', 'deposit_made', 'investment_made', 'withdrawal_made'].map((t) => ({ event_type: t, n: '500' })));
      // The day partition is the UTC day of occurred_at (10 minutes apart: 2000 records span 14 days).
      const [days] = await reader.query(`SELECT count(*) AS wrong FROM ${glob} WHERE dt::VARCHAR <> strftime(occurred_at, '%Y-%m-%d')`);
      expect(days).toEqual({ wrong: '0' });
    });
  });
});
