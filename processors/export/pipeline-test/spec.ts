import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseYamlSource, type ConfigNode, type MapNode } from '../../core/pipeline/source.js';

/**
 * Test definitions of a pipeline (`sluice test`), in the style of Redpanda Connect's config
 * tests: under `tests:` in the pipeline file, or in `<name>_test.yaml` beside it. Each case
 * gives input records and what must become of each: the row, the object key, a DLQ reason,
 * or dropped.
 *
 *   tests:
 *     - name: a deposit becomes one row
 *       input:                          # or `inputs:`, a list, each with its own `expect`
 *         avro: { schema: ../../schemas/agent-event/v1.avsc, value: {...} }   # or value / raw / raw_base64 / tombstone
 *         key: agent-7                  # optional: headers, topic, partition, offset, timestamp
 *       expect:
 *         row: {...}                    # equals (or contains: {...}, check: <JSONata predicate>)
 *         key: lake/.../sluice.agent-events+0+0.parquet
 *         # or dlq: mapping_error, or dropped: true (or the processor's label)
 */

export type TestValue =
  | { kind: 'json'; value: unknown }
  | { kind: 'avro'; schemaFile: string; value: unknown }
  | { kind: 'raw'; bytes: Buffer }
  | { kind: 'tombstone' };

export interface Expectation {
  line: number;
  row?: { value: unknown; line: number };
  contains?: { value: unknown; line: number };
  check?: { text: string; line: number };
  key?: { value: string; line: number };
  dlq?: { value: string; line: number };
  dropped?: { value: true | string; line: number };
}

export interface TestInput {
  line: number;
  value: TestValue;
  key?: string;
  headers?: Record<string, string>;
  topic?: string;
  partition: number;
  offset?: string;
  timestamp?: number;
  expect?: Expectation;
}

export interface TestCase {
  name: string;
  /** The file the case is written in (the pipeline, or its _test.yaml). */
  file: string;
  line: number;
  inputs: TestInput[];
}

export interface SpecProblem {
  file: string;
  line: number;
  message: string;
}

/** The `<name>_test.yaml` beside a pipeline file. */
export function siblingTestFile(pipelineFile: string): string {
  const ext = extname(pipelineFile);
  return join(dirname(pipelineFile), `${basename(pipelineFile, ext)}_test${ext}`);
}

export function isTestFile(file: string): boolean {
  return /_test\.ya?ml$/.test(file);
}

/** The pipeline a `<name>_test.yaml` tests. */
export function pipelineOfTestFile(testFile: string): string {
  return testFile.replace(/_test(\.ya?ml)$/, '$1');
}

/** Every case of a pipeline: its own `tests:` and its sibling test file's. */
export function loadTestCases(pipelineFile: string): { cases: TestCase[]; problems: SpecProblem[] } {
  const cases: TestCase[] = [];
  const problems: SpecProblem[] = [];
  for (const file of [pipelineFile, siblingTestFile(pipelineFile)]) {
    if (!existsSync(file)) continue;
    const source = parseYamlSource(readFileSync(file, 'utf8'), { intAsBigInt: true });
    for (const e of source.errors) problems.push({ file, line: e.pos.line, message: `YAML: ${e.message}` });
    const root = source.root;
    if (root?.kind !== 'map') continue;
    const tests = root.entries.find((e) => e.key === 'tests');
    if (!tests) continue;
    if (tests.value?.kind !== 'seq') {
      problems.push({ file, line: tests.keyPos.line, message: 'tests must be a list of cases (- name: ..., input: ..., expect: ...)' });
      continue;
    }
    tests.value.items.forEach((item, i) => {
      const parsed = parseCase(item, file, i, problems);
      if (parsed) cases.push(parsed);
    });
  }
  return { cases, problems };
}

