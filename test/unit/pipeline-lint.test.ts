import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { lintCommand } from '../../processors/cli/commands/lint.js';
import { exampleFile } from '../../processors/core/pipeline/docs.js';
import { jsonataLanguage, type ExpressionLanguage } from '../../processors/core/pipeline/expressions.js';
import { lintPipelineFile, lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { formatProblem, type PipelineProblem } from '../../processors/core/pipeline/problems.js';
import { SERVERS_ENV } from '../support/servers.js';

const EXPORTS = 'connectors/exports';

/**
 * Stands in for JSONata where it is not installed: rejects `x +` followed by a newline the
 * way JSONata does (S0211 at the token after the operator), accepts everything else.
 */
const standIn: ExpressionLanguage = {
  name: 'JSONata',
  check(text) {
    const plus = text.indexOf('+\n');
    if (plus < 0) return undefined;
    const token = /\S/.exec(text.slice(plus + 1));
    return { message: `S0211: The symbol "${token?.[0]}" cannot be used as a unary operator`, offset: plus + 1 + (token?.index ?? 0), token: token?.[0] ?? '(end)' };
  },
};

function tempFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-pipeline-')), name);
  writeFileSync(file, text);
  return file;
}

function lintText(text: string, env: Record<string, string> = {}): PipelineProblem[] {
  return lintPipelineText(text, 'p.yaml', { env: { ...SERVERS_ENV, ...env }, expressions: standIn }).problems;
}

const VALID = `input:
  kafka:
    topics: [sluice.agent-events]
    consumer_group: g
output:
  s3:
    bucket: sluice-lake
    path: t/\${topic}+\${partition}+\${first_offset}.parquet
dlq:
  topic: sluice.agent-events.export.dlq
`;

describe('shipped pipelines', () => {
  const files = readdirSync(EXPORTS).filter((f) => f.endsWith('.yaml'));

  it('include lake.yaml', () => {
    expect(files).toContain('lake.yaml');
  });

  it.each(files)('%s lints clean with only the servers set in the environment (every other ${ENV} has a default)', (file) => {
    expect(lintPipelineFile(join(EXPORTS, file), { env: { ...SERVERS_ENV }, expressions: jsonataLanguage() ?? standIn }).map(formatProblem)).toEqual([]);
  });

  it('the docs example file, made of every component example, lints clean', () => {
    expect(lintText(exampleFile()).map(formatProblem)).toEqual([]);
  });
});

