import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffValues } from '../../processors/export/pipeline-test/diff.js';
import { runPipelineTests } from '../../processors/export/pipeline-test/run.js';
import { loadTestCases } from '../../processors/export/pipeline-test/spec.js';
import { SERVERS_ENV } from '../support/servers.js';

/** A JSON pipeline with a filter, a mapping and a dedupe, and its tests in `<name>_test.yaml`. */
const PIPELINE = `input:
  kafka:
    topics: [orders]
    consumer_group: g
    decode: json
pipeline:
  processors:
    - label: paid_only
      filter: status = "paid"
    - label: to_row
      mapping: '{"id": id, "total": qty * price, "region": $lowercase(region)}'
    - label: once
      dedupe: { key: id }
output:
  s3:
    bucket: sluice-lake
    path: orders/region=\${data.region}/\${topic}+\${partition}+\${first_offset}.jsonl
    format: jsonl
    columns: [{ name: id, type: string }, { name: total, type: int64 }, { name: region, type: string }]
dlq:
  topic: orders.dlq
`;

function write(tests: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-run-'));
  writeFileSync(join(dir, 'orders.yaml'), PIPELINE);
  writeFileSync(join(dir, 'orders_test.yaml'), tests);
  return join(dir, 'orders.yaml');
}

const run = (file: string) => runPipelineTests(file, { ...SERVERS_ENV });

describe('sluice test: running cases', () => {
  it('checks row, contains, check, key, dropped and dlq through the real record path', async () => {
    const file = write(`tests:
  - name: a paid order becomes a row
    input:
      value: { id: o-1, status: paid, qty: 2, price: 5, region: EU }
      offset: 7
    expect:
      row: { id: o-1, total: 10, region: eu }
      check: total > 5
      key: orders/region=eu/orders+0+7.jsonl
  - name: an unpaid order is dropped by the filter, a repeat by the dedupe
    inputs:
      - value: { id: o-2, status: open, qty: 1, price: 1, region: EU }
        expect: { dropped: paid_only }
      - value: { id: o-3, status: paid, qty: 1, price: 1, region: EU }
        expect: { contains: { id: o-3 } }
      - value: { id: o-3, status: paid, qty: 1, price: 1, region: EU }
        expect: { dropped: true }
  - name: bad input goes to the DLQ with its reason
    inputs:
      - raw: 'not json'
        expect: { dlq: decode_error }
      - value: { id: o-4, status: paid, qty: many, price: 1, region: EU }
        expect: { dlq: mapping_error }
`);
    const result = await run(file);
    expect(result.errors).toEqual([]);
    expect(result.cases.map((c) => [c.name, c.failures])).toEqual([
      ['a paid order becomes a row', []],
      ['an unpaid order is dropped by the filter, a repeat by the dedupe', []],
      ['bad input goes to the DLQ with its reason', []],
    ]);
  });

  it('reports each unmet condition at its line with what was got', async () => {
    const file = write(`tests:
  - name: wrong expectations
    inputs:
      - value: { id: o-1, status: paid, qty: 2, price: 5, region: EU }
        expect:
          row: { id: o-1, total: 11, region: eu }
          check: total < 5
          key: orders/region=EU/orders+0+0.jsonl
      - value: { id: o-2, status: open, qty: 1, price: 1, region: EU }
        expect: { dlq: mapping_error }
`);
    const [c] = (await run(file)).cases;
    const testFile = file.replace('orders.yaml', 'orders_test.yaml');
    expect(c!.failures.map((f) => [f.input, f.lines])).toEqual([
      [
        1,
        [
          `${testFile}:6: row differs (- expected, + got):`,
          '  - row.total: 11',
          '  + row.total: 10',
          `${testFile}:7: check total < 5 yielded false, not true, for the row {"id":"o-1","total":10,"region":"eu"}`,
          `${testFile}:8: object key differs:`,
          '  - orders/region=EU/orders+0+0.jsonl',
          '  + orders/region=eu/orders+0+0.jsonl',
        ],
      ],
      [2, [`${testFile}:10: expected the DLQ with reason mapping_error, got dropped by paid_only`]],
    ]);
  });

  it('names definition mistakes with their line', () => {
    const file = write(`tests:
  - name: two outcomes
    input:
      value: {}
    expect: { dlq: x, dropped: true }
  - name: typo
    input:
      valeu: {}
    expect: { dropped: true }
`);
    expect(loadTestCases(file).problems.map((p) => [p.line, p.message])).toEqual([
      [5, 'test "two outcomes": expect: a record either becomes a row (row, contains, check, key), goes to the DLQ (dlq) or is dropped (dropped): pick one'],
      [8, 'test "typo" input 1: unknown field "valeu" (allowed: value, avro, raw, raw_base64, tombstone, key, headers, topic, partition, offset, timestamp, expect)'],
    ]);
  });
});

describe('diffValues', () => {
  it('names missing, unexpected and different fields by path; contains ignores the rest', () => {
    expect(diffValues({ a: 1, b: { c: 2 } }, { a: 1, b: { c: 3 }, d: 4 }, 'row', true)).toEqual(['- row.b.c: 2', '+ row.b.c: 3', '- row.d: (absent)', '+ row.d: 4']);
    expect(diffValues({ a: 1, n: null }, { a: 1, d: 4 }, 'row', false)).toEqual([]);
  });
});
