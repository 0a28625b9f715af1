import { describe, expect, it } from 'vitest';
import { parsePathTemplate } from '../../processors/core/pipeline/path-template.js';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { jsonataLanguage } from '../../processors/core/pipeline/expressions.js';
import { formatProblem } from '../../processors/core/pipeline/problems.js';
import { KafkaOutput, renderTopic, toJson } from '../../processors/export/outputs/kafka.js';
import { SERVERS_ENV } from '../support/servers.js';

/** The kafka output's pure parts (value JSON, topic rendering), its lint rules and its producers' lifecycle with a fake client; the transactions are proved in test/integration/export-kafka.test.ts. */

/** A fake kafkajs client: records which transactional producers are open. */
function fakeKafka() {
  const open = new Set<string>();
  const kafka = {
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      listTopics: async () => ['out'],
      fetchOffsets: async ({ topics }: { topics: string[] }) => topics.map((topic) => ({ topic, partitions: [0, 1, 2].map((partition) => ({ partition, offset: '5' })) })),
    }),
    producer: ({ transactionalId }: { transactionalId: string }) => ({
      connect: async () => void open.add(transactionalId),
      disconnect: async () => void open.delete(transactionalId),
      transaction: async () => ({ abort: async () => undefined }),
    }),
  };
  return { open, kafka };
}

const file = (output: string, input = 'topics: [sluice.agent-events]') => `input:
  kafka:
    ${input}
    consumer_group: g
output:
  kafka:
${output
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
dlq:
  topic: sluice.agent-events.export.dlq
`;

function lint(text: string): string[] {
  return lintPipelineText(text, 'p.yaml', { env: { ...SERVERS_ENV }, expressions: jsonataLanguage() }).problems.map(formatProblem);
}

describe('kafka output value and topic', () => {
  it('writes 64-bit integers beyond 2^53 exactly, bytes as base64, and leaves strings that look like markers alone', () => {
    expect(toJson({ a: 2n ** 60n, b: [1n, -5n], c: 'x', d: Buffer.from('hi'), e: null })).toBe('{"a":1152921504606846976,"b":[1,-5],"c":"x","d":"aGk=","e":null}');
    expect(toJson({ s: '\uE000abc:12' })).toBe('{"s":"\uE000abc:12"}');
    expect(toJson(undefined)).toBe('null');
  });

  it('renders ${topic}, ${partition} and ${data.x}, and refuses a missing field or a bad name with topic_error', () => {
    const t = parsePathTemplate('${topic}.${data.kind}.p${partition}').template;
    expect(renderTopic(t, { topic: 'in', partition: 3, value: { kind: 'deposit_made' } })).toBe('in.deposit_made.p3');
    expect(() => renderTopic(t, { topic: 'in', partition: 3, value: {} })).toThrow(/data.kind is absent/);
    expect(() => renderTopic(t, { topic: 'in', partition: 3, value: { kind: 'a/b' } })).toThrow(/is not a topic name/);
    try {
      renderTopic(t, { topic: 'in', partition: 3, value: { kind: { x: 1 } } });
      expect.unreachable();
    } catch (error) {
      expect((error as { reason: string }).reason).toBe('topic_error');
    }
  });
});

