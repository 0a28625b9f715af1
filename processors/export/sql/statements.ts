import type { SqlColumn, SqlOutputConfig } from '../outputs/sql.js';
import { SQL_TYPES } from './types.js';

/**
 * The SQL text of the `sql` output, built from its config (pure; identifiers always
 * quoted). One flush: COPY into `LOAD_TABLE` (a temporary table of the session), then
 * `load()` merges it into the target, then `saveOffset` records the partition's offset.
 */

/** The session's load table: a temporary table emptied at every commit. */
export const LOAD_TABLE = 'sluice_load';
/** The load table's row number in the batch: the last record of a key wins. */
export const SEQ = '_sluice_seq';

export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.table` or `table` -> quoted, with the schema (undefined: the search path's). */
export function qualified(table: string): { schema: string | undefined; name: string; sql: string } {
  const dot = table.indexOf('.');
  const schema = dot >= 0 ? table.slice(0, dot) : undefined;
  const name = dot >= 0 ? table.slice(dot + 1) : table;
  return { schema, name, sql: schema ? `${ident(schema)}.${ident(name)}` : ident(name) };
}

export interface Statements {
  createLoadTable: string;
  copy: string;
  /** COPY straight into the target (a batch with no key twice, when the table refuses stored keys itself). */
  copyTarget: string;
  /** Moves the load table's rows into the target (one statement). */
  load: string;
  /** The same when no key is in the load table twice (no DISTINCT ON: no sort of the batch); `load` for append and accumulate. */
  loadUnique: string;
  truncateLoad: string;
  createTable: string | undefined;
  createSchema: string | undefined;
  addColumn(column: SqlColumn): string;
}

export function statements(config: Pick<SqlOutputConfig, 'table' | 'columns' | 'key' | 'mode' | 'accumulate'>): Statements {
  const target = qualified(config.table);
  const cols = config.columns.map((c) => c.name);
  const list = cols.map(ident).join(', ');
  const key = config.key;
  const isKey = new Set(key);
  const acc = new Set(config.accumulate);
  const others = cols.filter((c) => !isKey.has(c));
  const keyList = key.map(ident).join(', ');
  const on = key.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' AND ');
  const insertValues = cols.map((c) => `s.${ident(c)}`).join(', ');

  let load: string;
  let loadUnique: string;
  if (config.mode === 'append') {
    load = loadUnique = `INSERT INTO ${target.sql} (${list}) SELECT ${list} FROM ${LOAD_TABLE} ORDER BY ${SEQ}`;
  } else if (config.mode === 'insert_ignore') {
    // The first record of a key wins within the batch, as the stored row wins over the batch.
    load = `INSERT INTO ${target.sql} (${list}) SELECT DISTINCT ON (${keyList}) ${list} FROM ${LOAD_TABLE} ORDER BY ${keyList}, ${SEQ} ON CONFLICT (${keyList}) DO NOTHING`;
    loadUnique = `INSERT INTO ${target.sql} (${list}) SELECT ${list} FROM ${LOAD_TABLE} ON CONFLICT (${keyList}) DO NOTHING`;
  } else {
    // MERGE may touch a target row once: one source row per key (summed, or the last record).
    const source =
      acc.size > 0
        ? `SELECT ${keyList}, ${others.map((c) => (acc.has(c) ? `sum(${ident(c)}) AS ${ident(c)}` : `(array_agg(${ident(c)} ORDER BY ${SEQ} DESC))[1] AS ${ident(c)}`)).join(', ')} FROM ${LOAD_TABLE} GROUP BY ${keyList}`
        : `SELECT DISTINCT ON (${keyList}) ${list} FROM ${LOAD_TABLE} ORDER BY ${keyList}, ${SEQ} DESC`;
    const set = others.map((c) => (acc.has(c) ? `${ident(c)} = COALESCE(t.${ident(c)}, 0) + COALESCE(s.${ident(c)}, 0)` : `${ident(c)} = s.${ident(c)}`)).join(', ');
    const merge = (from: string) =>
      `MERGE INTO ${target.sql} AS t USING ${from} AS s ON ${on}` +
      (others.length > 0 ? ` WHEN MATCHED THEN UPDATE SET ${set}` : '') +
      ` WHEN NOT MATCHED THEN INSERT (${list}) VALUES (${insertValues})`;
    load = merge(`(${source})`);
    loadUnique = acc.size > 0 ? load : merge(LOAD_TABLE);
  }

  const columnDefs = config.columns.map((c) => `${ident(c.name)} ${SQL_TYPES[c.type]}${c.nullable ? '' : ' NOT NULL'}`);
  return {
    createLoadTable: `CREATE TEMPORARY TABLE IF NOT EXISTS ${LOAD_TABLE} (${[...config.columns.map((c) => `${ident(c.name)} ${SQL_TYPES[c.type]}`), `${SEQ} integer`].join(', ')}) ON COMMIT DELETE ROWS`,
    copy: `COPY ${LOAD_TABLE} (${list}, ${SEQ}) FROM STDIN`,
    copyTarget: `COPY ${target.sql} (${list}) FROM STDIN`,
    load,
    loadUnique,
    truncateLoad: `TRUNCATE ${LOAD_TABLE}`,
    createSchema: target.schema ? `CREATE SCHEMA IF NOT EXISTS ${ident(target.schema)}` : undefined,
    createTable: `CREATE TABLE IF NOT EXISTS ${target.sql} (${[...columnDefs, ...(key.length > 0 ? [`PRIMARY KEY (${keyList})`] : [])].join(', ')})`,
    addColumn: (c) => `ALTER TABLE ${target.sql} ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${SQL_TYPES[c.type]}`,
  };
}

export interface OffsetStatements {
  create: string;
  /** $1 pipeline, $2 topic, $3 partition: the stored next offset, locked until the commit. */
  lock: string;
  /** $1 pipeline, $2 topic, $3 partitions (int[]): every stored offset of those partitions. */
  read: string;
  /** $1 pipeline, $2 topic, $3 partition, $4 next offset. */
  save: string;
}

export function offsetStatements(table: string): OffsetStatements {
  const t = qualified(table);
  return {
    create:
      (t.schema ? `CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}; ` : '') +
      `CREATE TABLE IF NOT EXISTS ${t.sql} (pipeline text NOT NULL, topic text NOT NULL, "partition" integer NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, topic, "partition"))`,
    lock: `SELECT next_offset FROM ${t.sql} WHERE pipeline = $1 AND topic = $2 AND "partition" = $3 FOR UPDATE`,
    read: `SELECT "partition", next_offset FROM ${t.sql} WHERE pipeline = $1 AND topic = $2 AND "partition" = ANY($3::int[])`,
    save: `INSERT INTO ${t.sql} (pipeline, topic, "partition", next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT (pipeline, topic, "partition") DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
  };
}
