import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { jsonataLanguage } from '../../processors/core/pipeline/expressions.js';
import { JSONATA_FUNCTIONS, KNOWN_FUNCTIONS, arityOf, checkCalls } from '../../processors/core/pipeline/jsonata-functions.js';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { formatProblem } from '../../processors/core/pipeline/problems.js';
import { SERVERS_ENV } from '../support/servers.js';

const calls = (text: string) => checkCalls(jsonata(text).ast());

describe('the JSONata function catalogue', () => {
  it.each(Object.entries(JSONATA_FUNCTIONS))('$%s has the signature the installed jsonata defines', async (name, signature) => {
    const fn = (await jsonata(`$${name}`).evaluate({})) as { signature?: { definition?: string } } | undefined;
    expect(fn?.signature?.definition).toBe(signature);
  });

  it('reads arities from signatures: optional, variadic, context and subtypes', () => {
    expect(arityOf('substring', '<s-nn?:s>')).toEqual({ min: 1, max: 3, usage: '$substring(string, number, number?)' });
    expect(arityOf('match', '<s-f<s:o>n?:a<o>>')).toMatchObject({ min: 1, max: 3 });
    expect(arityOf('zip', '<a+>')).toMatchObject({ min: 1, max: Infinity });
    expect(arityOf('random', '<:n>')).toMatchObject({ min: 0, max: 0 });
    expect(arityOf('contains', '<s-(sf):b>')).toEqual({ min: 1, max: 2, usage: '$contains(string, string|function)' });
    expect(KNOWN_FUNCTIONS.get('exists')).toMatchObject({ min: 1, max: 1 });
  });
});

describe('checkCalls', () => {
  it('names an unknown function at its $ with the closest known one', () => {
    expect(calls('{"a": $uppercse(x)}')).toEqual([{ offset: 6, message: 'unknown function $uppercse', fix: 'did you mean $uppercase? ($uppercase(string))' }]);
  });

  it('finds a wrong number of arguments, counting the left side of ~>', () => {
    expect(calls('$substring(a, 1, 2, 3)')[0]).toMatchObject({ offset: 0, message: '$substring takes 1 to 3 arguments, not 4' });
    expect(calls('$exists()')[0]?.message).toBe('$exists takes 1 argument, not 0');
    expect(calls('a ~> $substring(1, 2, 3)')[0]?.message).toBe('$substring takes 1 to 3 arguments, not 4');
    expect(calls('a ~> $substring(1, 2)')).toEqual([]);
  });

  it('accepts context arguments, partial application, and functions the expression binds', () => {
    expect(calls('a.$uppercase()')).toEqual([]);
    expect(calls('$substring(?, 1)')).toEqual([]);
    expect(calls('($f := function($a, $b) { $a & $b }; $f(1, 2, 3))')).toEqual([]);
    expect(calls('$map(xs, function($v, $i) { $v })')).toEqual([]);
    expect(calls('$now()')).toEqual([]);
  });

  it('accepts every call in the shipped lake mapping', () => {
    expect(calls('($p := data.*; {"t": $substringAfter(type, "x."), "s": $decodeUrlComponent($substringAfter(source, "/c/"))})')).toEqual([]);
  });
});

describe('sluice lint with the function check', () => {
  const pipeline = (mapping: string) => `input:
  kafka:
    topics: [sluice.agent-events]
    consumer_group: g
pipeline:
  processors:
    - mapping: |
        {
${mapping}
        }
output:
  s3:
    bucket: sluice-lake
    path: t/\${topic}+\${partition}+\${first_offset}.jsonl
    format: jsonl
dlq:
  topic: sluice.agent-events.export.dlq
`;
  const lint = (text: string) => lintPipelineText(text, 'p.yaml', { env: { ...SERVERS_ENV }, expressions: jsonataLanguage()! }).problems.map(formatProblem);

  it('reports $uppercse(x) with file:line:col and "did you mean $uppercase"', () => {
    expect(lint(pipeline('          "id": id,\n          "t": $uppercse(x)'))).toEqual([
      'p.yaml:10:16 pipeline.processors[0].mapping: JSONata: unknown function $uppercse (did you mean $uppercase? ($uppercase(string)))',
    ]);
  });

  it('reports a wrong arity with file:line:col', () => {
    expect(lint(pipeline('          "t": $substringAfter(a, "b", "c")'))).toEqual([
      'p.yaml:9:16 pipeline.processors[0].mapping: JSONata: $substringAfter takes 1 to 2 arguments, not 3 (call it as $substringAfter(string, string) (a trailing ? is optional; a first argument left out is the context value))',
    ]);
  });
});
