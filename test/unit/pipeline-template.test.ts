import { describe, expect, it } from 'vitest';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import {
  eventTimeMillis,
  objectKeyProblems,
  parsePathTemplate,
  renderPathTemplate,
  TemplateValueError,
  type PathTemplate,
} from '../../processors/core/pipeline/path-template.js';
import { SERVERS_ENV } from '../support/servers.js';

const LAKE_PATH = 'lake/agent_events/event_type=${data.event_type}/dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet';

function parsed(text: string): PathTemplate {
  const { template, errors } = parsePathTemplate(text);
  expect(errors).toEqual([]);
  return template;
}

function errorsOf(text: string) {
  const { template, errors } = parsePathTemplate(text);
  return [...errors, ...objectKeyProblems(template)];
}

describe('path template grammar', () => {
  it('parses Kafka metadata, record fields and time formats', () => {
    expect(parsed(LAKE_PATH).parts).toEqual([
      { kind: 'text', text: 'lake/agent_events/event_type=', offset: 0 },
      { kind: 'field', path: ['event_type'], offset: 29 },
      { kind: 'text', text: '/dt=', offset: 47 },
      { kind: 'time', format: [{ token: 'yyyy' }, { text: '-' }, { token: 'MM' }, { text: '-' }, { token: 'dd' }], offset: 51 },
      { kind: 'text', text: '/', offset: 69 },
      { kind: 'kafka', name: 'topic', offset: 70 },
      { kind: 'text', text: '+', offset: 78 },
      { kind: 'kafka', name: 'partition', offset: 79 },
      { kind: 'text', text: '+', offset: 91 },
      { kind: 'kafka', name: 'first_offset', offset: 92 },
      { kind: 'text', text: '.parquet', offset: 107 },
    ]);
    expect(objectKeyProblems(parsed(LAKE_PATH))).toEqual([]);
  });

  it('reads nested fields and $${ as a literal', () => {
    expect(parsed('a/${data.payload.kind}/$${x}/${topic}+${partition}+${first_offset}').parts.slice(0, 3)).toEqual([
      { kind: 'text', text: 'a/', offset: 0 },
      { kind: 'field', path: ['payload', 'kind'], offset: 2 },
      { kind: 'text', text: '/${x}/', offset: 22 },
    ]);
  });

  it('rejects unknown variables, suggesting the near one or data.<field>', () => {
    expect(errorsOf('x/${partiton}/${topic}+${partition}+${first_offset}')).toEqual([{ offset: 2, message: 'unknown variable "${partiton}"', fix: 'did you mean ${partition}?' }]);
    expect(errorsOf('x/${event_type}/${topic}+${partition}+${first_offset}')[0]).toMatchObject({ offset: 2, message: 'unknown variable "${event_type}"', fix: expect.stringMatching(/^record fields are written \$\{data\.event_type\}/) });
    expect(errorsOf('x/${now:yyyy}/${topic}+${partition}+${first_offset}')[0]!.message).toBe('unknown variable "${now:yyyy}"');
    expect(errorsOf('x/${data.a-b}/${topic}+${partition}+${first_offset}')[0]!.message).toBe('"${data.a-b}" is not a field path');
  });

  it('checks time formats token by token', () => {
    expect(errorsOf('dt=${time:YYYY-MM-DD}/${topic}+${partition}+${first_offset}')).toEqual([
      expect.objectContaining({ offset: 10, message: 'unknown time format token "YYYY" in "YYYY-MM-DD"', fix: expect.stringMatching(/^did you mean "yyyy"\?/) }),
      expect.objectContaining({ offset: 18, message: 'unknown time format token "DD" in "YYYY-MM-DD"', fix: expect.stringMatching(/^did you mean "dd"\?/) }),
    ]);
    expect(errorsOf('dt=${time}/${topic}+${partition}+${first_offset}')[0]).toMatchObject({ message: '${time} needs a format' });
    expect(errorsOf('dt=${time:yyyy/MM/dd/HH}/${topic}+${partition}+${first_offset}')).toEqual([]);
  });

  it('reports an unclosed ${', () => {
    expect(errorsOf('a/${topic')[0]).toMatchObject({ offset: 2, message: 'unclosed "${"' });
  });
});

describe('object key rules', () => {
  it('require topic, partition and first_offset, with the fix', () => {
    expect(errorsOf('events/${data.event_type}/${partition}.parquet')).toEqual([
      {
        offset: 0,
        message:
          'the object key lacks ${topic} and ${first_offset}: keys must be deterministic (topic, partition, first offset) so a replay rewrites the same objects instead of duplicating them',
        fix: 'end the path with ${topic}+${partition}+${first_offset}.parquet',
      },
    ]);
    expect(errorsOf('events/x.parquet')[0]!.message).toMatch(/lacks \$\{topic\}, \$\{partition\} and \$\{first_offset\}/);
  });

  it('reject ${last_offset}, which a replay would cut elsewhere', () => {
    expect(errorsOf('e/${topic}+${partition}+${first_offset}-${last_offset}.parquet')).toMatchObject([{ offset: 40, message: expect.stringMatching(/where a batch was cut/) }]);
  });

  it('reject malformed keys', () => {
    expect(errorsOf('/e//${topic}+${partition}+${first_offset}/').map((e) => [e.offset, e.message])).toEqual([
      [0, 'an S3 object key must not start with "/"'],
      [2, 'empty path segment ("//")'],
      [41, 'the key ends with "/", which names a folder, not an object'],
    ]);
    expect(errorsOf('a/../${topic}+${partition}+${first_offset}')[0]!.message).toBe('".." is not a valid key segment');
  });
});