describe('a bad pipeline file', () => {
  const text = [
    'input:', //                                                          1
    '  kafka:', //                                                        2
    '    brokr: [localhost:9092]', //                                     3
    '    topics: [sluice.agent-events]', //                               4
    '    consumer_group: export-test', //                                 5
    '    decode: avro', //                                                6
    '    max_batch_records: lots', //                                     7
    'pipeline:', //                                                       8
    '  processors:', //                                                   9
    '    - mapping: |', //                                                10
    '        {', //                                                       11
    '          "event_id": id,', //                                       12
    '          "amount": amount +', //                                    13
    '        }', //                                                       14
    '    - filtr: event_type = "x"', //                                   15
    '    - dedupe:', //                                                   16
    '        key: event_id', //                                           17
    '        window: 10 minutes', //                                      18
    'output:', //                                                         19
    '  s3:', //                                                           20
    '    bucket: ${LAKE_BUCKET}', //                                      21
    '    path: lake/${data.evnt_type}/dt=${time:YYYY-MM-dd}/${partition}.parquet', // 22
    '    format: paruqet', //                                             23
    '    time_field: occurred_at', //                                     24
    '    batching:', //                                                   25
    '      period: 1 sec', //                                             26
    '      bytes: 64 megs', //                                            27
    'dlq:', //                                                            28
    '  topc: x.dlq', //                                                   29
    '',
  ].join('\n');

  it('yields every problem with its line, column, config path and fix, in file order', () => {
    const file = tempFile('bad.yaml', text);
    const problems = lintPipelineFile(file, { env: { ...SERVERS_ENV }, expressions: standIn });
    const expected: [number, number, string, RegExp, RegExp][] = [
      [3, 5, 'input.kafka.brokr', /unknown field "brokr"/, /did you mean "brokers"\?/],
      [6, 13, 'input.kafka.decode', /unknown value "avro"/, /did you mean "avro_registry"\? allowed: avro_registry, json, raw/],
      [7, 24, 'input.kafka.max_batch_records', /expected a whole number, got "lots"/, /write a whole number/],
      [14, 9, 'pipeline.processors[0].mapping', /invalid JSONata: S0211/, /correct the expression near "}"/],
      [15, 7, 'pipeline.processors[1].filtr', /unknown processor "filtr"/, /did you mean "filter"\?/],
      [18, 17, 'pipeline.processors[2].dedupe.window', /"10 minutes" is not a duration/, /expected a duration like 1s, 500ms/],
      [21, 13, 'output.s3.bucket', /environment variable LAKE_BUCKET is not set/, /set LAKE_BUCKET, or give a default: \$\{LAKE_BUCKET:value\}/],
      [22, 11, 'output.s3.path', /lacks \$\{topic\} and \$\{first_offset\}/, /end the path with \$\{topic\}\+\$\{partition\}\+\$\{first_offset\}\.parquet/],
      [22, 44, 'output.s3.path', /unknown time format token "YYYY"/, /did you mean "yyyy"\?/],
      [23, 13, 'output.s3.format', /unknown value "paruqet"/, /did you mean "parquet"\?/],
      [26, 15, 'output.s3.batching.period', /"1 sec" is not a duration/, /expected a duration like 1s, 500ms/],
      [27, 14, 'output.s3.batching.bytes', /"64 megs" is not a size/, /like 64MiB/],
      [28, 1, 'dlq.topic', /missing required field "topic"/, /add it, e.g. topic: sluice.agent-events.export.dlq/],
      [29, 3, 'dlq.topc', /unknown field "topc"/, /did you mean "topic"\?/],
    ];
    expect(problems.map((p) => `${p.line}:${p.column} ${p.path}`)).toEqual(expected.map(([l, c, path]) => `${l}:${c} ${path}`));
    problems.forEach((p, i) => {
      const [, , , message, fix] = expected[i]!;
      expect(p.file).toBe(file);
      expect(p.message).toMatch(message);
      expect(p.fix).toMatch(fix);
    });
    expect(formatProblem(problems[0]!)).toBe(`${file}:3:5 input.kafka.brokr: unknown field "brokr" (did you mean "brokers"?)`);
  });

  it.skipIf(!jsonataLanguage())('real JSONata places the mapping error at the same line', () => {
    const problems = lintPipelineText(text, 'bad.yaml', { env: { ...SERVERS_ENV }, expressions: jsonataLanguage() }).problems;
    expect(problems.find((p) => p.path === 'pipeline.processors[0].mapping')).toMatchObject({ line: 14, column: 9 });
  });
});

