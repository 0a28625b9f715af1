import jsonata from 'jsonata';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compileExpression } from '../../processors/export/expressions.js';

/** The compiled fast path must answer exactly what jsonata answers, or hand the record to jsonata. */

const lakeMapping = (parse(readFileSync('connectors/exports/lake.yaml', 'utf8').replace(/\$\{[A-Z_]+:([^}]*)\}/g, '$1')) as { pipeline: { processors: { mapping?: string }[] } }).pipeline.processors[0]!.mapping!;

const deposit = {
  id: 'e-1',
  type: 'io.sluice.agent.deposit_made',
  source: '/channels/agent%20app',
  subject: 'agent-7',
  time: 1_790_000_000_000_000,
  received_at: 1_790_000_000_100_000,
  schema_version: 1,
  correlation_id: null,
  session_id: 's-1',
  data: { 'io.sluice.events.DepositMade': { customer_id: 'c-1', amount_minor: 2n ** 53n + 1n, currency: 'EUR', metadata: '{"a":1}' } },
};
const onboarding = { ...deposit, id: 'e-2', type: 'io.sluice.agent.customer_onboarded', data: { 'io.sluice.events.CustomerOnboarded': { customer_id: 'c-2', metadata: null } } };
const inputs: unknown[] = [
  deposit,
  onboarding,
  { ...deposit, data: null },
  { ...deposit, data: { a: { x: 1 }, b: { x: 2 } } }, // a sequence: jsonata's business
  { ...deposit, subject: ['a', 'b'] },
  { ...deposit, type: 42 },
  { event_id: 'x', n: 3, m: 4.5, s: '', t: 'text', f: false, nested: { deep: { v: 'ok' } }, list: [1, 2, 3] },
  {},
];
const expressions = [
  lakeMapping,
  'event_id',
  'id',
  'data.*.amount_minor',
  'data.*.customer_id',
  '$substringAfter(type, "io.sluice.agent.")',
  '$substringBefore(type, ".agent")',
  '$decodeUrlComponent($substringAfter(source, "/channels/"))',
  '$uppercase(currency) & "-" & subject',
  'subject & ":" & schema_version',
  'type = "io.sluice.agent.deposit_made"',
  'type != "io.sluice.agent.customer_onboarded" and $exists(data.*.amount_minor)',
  'schema_version > 0 or n < 2',
  'n + 1',
  'n * m',
  'm / 0',
  '-n',
  's ? "yes" : "no"',
  't ? "yes"',
  'nested.deep.v',
  'list',
  'list[0]',
  '$length(subject)',
  '$contains(subject, "7")',
  '$string(n)',
  '$trim("  a  b ")',
  '( $x := subject; $y := $x & "!"; { "x": $x, "y": $y, "missing": nope } )',
  '{ "a": id, "b": $, "c": null, "d": true }',
  '$error("bad record")',
  '$join(["a", subject], ",")',
  '$',
];

async function outcome(f: () => unknown): Promise<{ value?: unknown; error?: string }> {
  try {
    return { value: await f() };
  } catch (error) {
    return { error: (error as { code?: string }).code ?? String(error) };
  }
}

describe('compiled JSONata', () => {
  it('agrees with jsonata on every expression and input of the corpus', async () => {
    let compared = 0;
    for (const text of expressions) {
      const reference = jsonata(text);
      const fast = compileExpression(text);
      for (const input of inputs) {
        const expected = await outcome(() => reference.evaluate(input));
        const actual = await outcome(() => fast.evaluate(input));
        // jsonata's results carry a `sequence` flag and null prototypes; compare the data.
        expect(JSON.parse(JSON.stringify(actual, big)), `${text} on ${JSON.stringify(input, big)}`).toEqual(JSON.parse(JSON.stringify(expected, big)));
        compared++;
      }
    }
    expect(compared).toBe(expressions.length * inputs.length);
  });

  it('compiles the shipped lake mapping and the dedupe key, so they skip the interpreter', () => {
    expect(compileExpression(lakeMapping).compiled).toBe(true);
    expect(compileExpression('event_id').compiled).toBe(true);
    expect(compileExpression('$join(["a", subject], ",")').compiled).toBe(false);
  });

  it('keeps longs beyond 2^53 exact through the mapping', () => {
    const row = compileExpression(lakeMapping).evaluate(deposit) as Record<string, unknown>;
    expect(row.amount_minor).toBe(2n ** 53n + 1n);
    expect(row.event_type).toBe('deposit_made');
    expect(row.source).toBe('agent app');
  });
});

function big(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}