describe('rendering', () => {
  const row = { event_id: 'e1', event_type: 'deposit_made', occurred_at: 1767225600000000 };

  it('renders the lake key from a row, its Kafka position and its event time (UTC)', () => {
    const key = renderPathTemplate(parsed(LAKE_PATH), {
      topic: 'sluice.agent-events',
      partition: 3,
      firstOffset: '1200',
      record: row,
      eventTimeMs: eventTimeMillis(row.occurred_at, 'unix_us'),
    });
    expect(key).toBe('lake/agent_events/event_type=deposit_made/dt=2026-01-01/sluice.agent-events+3+1200.parquet');
  });

  it('puts an event one microsecond before midnight in the previous day', () => {
    const t = parsed('${time:yyyy-MM-dd HH:mm:ss}');
    expect(renderPathTemplate(t, { topic: 't', partition: 0, firstOffset: 0, record: {}, eventTimeMs: eventTimeMillis(1767225599999999, 'unix_us') })).toBe('2025-12-31 23:59:59');
    expect(renderPathTemplate(t, { topic: 't', partition: 0, firstOffset: 0, record: {}, eventTimeMs: eventTimeMillis(1767225600000000n, 'unix_us') })).toBe('2026-01-01 00:00:00');
  });

  it('reads every time encoding', () => {
    expect(eventTimeMillis(1767225600, 'unix_s')).toBe(1767225600000);
    expect(eventTimeMillis(1767225600123, 'unix_ms')).toBe(1767225600123);
    expect(eventTimeMillis('2026-01-01T00:00:00.5Z', 'rfc3339')).toBe(1767225600500);
    expect(() => eventTimeMillis('yesterday', 'rfc3339')).toThrow(TemplateValueError);
    expect(() => eventTimeMillis(null, 'unix_us')).toThrow(TemplateValueError);
  });

  it('escapes field values as Hive does and renders null as its default partition', () => {
    const t = parsed('${data.a}/${data.b.c}/${topic}+${partition}+${first_offset}');
    expect(renderPathTemplate(t, { topic: 't', partition: 1, firstOffset: 9n, record: { a: 'x/y=z', b: { c: null } } })).toBe('x%2Fy%3Dz/__HIVE_DEFAULT_PARTITION__/t+1+9');
    expect(() => renderPathTemplate(t, { topic: 't', partition: 1, firstOffset: 9, record: { a: { nested: 1 } } })).toThrow(TemplateValueError);
  });
});

describe('path templates in the s3 output', () => {
  const file = (s3: string, extra = '') => `input:
  kafka:
    topics: [sluice.agent-events]
    consumer_group: g
${extra}output:
  s3:
    bucket: sluice-lake
${s3}
dlq:
  topic: sluice.agent-events.export.dlq
`;
  const lint = (text: string) => lintPipelineText(text, 'p.yaml', { env: { ...SERVERS_ENV }, expressions: null }).problems;

  it('points at the variable inside the value', () => {
    const problems = lint(file('    path: e/${evnt}/${topic}+${partition}+${first_offset}.parquet'));
    expect(problems).toMatchObject([{ path: 'output.s3.path', line: 8, column: 13, message: 'unknown variable "${evnt}"' }]);
  });

  it('needs time_field for ${time:...}', () => {
    const problems = lint(file('    path: dt=${time:yyyy-MM-dd}/${topic}+${partition}+${first_offset}.parquet'));
    expect(problems).toMatchObject([{ path: 'output.s3.path', line: 8, column: 14, fix: 'set time_field to the record field holding the event time, e.g. time_field: occurred_at' }]);
  });

  it('checks ${data.*} and time_field against declared columns', () => {
    const columns = '    columns:\n      - { name: event_type, type: string }\n      - { name: occurred_at, type: timestamp_ms }\n';
    const problems = lint(file(`    path: \${data.evnt_type}/\${topic}+\${partition}+\${first_offset}.parquet\n${columns}    time_field: occured_at`));
    expect(problems.map((p) => [p.path, p.line, p.column, p.message, p.fix])).toEqual([
      ['output.s3.path', 8, 11, '${data.evnt_type} names no column', 'did you mean "event_type"?'],
      ['output.s3.time_field', 12, 17, '"occured_at" is not a column', 'did you mean "occurred_at"?'],
    ]);
    const conflict = lint(file(`    path: \${topic}+\${partition}+\${first_offset}.parquet\n${columns}    time_field: occurred_at\n    time_format: unix_us`));
    expect(conflict).toMatchObject([{ path: 'output.s3.time_format', message: 'time_format unix_us contradicts column occurred_at (timestamp_ms)', fix: 'set time_format: unix_ms, or remove it' }]);
    const ok = lintPipelineText(file(`    path: \${topic}+\${partition}+\${first_offset}.parquet\n${columns}    time_field: occurred_at`), 'p.yaml', { env: { ...SERVERS_ENV }, expressions: null });
    expect(ok.config!.output.config.time_format).toBe('unix_ms');
  });

  it('matches the extension to the format and compression to parquet', () => {
    const problems = lint(file('    path: ${topic}+${partition}+${first_offset}.parquet\n    format: jsonl\n    compression: zstd'));
    expect(problems.map((p) => [p.path, p.message, p.fix])).toEqual([
      ['output.s3.path', 'the key ends in .parquet but format is jsonl', 'end the path with .jsonl, or set format: parquet'],
      ['output.s3.compression', 'compression zstd applies to parquet only, and format is jsonl', 'remove compression, or set format: parquet'],
    ]);
  });
});
