import { describe, expect, it } from 'vitest';
import { LakeValueError } from '../../processors/core/parquet/columns.js';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { formatProblem } from '../../processors/core/pipeline/problems.js';
import type { SqlOutputConfig } from '../../processors/export/outputs/sql.js';
import { copyLineEncoder, escapeText, microsToTimestamp } from '../../processors/export/sql/copy-text.js';
import { statements } from '../../processors/export/sql/statements.js';
import { SERVERS_ENV } from '../support/servers.js';

const COLUMNS: SqlOutputConfig['columns'] = [
  { name: 'agent_id', type: 'string', nullable: false },
  { name: 'day', type: 'date', nullable: false },
  { name: 'events', type: 'int64', nullable: false },
  { name: 'currency', type: 'string', nullable: true },
];

describe('sql output: statements', () => {
  it('merge: one row per key (the last record wins), every other column updated', () => {
    const s = statements({ table: 'analytics.t', columns: COLUMNS, key: ['agent_id', 'day'], mode: 'merge', accumulate: [] });
    expect(s.load).toBe(
      'MERGE INTO "analytics"."t" AS t USING (SELECT DISTINCT ON ("agent_id", "day") "agent_id", "day", "events", "currency" FROM sluice_load ORDER BY "agent_id", "day", _sluice_seq DESC) AS s ON t."agent_id" = s."agent_id" AND t."day" = s."day"' +
        ' WHEN MATCHED THEN UPDATE SET "events" = s."events", "currency" = s."currency" WHEN NOT MATCHED THEN INSERT ("agent_id", "day", "events", "currency") VALUES (s."agent_id", s."day", s."events", s."currency")',
    );
    expect(s.createTable).toBe('CREATE TABLE IF NOT EXISTS "analytics"."t" ("agent_id" text NOT NULL, "day" date NOT NULL, "events" bigint NOT NULL, "currency" text, PRIMARY KEY ("agent_id", "day"))');
    expect(s.createSchema).toBe('CREATE SCHEMA IF NOT EXISTS "analytics"');
    // A batch with no key twice merges the load table as it is: no DISTINCT ON, no sort.
    expect(s.loadUnique).toBe(
      'MERGE INTO "analytics"."t" AS t USING sluice_load AS s ON t."agent_id" = s."agent_id" AND t."day" = s."day"' +
        ' WHEN MATCHED THEN UPDATE SET "events" = s."events", "currency" = s."currency" WHEN NOT MATCHED THEN INSERT ("agent_id", "day", "events", "currency") VALUES (s."agent_id", s."day", s."events", s."currency")',
    );
  });

  it('accumulate: the batch summed per key, added to the stored row', () => {
    const s = statements({ table: 't', columns: COLUMNS, key: ['agent_id', 'day'], mode: 'merge', accumulate: ['events'] });
    expect(s.load).toContain('SELECT "agent_id", "day", sum("events") AS "events", (array_agg("currency" ORDER BY _sluice_seq DESC))[1] AS "currency" FROM sluice_load GROUP BY "agent_id", "day"');
    expect(s.load).toContain('UPDATE SET "events" = COALESCE(t."events", 0) + COALESCE(s."events", 0), "currency" = s."currency"');
    expect(s.createSchema).toBeUndefined();
    expect(s.loadUnique).toBe(s.load); // sums need the GROUP BY whatever the keys
  });

  it('insert_ignore and append', () => {
    expect(statements({ table: 't', columns: COLUMNS, key: ['agent_id'], mode: 'insert_ignore', accumulate: [] }).load).toMatch(/^INSERT INTO "t" .* SELECT DISTINCT ON \("agent_id"\) .* ORDER BY "agent_id", _sluice_seq ON CONFLICT \("agent_id"\) DO NOTHING$/);
    expect(statements({ table: 't', columns: COLUMNS, key: ['agent_id'], mode: 'insert_ignore', accumulate: [] }).loadUnique).toBe(
      'INSERT INTO "t" ("agent_id", "day", "events", "currency") SELECT "agent_id", "day", "events", "currency" FROM sluice_load ON CONFLICT ("agent_id") DO NOTHING',
    );
    expect(statements({ table: 't', columns: COLUMNS, key: [], mode: 'append', accumulate: [] }).load).toBe('INSERT INTO "t" ("agent_id", "day", "events", "currency") SELECT "agent_id", "day", "events", "currency" FROM sluice_load ORDER BY _sluice_seq');
  });
});