describe('kafka output lint', () => {
  it('accepts a topic with a key, headers and avro through the registry', () => {
    expect(lint(file('topic: sluice.agent-events.json\nkey: agent_id\nheaders:\n  event_type: event_type'))).toEqual([]);
    expect(lint(file('topic: ${topic}.${data.event_type}\nvalue:\n  format: avro\n  subject: x-value\n  schema_file: x.avsc'))).toEqual([]);
  });

  it('names the line and the fix of a bad block', () => {
    expect(lint(file('topic: out.${first_offset}'))).toEqual(['p.yaml:7:16 output.kafka.topic: ${first_offset} cannot be part of a topic name (use ${topic}, ${partition} or ${data.<field>})']);
    expect(lint(file('topic: out\nkey: $uppercse(agent_id)'))).toEqual([expect.stringMatching(/^p\.yaml:8:10 output\.kafka\.key: JSONata: unknown function \$uppercse.*did you mean/)]);
    expect(lint(file('topic: out\nvalue:\n  format: avro'))).toEqual([
      'p.yaml:8:5 output.kafka.value.subject: format avro needs the subject of its schema (add subject: <topic>-value)',
      'p.yaml:8:5 output.kafka.value.schema_file: format avro needs the schema file (add schema_file: path/to/schema.avsc (relative to the pipeline file))',
    ]);
    expect(lint(file('topic: sluice.agent-events'))).toEqual([
      'p.yaml:7:12 output.kafka.topic: the output topic sluice.agent-events is also consumed by input.kafka: every record would loop back in (write to a topic of its own, e.g. <input topic>.json)',
    ]);
    expect(lint(file('topic: sluice.agent-events.export.dlq'))).toEqual([
      "p.yaml:7:12 output.kafka.topic: the output topic sluice.agent-events.export.dlq is the pipeline's DLQ topic (write to a topic of its own, or move dlq.topic)",
    ]);
    expect(lint(file('topic: out\nbatching:\n  perod: 1s'))).toEqual([expect.stringMatching(/^p\.yaml:9:7 output\.kafka\.batching\.perod: unknown field "perod" \(did you mean "period"/)]);
  });
});

describe('switch output lint', () => {
  const s3 = (prefix: string) => `s3:\n      bucket: sluice-lake\n      path: ${prefix}/\${topic}+\${partition}+\${first_offset}.jsonl\n      format: jsonl`;
  const kafka = (topic: string) => `kafka:\n      topic: ${topic}`;
  const switchOf = (...cases: string[]) => `switch:\n  cases:\n${cases.map((c) => c.split('\n').map((l, i) => (i === 0 ? `    - ${l}` : `      ${l}`)).join('\n')).join('\n')}`;

  it('accepts idempotent cases with one case that commits the offsets', () => {
    expect(lint(file(switchOf(`check: event_type = "deposit_made"\ncontinue: true\noutput:\n  ${kafka('deposits')}`, `output:\n  ${s3('all')}`)).replace('  kafka:\n    switch', '  switch'))).toEqual([]);
  });

  it('refuses a second case that commits the offsets itself, with the fix, and a catch-all case before others', () => {
    const text = file(switchOf(`check: event_type = "deposit_made"\noutput:\n  ${kafka('deposits')}`, `output:\n  ${kafka('others')}`)).replace('  kafka:\n    switch', '  switch');
    expect(lint(text)).toEqual([
      'p.yaml:13:13 output.switch.cases[1].output.kafka: a second output that commits the input offsets itself (kafka; case [0] is kafka): two transactions cannot commit one batch atomically (merge the kafka cases into one with an interpolated topic, e.g. topic: events.${data.event_type}, or run a second pipeline)',
    ]);
    const catchAll = file(switchOf(`output:\n  ${s3('a')}`, `check: agent_id != ""\noutput:\n  ${s3('b')}`)).replace('  kafka:\n    switch', '  switch');
    expect(lint(catchAll)).toEqual([expect.stringMatching(/^p\.yaml:8:11 output\.switch\.cases\[0\]: case \[0\] has no check, so it takes every record .*\(add a check, set continue: true, or move it last\)$/)]);
    expect(lint(file(switchOf(`check: $uppercse(x) = "A"\noutput:\n  ${s3('a')}`)).replace('  kafka:\n    switch', '  switch'))).toEqual([expect.stringMatching(/^p\.yaml:8:\d+ output\.switch\.cases\[0\]\.check: JSONata: unknown function \$uppercse/)]);
    expect(lint(file(switchOf(`output:\n  switch:\n    cases: []`)).replace('  kafka:\n    switch', '  switch'))).toEqual([expect.stringMatching(/^p\.yaml:9:13 output\.switch\.cases\[0\]\.output\.switch: unknown output "switch"/)]);
  });
});

describe('kafka output producers', () => {
  it('opens a transactional producer per assigned partition and closes those a rebalance takes away', async () => {
    const { open, kafka } = fakeKafka();
    const result = lintPipelineText(file('topic: out'), 'p.yaml', { env: { ...SERVERS_ENV }, expressions: jsonataLanguage() });
    expect(result.problems).toEqual([]);
    const config = result.config!;
    const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined } as never;
    const output = new KafkaOutput((config.output as unknown as { config: never }).config, { pipeline: config, logger: silent, metrics: {} as never, kafka: kafka as never });
    await output.connect();
    expect(await output.committedOffsets('sluice.agent-events', [0, 1, 2])).toEqual(new Map([[0, 5n], [1, 5n], [2, 5n]]));
    expect([...open].sort()).toEqual(['g-sluice.agent-events-0', 'g-sluice.agent-events-1', 'g-sluice.agent-events-2']);
    output.assigned({ 'sluice.agent-events': [1] });
    await new Promise((r) => setImmediate(r));
    expect([...open]).toEqual(['g-sluice.agent-events-1']);
    await output.close();
    expect([...open]).toEqual([]);
  });
});
