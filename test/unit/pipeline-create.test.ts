import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../processors/core/pipeline/create.js';
import { jsonataLanguage } from '../../processors/core/pipeline/expressions.js';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { formatProblem } from '../../processors/core/pipeline/problems.js';
import { SERVERS_ENV } from '../support/servers.js';

const lint = (text: string) => lintPipelineText(text, 'created.yaml', { env: { ...SERVERS_ENV }, expressions: jsonataLanguage()! }).problems.map(formatProblem);

describe('sluice create', () => {
  it.each(['kafka,mapping,s3', 'kafka,s3', 'kafka,filter,mapping,dedupe,select,drop,s3'])('%s prints a commented pipeline that lints clean', (list) => {
    const text = createPipeline(list);
    expect(text).toMatch(/^# A Sluice export pipeline: /);
    expect(text).toContain('input:\n  kafka:');
    expect(text).toContain('output:\n  s3:');
    expect(lint(text)).toEqual([]);
  });

  it('puts the processors in the order named', () => {
    const text = createPipeline('kafka,dedupe,mapping,s3');
    expect(text.indexOf('- dedupe:')).toBeGreaterThan(0);
    expect(text.indexOf('- dedupe:')).toBeLessThan(text.indexOf('- mapping:'));
  });

  it('names an unknown component with the Redpanda Connect hint or the closest name', () => {
    expect(() => createPipeline('kafka,mapping,aws_s3')).toThrow('unknown output "aws_s3" (the last name is the output): Redpanda Connect\'s `aws_s3` is `s3` here');
    expect(() => createPipeline('kafka,mappin,s3')).toThrow('unknown processor "mappin" (names between are processors): did you mean "mapping"?');
    expect(() => createPipeline('kafka')).toThrow('name at least an input and an output');
  });
});