describe('sql output: COPY text', () => {
  it('escapes text, writes int64 beyond 2^53 and microsecond timestamps exactly, nulls as \\N', () => {
    const encode = copyLineEncoder([
      { name: 's', type: 'string', nullable: true },
      { name: 'n', type: 'int64', nullable: false },
      { name: 't', type: 'timestamp_us', nullable: false },
      { name: 'm', type: 'timestamp_ms', nullable: true },
      { name: 'b', type: 'bytes', nullable: true },
      { name: 'f', type: 'boolean', nullable: true },
    ]);
    expect(encode({ s: 'a\tb\\c\nd\re', n: 2n ** 62n, t: 1_790_000_000_123_456n, m: null, b: new Uint8Array([0, 255]), f: true })).toBe(
      'a\\tb\\\\c\\nd\\re\t4611686018427387904\t2026-09-21 14:13:20.123456+00\t\\N\t\\\\x00ff\tt',
    );
    expect(escapeText('plain')).toBe('plain');
    // The key's text as the database will compare it: a Date and its micros are the same key.
    const keyed = copyLineEncoder(
      [
        { name: 'id', type: 'string', nullable: false },
        { name: 't', type: 'timestamp_us', nullable: false },
        { name: 'v', type: 'int64', nullable: true },
      ],
      ['id', 't'],
    );
    keyed({ id: 'a\tb', t: new Date(1_790_000_000_123), v: 1 });
    const first = keyed.lastKey;
    expect(first).toBe('a\\tb\t2026-09-21 14:13:20.123000+00');
    keyed({ id: 'a\tb', t: 1_790_000_000_123_000n, v: 2n });
    expect(keyed.lastKey).toBe(first);
    expect(microsToTimestamp(-1n, 'x')).toBe('1969-12-31 23:59:59.999999+00');
  });

  it('formats safe-integer micros with number arithmetic exactly as the Date of their millisecond says', () => {
    const reference = (micros: number): string => {
      const ms = Math.floor(micros / 1000);
      const iso = new Date(ms).toISOString();
      return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(micros - ms * 1000).padStart(3, '0')}+00`;
    };
    const samples = [0, -1, 1, 999_999, 1_000_000, -86_400_000_000, -86_400_000_001, 86_399_999_999, 1_790_000_000_123_456, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      samples.push(Math.round((seed / 2 ** 31 - 0.3) * 2e15) + i);
    }
    for (const micros of samples) {
      expect(microsToTimestamp(micros, 'x')).toBe(reference(micros));
      expect(microsToTimestamp(BigInt(micros), 'x')).toBe(reference(micros));
    }
    const encode = copyLineEncoder([
      { name: 'us', type: 'timestamp_us', nullable: false },
      { name: 'ms', type: 'timestamp_ms', nullable: false },
    ]);
    expect(encode({ us: 1_790_000_000_123_456, ms: 1_790_000_000_123 })).toBe('2026-09-21 14:13:20.123456+00\t2026-09-21 14:13:20.123000+00');
    // Beyond 2^53 micros (after year 2255) the BigInt path formats, up to year 9999.
    expect(encode({ us: 253_402_300_799_999_999n, ms: 0 })).toBe('9999-12-31 23:59:59.999999+00\t1970-01-01 00:00:00.000000+00');
    expect(() => encode({ us: 253_402_300_800_000_000n, ms: 0 })).toThrow(/column us: .*out of the range a timestamp column holds/);
    expect(() => encode({ us: 0, ms: 300_000_000_000_000 })).toThrow(/column ms: .*out of the range a timestamp column holds/);
    expect(() => encode({ us: 1.5, ms: 0 })).toThrow(/column us: expected a 64-bit integer/);
  });

  it('refuses what the declared types cannot hold (the record goes to the DLQ as schema_mismatch)', () => {
    const encode = copyLineEncoder([
      { name: 'id', type: 'string', nullable: false },
      { name: 'n', type: 'int32', nullable: true },
      { name: 'big', type: 'int64', nullable: true },
    ]);
    expect(() => encode({ n: 1 })).toThrow(new LakeValueError('id', 'null or absent in a non-nullable column'));
    expect(() => encode({ id: 'x', n: 2 ** 31 })).toThrow(/column n: expected a 32-bit integer/);
    expect(() => encode({ id: 'x', big: 2n ** 63n })).toThrow(/column big: .* out of the int64 range/);
    expect(() => encode({ id: 'x', big: 2 ** 60 })).toThrow(/column big: expected a 64-bit integer/);
    expect(() => encode(['x'])).toThrow(/an array, not an object/);
  });
});

describe('sql output: lint', () => {
  const head = ['input:', '  kafka:', '    topics: [sluice.agent-events]', '    consumer_group: g', 'output:', '  sql:'];
  const lint = (lines: string[], env: Record<string, string> = { SLUICE_WAREHOUSE_URL: 'postgres://u:p@db:5432/w' }) =>
    lintPipelineText([...head, ...lines, 'dlq:', '  topic: sluice.agent-events.export.dlq', ''].join('\n'), 'w.yaml', { env: { ...SERVERS_ENV, ...env }, expressions: null }).problems;

  it('accepts a valid block', () => {
    expect(lint(['    table: analytics.agent_events', '    key: [event_id]', '    columns:', '      - { name: event_id, type: string }'])).toEqual([]);
  });

  it('names file:line, the setting and the fix for a bad sql block', () => {
    const problems = lint([
      '    table: Analytics.Agent-Events', //    7
      '    mode: upsert', //                     8
      '    key: [event_ids, note]', //            9
      '    accumulate: [note]', //               10
      '    columns:', //                         11
      '      - { name: event_id, type: string }', // 12
      '      - { name: note, type: string, nullable: true }', // 13
    ]);
    expect(problems.map(formatProblem)).toEqual([
      'w.yaml:7:12 output.sql.table: "Analytics.Agent-Events" is not valid here (write table or schema.table in lower-case letters, digits and _, e.g. analytics.agent_events)',
      'w.yaml:8:11 output.sql.mode: unknown value "upsert" (use one of: merge, insert_ignore, append)',
    ]);
    const second = lint([
      '    table: analytics.agent_events', //    7
      '    key: [event_ids, note]', //            8
      '    accumulate: [note]', //               9
      '    columns:', //                         10
      '      - { name: event_id, type: string }', // 11
      '      - { name: note, type: string, nullable: true }', // 12
    ]);
    expect(second.map((p) => `${p.line} ${p.path}: ${p.message} | ${p.fix}`)).toEqual([
      '8 output.sql.key[0]: "event_ids" is not a column | did you mean "event_id"?',
      '8 output.sql.key[1]: key column note is nullable, and a key must always have a value | set nullable: false on column note',
      '9 output.sql.accumulate[0]: note is a key column, which identifies the row and cannot be summed | remove note from accumulate or from key',
    ]);
  });

  it('has no built-in connection URL: without SLUICE_WAREHOUSE_URL or dsn it says what to set, and never shows the DSN', () => {
    const missing = lint(['    table: t', '    key: [id]', '    columns: [{ name: id, type: string }]'], { SLUICE_WAREHOUSE_URL: '' });
    expect(missing.map(formatProblem).join('\n')).toMatch(/output\.sql\.dsn: missing required field "dsn".*SLUICE_WAREHOUSE_URL/);
    const bad = lint(['    dsn: ""', '    table: t', '    key: [id]', '    columns: [{ name: id, type: string }]']);
    expect(bad.map(formatProblem)).toEqual(['w.yaml:7:10 output.sql.dsn: must not be empty (write a value, e.g. "${SLUICE_WAREHOUSE_URL}")']);
  });
});