function parseCase(node: ConfigNode, file: string, index: number, problems: SpecProblem[]): TestCase | undefined {
  const bad = (line: number, message: string): undefined => void problems.push({ file, line, message });
  if (node.kind !== 'map') return bad(node.pos.line, `tests[${index}] must be an object with name, input(s) and expect`);
  known(node, ['name', 'input', 'inputs', 'expect'], `tests[${index}]`, file, problems);
  const name = scalarOf(node, 'name');
  if (typeof name !== 'string' || name === '') return bad(node.pos.line, `tests[${index}] needs a name`);
  const single = entry(node, 'input');
  const list = entry(node, 'inputs');
  if (!!single === !!list) return bad(node.pos.line, `test "${name}": give either input (one record) or inputs (a list)`);
  const caseExpect = entry(node, 'expect');
  const inputs: TestInput[] = [];
  const items = single ? [single] : list!.kind === 'seq' ? list!.items : [];
  if (list && list.kind !== 'seq') return bad(list.pos.line, `test "${name}": inputs must be a list`);
  let ok = true;
  items.forEach((item, i) => {
    const input = parseInput(item, `test "${name}" input ${i + 1}`, file, problems, !!single);
    if (!input) ok = false;
    else inputs.push(input);
  });
  if (single && inputs[0]) {
    if (!caseExpect) return bad(node.pos.line, `test "${name}": an expect is needed (row, contains, check, key, dlq or dropped)`);
    const e = parseExpect(caseExpect, `test "${name}"`, file, problems);
    if (!e) return undefined;
    inputs[0].expect = e;
  } else if (!single && caseExpect) return bad(caseExpect.pos.line, `test "${name}": with inputs, each input has its own expect`);
  if (!ok || inputs.length === 0) return ok ? bad(node.pos.line, `test "${name}" has no inputs`) : undefined;
  return { name, file, line: node.pos.line, inputs };
}

const INPUT_FIELDS = ['value', 'avro', 'raw', 'raw_base64', 'tombstone', 'key', 'headers', 'topic', 'partition', 'offset', 'timestamp', 'expect'];

function parseInput(node: ConfigNode, where: string, file: string, problems: SpecProblem[], single: boolean): TestInput | undefined {
  const bad = (line: number, message: string): undefined => void problems.push({ file, line, message: `${where}: ${message}` });
  if (node.kind !== 'map') return bad(node.pos.line, 'must be an object (value, avro, raw, key, headers, ...)');
  if (!known(node, INPUT_FIELDS, where, file, problems)) return undefined;
  const forms = ['value', 'avro', 'raw', 'raw_base64', 'tombstone'].filter((k) => entry(node, k) !== undefined);
  if (forms.length !== 1) return bad(node.pos.line, 'give exactly one of value (JSON), avro ({schema, value}), raw (text), raw_base64, tombstone: true');
  let value: TestValue;
  const form = forms[0]!;
  const v = entry(node, form)!;
  if (form === 'value') value = { kind: 'json', value: plain(v) };
  else if (form === 'avro') {
    if (v.kind !== 'map') return bad(v.pos.line, 'avro is {schema: <.avsc file, relative to this file>, value: <the record>}');
    const schema = scalarOf(v, 'schema');
    const record = entry(v, 'value');
    if (typeof schema !== 'string' || !record) return bad(v.pos.line, 'avro needs schema (an .avsc file) and value');
    const schemaFile = resolve(dirname(file), schema);
    if (!existsSync(schemaFile)) return bad(v.pos.line, `schema file ${schemaFile} does not exist`);
    value = { kind: 'avro', schemaFile, value: plain(record) };
  } else if (form === 'raw') value = { kind: 'raw', bytes: Buffer.from(String(plain(v)), 'utf8') };
  else if (form === 'raw_base64') value = { kind: 'raw', bytes: Buffer.from(String(plain(v)), 'base64') };
  else value = { kind: 'tombstone' };
  const input: TestInput = { line: node.pos.line, value, partition: 0 };
  const key = scalarOf(node, 'key');
  if (key !== undefined) input.key = String(key);
  const headers = entry(node, 'headers');
  if (headers) {
    const h = plain(headers);
    if (h === null || typeof h !== 'object' || Array.isArray(h)) return bad(headers.pos.line, 'headers is an object of name: value');
    input.headers = Object.fromEntries(Object.entries(h).map(([k, x]) => [k, String(x)]));
  }
  const topic = scalarOf(node, 'topic');
  if (topic !== undefined) input.topic = String(topic);
  const partition = scalarOf(node, 'partition');
  if (partition !== undefined) {
    if (!Number.isInteger(Number(partition)) || Number(partition) < 0) return bad(node.pos.line, 'partition is an integer >= 0');
    input.partition = Number(partition);
  }
  const offset = scalarOf(node, 'offset');
  if (offset !== undefined) {
    if (!/^\d+$/.test(String(offset))) return bad(node.pos.line, 'offset is an integer >= 0');
    input.offset = String(offset);
  }
  const timestamp = scalarOf(node, 'timestamp');
  if (timestamp !== undefined) {
    const t = typeof timestamp === 'number' ? timestamp : Date.parse(String(timestamp));
    if (!Number.isFinite(t)) return bad(node.pos.line, 'timestamp is epoch milliseconds or an ISO-8601 time');
    input.timestamp = t;
  }
  const expect = entry(node, 'expect');
  if (expect) {
    if (single) return bad(expect.pos.line, 'with input (one record), write expect beside input, not inside it');
    const e = parseExpect(expect, where, file, problems);
    if (!e) return undefined;
    input.expect = e;
  } else if (!single) return bad(node.pos.line, 'each of inputs needs an expect (row, contains, check, key, dlq or dropped)');
  return input;
}

