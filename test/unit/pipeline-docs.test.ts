import { afterEach, describe, expect, it, vi } from 'vitest';
import { docsCommand } from '../../processors/cli/commands/docs.js';
import { ALL_COMPONENTS, INPUTS, OUTPUTS, PROCESSORS, SECTIONS } from '../../processors/core/pipeline/components/index.js';
import { renderComponentDocs, UnknownComponentError } from '../../processors/core/pipeline/docs.js';
import type { AnyField } from '../../processors/core/pipeline/fields.js';
import { PIPELINE_SECTIONS } from '../../processors/core/pipeline/pipeline.js';

/** Every documented field path of a component, as docs name them (`batching.period`, `columns[].name`). */
function fieldPaths(field: AnyField, name: string): string[] {
  const own = name === '' ? [] : [name];
  if (field.kind === 'object' && field.fields) return [...own, ...Object.entries(field.fields).flatMap(([k, f]) => fieldPaths(f, name ? `${name}.${k}` : k))];
  if (field.kind === 'list' && field.item?.kind === 'object' && field.item.fields) {
    return [...own, ...Object.entries(field.item.fields).flatMap(([k, f]) => fieldPaths(f, `${name}[].${k}`))];
  }
  return own;
}

describe('renderComponentDocs', () => {
  const docs = renderComponentDocs();

  it('documents every component under its kind', () => {
    expect(ALL_COMPONENTS.map((c) => c.name)).toEqual(['kafka', 'stdin', 'generate', 'http_server', 'mapping', 'filter', 'dedupe', 'select', 'drop', 'log', 's3', 'sql', 'kafka', 'switch', 'file', 'stdout', 'dlq', 'http', 'logger']);
    const order = ['## Inputs', ...INPUTS.map((c) => `### ${c.name}`), '## Processors', ...PROCESSORS.map((c) => `### ${c.name}`), '## Outputs', ...OUTPUTS.map((c) => `### ${c.name}`), '## Sections', ...SECTIONS.map((c) => `### ${c.name}`)];
    // Each heading after the one before it (kafka is both an input and an output heading).
    let from = 0;
    const positions = order.map((h) => (from = docs.indexOf(`\n${h}\n`, from + 1)));
    expect(positions.every((p) => p > 0)).toBe(true);
  });

  it('documents every field with its type, default and description', () => {
    for (const spec of ALL_COMPONENTS) {
      const section = renderComponentDocs({ component: spec.name });
      expect(section).toContain(spec.summary);
      for (const path of fieldPaths(spec.config, spec.config.kind === 'object' ? '' : spec.name)) {
        expect(section, `${spec.name}: ${path}`).toMatch(new RegExp(`^\\| \`${path.replace(/[.[\]]/g, '\\$&')}\` \\| [^|]`, 'm'));
      }
    }
    expect(docs).toContain('| `batching.period` | duration | `10s` | Flush a file at the latest');
    expect(docs).toContain('| `brokers` | list of string | `$SLUICE_KAFKA_BROKERS`, else **required** |');
    expect(docs).toContain('| `endpoint` | string | `$SLUICE_S3_ENDPOINT`, else unset |');
    expect(docs).toContain('| `consumer_group` | string | **required** |');
    expect(docs).toContain('| `format` | `parquet` \\| `jsonl` \\| `csv` | `parquet` |');
    expect(docs).toContain('| `compression` | `snappy` \\| `zstd` \\| `none` | `snappy` for parquet, `none` otherwise |');
  });

  it('hides secret defaults', () => {
    expect(docs).toContain('| `credentials.secret_access_key` | string | `$AWS_SECRET_ACCESS_KEY` |');
    expect(docs).not.toContain('sluice-secret-key');
  });

  it('documents the file layout, ${ENV} and the path template grammar', () => {
    for (const name of Object.keys(PIPELINE_SECTIONS)) expect(docs).toMatch(new RegExp(`^\\| \`${name}\` \\| (yes|no) \\|`, 'm'));
    expect(docs).toContain('## Environment variables');
    expect(docs).toContain('variable := "topic" | "partition" | "first_offset" | "last_offset"');
  });

  it('renders one component, and names the near one for an unknown name', () => {
    const s3 = renderComponentDocs({ component: 's3' });
    expect(s3.startsWith('# s3\n')).toBe(true);
    expect(s3).not.toContain('### kafka');
    // kafka is an input and an output: the bare name shows both, `<kind>.kafka` one.
    const kafka = renderComponentDocs({ component: 'kafka' });
    expect(kafka).toContain('*input* — Consumes Kafka topics');
    expect(kafka).toContain('*output* — Produces records to a Kafka topic');
    const output = renderComponentDocs({ component: 'output.kafka' });
    expect(output.startsWith('# kafka\n\n*output*')).toBe(true);
    expect(output).not.toContain('*input*');
    expect(output).toContain('| `transactional_id_prefix` | string |');
    expect(() => renderComponentDocs({ component: 'kafak' })).toThrow(UnknownComponentError);
    expect(() => renderComponentDocs({ component: 'kafak' })).toThrow('unknown component "kafak": did you mean "kafka"?');
  });
});

describe('sluice docs', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints the whole reference or one component', async () => {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
    await docsCommand().parseAsync([], { from: 'user' });
    expect(out).toBe(renderComponentDocs());
    out = '';
    await docsCommand().parseAsync(['--component', 'dedupe'], { from: 'user' });
    expect(out).toBe(renderComponentDocs({ component: 'dedupe' }));
  });
});