describe('lint rules', () => {
  it('accepts a minimal valid file', () => {
    expect(lintText(VALID)).toEqual([]);
  });

  it('reports YAML syntax errors with their line', () => {
    const [p] = lintText('input:\n  kafka: [a\n');
    expect(p).toMatchObject({ path: '', line: 3 });
    expect(p!.message).toMatch(/^YAML: /);
    const [dup] = lintText('input: {}\ninput: {}\n');
    expect(dup).toMatchObject({ line: 2, column: 1 });
    expect(dup!.message).toMatch(/unique/);
  });

  it('reports an empty file, a non-mapping root, unknown and missing sections', () => {
    expect(lintText('')[0]!.message).toBe('the file is empty');
    expect(lintText('- a\n')[0]!.message).toMatch(/mapping of sections/);
    const problems = lintText('inptu:\n  kafka: {}\n');
    expect(problems.map((p) => [p.line, p.column, p.path, p.message])).toEqual([
      [1, 1, 'inptu', 'unknown section "inptu"'],
      [1, 1, 'input', 'missing required field "input"'],
      [1, 1, 'output', 'missing required field "output"'],
      [1, 1, 'dlq', 'missing required field "dlq"'],
    ]);
    expect(problems[0]!.fix).toBe('did you mean "input"?');
    expect(problems[1]!.fix).toMatch(/^add it, e\.g\. input: \{kafka: \{topics: \[sluice\.agent-events\], consumer_group: sluice-export-lake\}\}/);
  });

  it('names wrong types and the expected one', () => {
    const problems = lintText(VALID.replace('topics: [sluice.agent-events]', 'topics: sluice.agent-events').replace('dlq:\n', 'http:\n  port: [1]\ndlq:\n'));
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['input.kafka.topics', 'expected a list, got "sluice.agent-events"'],
      ['http.port', 'expected a whole number, got a list'],
    ]);
    expect(problems[0]!.fix).toBe('write a YAML list, e.g. [sluice.agent-events]');
  });

  it('checks ranges, patterns and regexes', () => {
    const problems = lintText(
      VALID.replace('consumer_group: g', 'consumer_group: g\n    topic_pattern: "^sluice.(["\n    max_batch_records: 0')
        .replace('topics: [sluice.agent-events]', 'brokers: [localhost]')
        .replace('bucket: sluice-lake', 'bucket: Sluice_Lake'),
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['input.kafka.brokers[0]', '"localhost" is not valid here'],
      ['input.kafka.topic_pattern', expect.stringMatching(/^invalid regular expression: .*Unterminated/)],
      ['input.kafka.max_batch_records', 'must be at least 1, got 0'],
      ['output.s3.bucket', '"Sluice_Lake" is not valid here'],
    ]);
    expect(problems[0]!.fix).toBe('write host:port');
  });

  it('requires exactly one of topics and topic_pattern', () => {
    const neither = lintText(VALID.replace('    topics: [sluice.agent-events]\n', ''));
    expect(neither).toMatchObject([{ path: 'input.kafka', line: 2, message: 'names no topics' }]);
    const both = lintText(VALID.replace('consumer_group: g', 'consumer_group: g\n    topic_pattern: ^x$'));
    expect(both).toMatchObject([{ path: 'input.kafka.topic_pattern', line: 5, message: 'both topics and topic_pattern are set' }]);
  });

  it('refuses a DLQ topic the input consumes', () => {
    const problems = lintText(VALID.replace('topic: sluice.agent-events.export.dlq', 'topic: sluice.agent-events'));
    expect(problems).toMatchObject([{ path: 'dlq.topic', line: 10, column: 10 }]);
    expect(problems[0]!.message).toMatch(/loop back/);
  });

  it('names the required fields of an empty component', () => {
    const problems = lintText('input:\n  kafka:\noutput:\n  s3:\n    bucket: b-b\n    path: ${topic}+${partition}+${first_offset}\ndlq:\n');
    expect(problems.map((p) => [p.line, p.column, p.path, p.message])).toEqual([
      [2, 3, 'input.kafka.consumer_group', 'missing required field "consumer_group"'],
      [7, 1, 'dlq.topic', 'missing required field "topic"'],
    ]);
  });

  it('refuses duplicate list items', () => {
    const problems = lintText(VALID.replace('topics: [sluice.agent-events]', 'topics: [a, b, a]').replace('.parquet', '.parquet\n    columns:\n      - { name: x, type: string }\n      - { name: x, type: int64 }'));
    expect(problems.map((p) => [p.path, p.line, p.column, p.message])).toEqual([
      ['input.kafka.topics[2]', 3, 20, 'duplicate of input.kafka.topics[0]'],
      ['output.s3.columns[1]', 11, 9, 'duplicate of output.s3.columns[0] (same name "x")'],
    ]);
  });

  it('refuses reserved DLQ header names', () => {
    const problems = lintText(VALID + '  headers:\n    sluice.dlq.reason: x\n');
    expect(problems).toMatchObject([{ path: 'dlq.headers.sluice.dlq.reason', line: 12, column: 5 }]);
  });

  it('requires columns for parquet after a mapping, and unique labels', () => {
    const problems = lintText(
      VALID.replace('output:', 'pipeline:\n  processors:\n    - label: a\n      mapping: \'{"x": 1}\'\n    - label: a\n      filter: "true"\noutput:'),
    );
    expect(problems.map((p) => [p.path, p.line])).toEqual([
      ['pipeline.processors[1].label', 9],
      ['output.s3.columns', 12],
    ]);
    expect(problems[1]!.fix).toMatch(/^declare the mapped fields under columns/);
    expect(lintText(VALID.replace('output:', 'pipeline:\n  processors:\n    - mapping: \'{"x": 1}\'\noutput:').replace('.parquet', '.jsonl\n    format: jsonl'))).toEqual([]);
  });

  it('checks labels and processor items', () => {
    const problems = lintText(VALID.replace('output:', 'pipeline:\n  processors:\n    - label: Bad Label\n      drop: [a]\n    - select: [a]\n      drop: [b]\n    - {}\noutput:'));
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['pipeline.processors[0].label', expect.stringMatching(/lower-case/)],
      ['pipeline.processors[1].drop', 'a processor names exactly one component; this one also names "select"'],
      ['pipeline.processors[2]', 'names no processor'],
    ]);
  });

  it('requires username and password for SASL plain/scram', () => {
    const problems = lintText(VALID.replace('consumer_group: g', 'consumer_group: g\n    sasl:\n      mechanism: scram-sha-512'));
    expect(problems).toMatchObject([{ path: 'input.kafka.sasl', line: 5, message: 'sasl mechanism scram-sha-512 needs a username and a password' }]);
  });

  it('names the environment variable a bad default came from, at the key that lacks the value', () => {
    const problems = lintText(VALID, { SLUICE_KAFKA_SASL_MECHANISM: 'kerberos' });
    expect(problems).toMatchObject([{ path: 'input.kafka.sasl.mechanism', line: 2, column: 3 }]);
    expect(problems[0]!.message).toBe('unknown value "kerberos" (from environment variable SLUICE_KAFKA_SASL_MECHANISM)');
  });

  it('skips the expression check when no expression library is given', () => {
    const text = VALID.replace('output:', 'pipeline:\n  processors:\n    - filter: "a +\n        "\noutput:');
    expect(lintPipelineText(text, 'p.yaml', { env: { ...SERVERS_ENV }, expressions: null }).problems).toEqual([]);
  });

  it('reports an unreadable file', () => {
    expect(lintPipelineFile('/nonexistent/p.yaml')).toMatchObject([{ file: '/nonexistent/p.yaml', line: 1, column: 1, message: expect.stringMatching(/cannot read/) }]);
  });
});

