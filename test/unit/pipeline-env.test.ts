import { kafkaInputOf } from '../../processors/core/pipeline/input-config.js';
import { describe, expect, it } from 'vitest';
import { interpolateEnv } from '../../processors/core/pipeline/interpolation.js';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { SERVERS_ENV } from '../support/servers.js';

const BASE = `input:
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

function load(text: string, env: Record<string, string>) {
  return lintPipelineText(text, 'p.yaml', { env: { ...SERVERS_ENV, ...env }, expressions: null });
}

describe('interpolateEnv', () => {
  it('substitutes set variables and defaults, and keeps offsets into the original text', () => {
    const { result, issues } = interpolateEnv('a/${A}/${B:bee}/${C:}/z', { A: 'xyz' }, 'plain');
    expect(issues).toEqual([]);
    expect(result.text).toBe('a/xyz/bee//z');
    expect(result.rawOffset(0)).toBe(0);
    expect(result.rawOffset(3)).toBe(2); // inside the value of ${A}: its `${`
    expect(result.rawOffset(result.text.indexOf('/z'))).toBe('a/${A}/${B:bee}/${C:}'.length);
  });

  it('uses the default for an empty variable and keeps colons in defaults', () => {
    expect(interpolateEnv('${B:localhost:9092}', { B: '' }, 'plain').result.text).toBe('localhost:9092');
    expect(interpolateEnv('${B}', { B: '' }, 'plain').result.text).toBe('');
  });

  it('reports an unset variable without default at its ${', () => {
    const { issues } = interpolateEnv('x-${NOPE}-${ALSO_NOPE}', {}, 'plain');
    expect(issues).toEqual([
      { offset: 2, message: 'environment variable NOPE is not set and ${NOPE} has no default', fix: 'set NOPE, or give a default: ${NOPE:value}' },
      expect.objectContaining({ offset: 10, message: expect.stringMatching(/ALSO_NOPE is not set/) }),
    ]);
  });

  it('unescapes $${ in plain values and keeps it for templates', () => {
    expect(interpolateEnv('$${A}', { A: 'x' }, 'plain').result.text).toBe('${A}');
    expect(interpolateEnv('$${A}', { A: 'x' }, 'template').result.text).toBe('$${A}');
  });

  it('leaves lower-case references to templates and expressions, and rejects them elsewhere', () => {
    expect(interpolateEnv('${topic}/${P:p}', {}, 'template')).toEqual(expect.objectContaining({ issues: [] }));
    expect(interpolateEnv('${topic}/${P:p}', {}, 'template').result.text).toBe('${topic}/p');
    const { issues } = interpolateEnv('${sluice_s3_bucket}', {}, 'plain');
    expect(issues).toEqual([
      {
        offset: 0,
        message: '"${sluice_s3_bucket}" is not an environment variable reference (their names are UPPER_CASE)',
        fix: 'write ${SLUICE_S3_BUCKET} for an environment variable, or $${sluice_s3_bucket} for the literal text',
      },
    ]);
    expect(interpolateEnv('${', {}, 'plain').issues[0]!.message).toBe('unclosed "${"');
    expect(interpolateEnv('${A:${B}}', {}, 'plain').issues[0]!.message).toBe('the default of ${A} holds a reference, which is not supported');
  });
});

describe('${ENV} in pipeline files', () => {
  it('resolves values and defaults, then reads them as the field type', () => {
    const text = BASE.replace('consumer_group: g', 'consumer_group: ${GROUP:export}\n    max_batch_records: ${MAX:500}\n    tls:\n      enabled: ${TLS:false}')
      .replace('bucket: sluice-lake', 'bucket: ${BUCKET:sluice-lake}')
      .replace('dlq:', 'http:\n  port: ${PORT:9470}\ndlq:');
    const { config, problems } = load(text, { MAX: '2000', TLS: 'true', BUCKET: 'other-bucket', GROUP: 'grp' });
    expect(problems).toEqual([]);
    expect(config!.input.config).toMatchObject({ consumer_group: 'grp', max_batch_records: 2000, tls: { enabled: true } });
    expect(config!.output.config.bucket).toBe('other-bucket');
    expect(config!.http.port).toBe(9470);
  });

  it('reports an unset variable without default with its name, line and column', () => {
    const text = BASE.replace('bucket: sluice-lake', 'bucket: lake-${TEAM}-${ENVIRONMENT:dev}');
    const { problems } = load(text, {});
    expect(problems).toEqual([
      {
        file: 'p.yaml',
        line: 7,
        column: 18,
        path: 'output.s3.bucket',
        message: 'environment variable TEAM is not set and ${TEAM} has no default',
        fix: 'set TEAM, or give a default: ${TEAM:value}',
      },
    ]);
    expect(load(text, { TEAM: 'ops' }).config!.output.config.bucket).toBe('lake-ops-dev');
  });

  it('reports an error in an interpolated value at the right place', () => {
    const text = BASE.replace('t/${topic}', '${PREFIX:lake}/${topc}/${topic}');
    const { problems } = load(text, { PREFIX: 'a-much-longer-prefix' });
    expect(problems).toMatchObject([{ path: 'output.s3.path', line: 8, column: 26, message: 'unknown variable "${topc}"', fix: 'did you mean ${topic}?' }]);
  });

  it('defaults connection fields from the same env vars as every processor', () => {
    const { config } = load(BASE, {
      SLUICE_KAFKA_BROKERS: 'b1:9092, b2:9092',
      SLUICE_SCHEMA_REGISTRY_URL: 'http://registry:8081/apis/ccompat/v7',
      SLUICE_S3_ENDPOINT: 'http://minio:9000',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIA',
      AWS_SECRET_ACCESS_KEY: 'secret',
      SLUICE_LOG_LEVEL: 'debug',
      SLUICE_EXPORT_HTTP_PORT: '9999',
    });
    expect(kafkaInputOf(config!)!.brokers).toEqual(['b1:9092', 'b2:9092']);
    expect(kafkaInputOf(config!)!.registry.url).toBe('http://registry:8081/apis/ccompat/v7');
    expect(config!.output.config).toMatchObject({ endpoint: 'http://minio:9000', region: 'eu-west-1', credentials: { access_key_id: 'AKIA', secret_access_key: 'secret' } });
    expect(config!.logger.level).toBe('debug');
    expect(config!.http.port).toBe(9999);
  });

  it('lets the file win over env defaults, and splits comma-separated interpolated brokers', () => {
    const text = BASE.replace('consumer_group: g', 'consumer_group: g\n    brokers: ["${BROKERS}", "c:3"]');
    const { config } = load(text, { BROKERS: 'a:1,b:2', SLUICE_KAFKA_BROKERS: 'ignored:1' });
    expect(kafkaInputOf(config!)!.brokers).toEqual(['a:1', 'b:2', 'c:3']);
  });

  it('names the env var when its value is invalid', () => {
    const { problems } = load(BASE, { SLUICE_KAFKA_BROKERS: 'nohost' });
    expect(problems).toMatchObject([{ path: 'input.kafka.brokers[0]', line: 2, column: 3, message: '"nohost" is not valid here (from environment variable SLUICE_KAFKA_BROKERS)', fix: 'write host:port' }]);
  });

  it('rejects a lower-case reference outside templates, with the fix', () => {
    const { problems } = load(BASE.replace('bucket: sluice-lake', 'bucket: ${sluice_s3_bucket}'), {});
    expect(problems).toMatchObject([{ path: 'output.s3.bucket', line: 7, column: 13, fix: expect.stringMatching(/^write \$\{SLUICE_S3_BUCKET\}/) }]);
  });

  it('interpolates inside expressions, leaving JSONata alone', () => {
    const text = BASE.replace('output:', 'pipeline:\n  processors:\n    - filter: currency = "${BASE_CURRENCY:USD}" and $exists(amount)\noutput:').replace('.parquet', '.jsonl\n    format: jsonl');
    expect(load(text, {}).config!.pipeline.processors[0]).toEqual({ type: 'filter', label: 'filter_0', config: 'currency = "USD" and $exists(amount)' });
  });
});