function parseExpect(node: ConfigNode, where: string, file: string, problems: SpecProblem[]): Expectation | undefined {
  const bad = (line: number, message: string): undefined => void problems.push({ file, line, message: `${where}: expect: ${message}` });
  if (node.kind !== 'map') return bad(node.pos.line, 'must be an object of conditions: row, contains, check, key, dlq, dropped');
  if (!known(node, ['row', 'contains', 'check', 'key', 'dlq', 'dropped'], `${where}: expect`, file, problems)) return undefined;
  const e: Expectation = { line: node.pos.line };
  for (const { key, value } of node.entries) {
    if (!value) return bad(node.pos.line, `${key} has no value`);
    const line = value.pos.line;
    if (key === 'row') e.row = { value: plain(value), line };
    else if (key === 'contains') e.contains = { value: plain(value), line };
    else if (key === 'check') e.check = { text: String(plain(value)), line };
    else if (key === 'key') e.key = { value: String(plain(value)), line };
    else if (key === 'dlq') e.dlq = { value: String(plain(value)), line };
    else if (key === 'dropped') {
      const d = plain(value);
      if (d === false) return bad(line, 'dropped: false is the default; expect a row instead');
      e.dropped = { value: d === true ? true : String(d), line };
    }
  }
  const outcomes = [e.dlq, e.dropped, e.row ?? e.contains ?? e.check ?? e.key].filter((x) => x !== undefined);
  if (outcomes.length === 0) return bad(node.pos.line, 'give a condition: row, contains, check, key, dlq or dropped');
  if (outcomes.length > 1) return bad(node.pos.line, 'a record either becomes a row (row, contains, check, key), goes to the DLQ (dlq) or is dropped (dropped): pick one');
  return e;
}

function known(node: MapNode, names: string[], where: string, file: string, problems: SpecProblem[]): boolean {
  let ok = true;
  for (const e of node.entries) {
    if (!names.includes(e.key)) {
      ok = false;
      problems.push({ file, line: e.keyPos.line, message: `${where}: unknown field "${e.key}" (allowed: ${names.join(', ')})` });
    }
  }
  return ok;
}

function entry(node: MapNode, key: string): ConfigNode | undefined {
  return node.entries.find((e) => e.key === key)?.value;
}

function scalarOf(node: MapNode, key: string): unknown {
  const v = entry(node, key);
  return v === undefined ? undefined : plain(v);
}

/** A node as plain data (YAML as written: no ${ENV} interpolation in tests). */
export function plain(node: ConfigNode): unknown {
  if (node.kind === 'scalar') {
    const v = node.value;
    // Integers within 2^53 as numbers (what decoding gives), beyond as bigint (exact).
    if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    return v;
  }
  if (node.kind === 'seq') return node.items.map(plain);
  return Object.fromEntries(node.entries.map((e) => [e.key, e.value ? plain(e.value) : null]));
}
