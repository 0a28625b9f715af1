import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsonataLanguage } from '../../processors/core/pipeline/expressions.js';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { formatProblem } from '../../processors/core/pipeline/problems.js';
import { REDPANDA_COMPONENTS, REDPANDA_FIELDS } from '../../processors/core/pipeline/redpanda-names.js';
import { SERVERS_ENV } from '../support/servers.js';

const lint = (text: string) => lintPipelineText(text, 'rpc.yaml', { env: { ...SERVERS_ENV }, expressions: jsonataLanguage()! }).problems.map(formatProblem);

/** A Redpanda Connect config as a user would paste it. */
const REDPANDA_CONFIG = `input:
  kafka:
    addresses: [localhost:9092]
    topics: [sluice.agent-events]
    consumer_group: g
pipeline:
  processors:
    - bloblang: |
        root.id = this.id
output:
  aws_s3:
    bucket: sluice-lake
    path: 'x/\${! meta("kafka_topic") }.jsonl'
    format: jsonl
dlq:
  topic: sluice.agent-events.export.dlq
`;

describe('lint hints for Redpanda Connect names', () => {
  it('names the Sluice equivalent of addresses, bloblang and aws_s3, at their lines', () => {
    expect(lint(REDPANDA_CONFIG)).toEqual([
      "rpc.yaml:3:5 input.kafka.addresses: unknown field \"addresses\" (Redpanda Connect's `addresses` is `brokers` here)",
      "rpc.yaml:8:7 pipeline.processors[0].bloblang: unknown processor \"bloblang\" (Redpanda Connect's `bloblang` is `mapping` here (mappings are JSONata here, not Bloblang))",
      "rpc.yaml:11:3 output.aws_s3: unknown output \"aws_s3\" (Redpanda Connect's `aws_s3` is `s3` here)",
    ]);
  });

  it('turns ${! meta("kafka_topic") } in a path into ${topic}', () => {
    const problems = lint(REDPANDA_CONFIG.replace('aws_s3', 's3').replace('addresses', 'brokers').replace('bloblang: |\n        root.id = this.id', 'mapping: \'{"id": id}\''));
    expect(problems.filter((p) => p.includes('Redpanda Connect'))).toEqual([
      'rpc.yaml:12:14 output.s3.path: "${! meta("kafka_topic") }" is Redpanda Connect interpolation (Bloblang) (Sluice\'s template for it is ${topic})',
    ]);
  });

  it('says a Bloblang mapping under mapping: is not JSONata', () => {
    const problems = lint(REDPANDA_CONFIG.replace('aws_s3', 's3').replace('addresses', 'brokers').replace('bloblang', 'mapping').replace('${! meta("kafka_topic") }', '${topic}+${partition}+${first_offset}'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^rpc\.yaml:8:\d+ pipeline\.processors\[0\]\.mapping: the mapping compares `root`.*this looks like Bloblang/);
  });

  it('every hint is in the migration table of the docs', () => {
    const doc = readFileSync('docs/redpanda-connect-migration.md', 'utf8');
    for (const r of [...REDPANDA_COMPONENTS, ...REDPANDA_FIELDS]) expect(doc, r.from).toContain(`\`${r.from}\``);
  });
});
