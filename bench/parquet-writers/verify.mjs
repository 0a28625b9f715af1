// Reads a Parquet file back with DuckDB (@duckdb/node-api) and checks it exactly against
// the generator: node bench/verify.mjs FILE ROWS [REFERENCE_FILE]
import { DuckDBInstance } from '@duckdb/node-api';
import { expected, COLUMNS, BIG_AMOUNT, HUGE_AMOUNT, UTF8_METADATA } from './gen.mjs';

export async function verify(file, n, reference) {
  const e = expected(n);
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  await con.run(`SET TimeZone = 'UTC'`);
  const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJS();
  const f = `read_parquet('${file}')`;
  const problems = [];
  const check = (what, got, want) => { if (String(got) !== String(want)) problems.push(`${what}: got ${got}, want ${want}`); };

  const types = Object.fromEntries((await q(`DESCRIBE SELECT * FROM ${f}`)).map((r) => [r.column_name, r.column_type]));
  const WANT = { string: 'VARCHAR', int64: 'BIGINT', int32: 'INTEGER', timestamp_us: 'TIMESTAMP WITH TIME ZONE' };
  for (const [name, kind] of COLUMNS) check(`type of ${name}`, types[name], WANT[kind]);
  const meta = await q(`SELECT name, type, logical_type, converted_type FROM parquet_schema('${file}') WHERE name IN ('occurred_at','amount_minor')`);
  const ts = meta.find((r) => r.name === 'occurred_at');
  const tsLogical = String(ts?.logical_type ?? '');
  if (!/isAdjustedToUTC=1/.test(tsLogical) || !/MICROS/.test(tsLogical)) problems.push(`occurred_at parquet logical type: ${tsLogical || 'none'} (converted ${ts?.converted_type})`);

  const [agg] = await q(`SELECT count(*)::VARCHAR AS cnt, count(DISTINCT event_id)::VARCHAR AS ids,
      sum(amount_minor::HUGEINT)::VARCHAR AS amount, sum(epoch_us(occurred_at)::HUGEINT)::VARCHAR AS occ,
      sum(epoch_us(received_at)::HUGEINT)::VARCHAR AS rec, sum(kafka_offset::HUGEINT)::VARCHAR AS koff,
      sum(kafka_partition)::VARCHAR AS kpart, sum(schema_version)::VARCHAR AS sv,
      sum(strlen(metadata))::VARCHAR AS mbytes, sum(strlen(product))::VARCHAR AS pbytes,
      ${COLUMNS.map(([c]) => `count("${c}")::VARCHAR AS "nn_${c}"`).join(', ')} FROM ${f}`);
  check('row count', agg.cnt, e.count);
  check('distinct event_id', agg.ids, e.count);
  check('sum(amount_minor)', agg.amount, e.sums.amount_minor);
  check('sum(occurred_at µs)', agg.occ, e.sums.occurred_at);
  check('sum(received_at µs)', agg.rec, e.sums.received_at);
  check('sum(kafka_offset)', agg.koff, e.sums.kafka_offset);
  check('sum(kafka_partition)', agg.kpart, e.sums.kafka_partition);
  check('sum(schema_version)', agg.sv, e.sums.schema_version);
  check('utf8 bytes of metadata', agg.mbytes, e.utf8Bytes.metadata);
  check('utf8 bytes of product', agg.pbytes, e.utf8Bytes.product);
  for (const [c] of COLUMNS) check(`non-null ${c}`, agg[`nn_${c}`], e.nonNull[c]);
  const one = async (id) => (await q(`SELECT amount_minor::VARCHAR AS a, metadata FROM ${f} WHERE event_id = '${id}'`))[0];
  check('2^53+1 row', (await one(e.bigRowId))?.a, BIG_AMOUNT);
  check('2^62+3 row', (await one(e.hugeRowId))?.a, HUGE_AMOUNT);
  check('UTF-8 metadata row', (await one(e.utf8RowId))?.metadata, UTF8_METADATA);
  if (reference) {
    const norm = (src) => `SELECT ${COLUMNS.map(([c, k]) => k === 'timestamp_us' ? `epoch_us("${c}") AS "${c}"` : `"${c}"`).join(', ')} FROM read_parquet('${src}')`;
    const [d] = await q(`SELECT (SELECT count(*) FROM (${norm(file)} EXCEPT ALL ${norm(reference)}))::VARCHAR AS a,
                                (SELECT count(*) FROM (${norm(reference)} EXCEPT ALL ${norm(file)}))::VARCHAR AS b`);
    check('rows differing from the reference file', `${d.a}/${d.b}`, '0/0');
  }
  con.closeSync();
  return { exact: problems.length === 0, problems, tsLogical: tsLogical || `converted ${ts?.converted_type}`, tsType: types.occurred_at };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, rows, ref] = process.argv.slice(2);
  console.log(JSON.stringify(await verify(file, Number(rows), ref), null, 1));
}