describe('sluice lint', () => {
  // The command reads the shell's environment: give it the servers' variables a stack's
  // env file sets, so the result does not depend on the shell the tests run in.
  beforeEach(() => {
    for (const [name, value] of Object.entries(SERVERS_ENV)) vi.stubEnv(name, value);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  async function run(args: string[]): Promise<{ out: string[]; err: string[]; exitCode: typeof process.exitCode }> {
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
    vi.spyOn(console, 'error').mockImplementation((s: string) => void err.push(s));
    await lintCommand().parseAsync(args, { from: 'user' });
    return { out, err, exitCode: process.exitCode };
  }

  it('prints ok per clean file and exits 0', async () => {
    const r = await run([join(EXPORTS, 'lake.yaml')]);
    expect(r.out).toEqual([`${join(EXPORTS, 'lake.yaml')}: ok`]);
    expect(r.exitCode ?? 0).toBe(0);
  });

  it('prints file:line:col path: message (fix) per problem and exits 1', async () => {
    const bad = tempFile('bad.yaml', VALID.replace('period', 'x').replace('dlq:', 'output2: {}\ndlq:'));
    const r = await run([join(EXPORTS, 'lake.yaml'), bad]);
    expect(r.out).toEqual([`${join(EXPORTS, 'lake.yaml')}: ok`, `${bad}:9:1 output2: unknown section "output2" (did you mean "output"?)`]);
    expect(r.err.at(-1)).toBe('sluice lint: 1 problem');
    expect(r.exitCode).toBe(1);
  });
});
