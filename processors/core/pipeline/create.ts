import type { ComponentSpec } from './component.js';
import { dlqSection, INPUTS, OUTPUTS, PROCESSORS } from './components/index.js';
import { exampleInContext, processorItem } from './docs.js';
import { redpandaComponentHint } from './redpanda-names.js';
import { suggestion } from './suggest.js';

/**
 * `sluice create kafka,mapping,s3`: a starter pipeline made of the components' own
 * examples (the ones `sluice docs` shows and the tests lint), commented, in the order
 * Redpanda Connect's `create` takes them: the input first, the output last, processors
 * between. test/unit/pipeline-create.test.ts lints what it prints.
 */

export class CreateError extends Error {}

export function createPipeline(list: string): string {
  const names = list.split(',').map((n) => n.trim()).filter((n) => n !== '');
  if (names.length < 2) throw new CreateError('name at least an input and an output, e.g. sluice create kafka,mapping,s3');
  const input = pick('input', names[0]!, INPUTS);
  const output = pick('output', names[names.length - 1]!, OUTPUTS);
  const processors = names.slice(1, -1).map((n) => pick('processor', n, PROCESSORS));
  const lines = [
    `# A Sluice export pipeline: ${names.join(' -> ')}.`,
    '# Check it with `sluice lint FILE`, test it with no server with `sluice test FILE` (add cases',
    '# under tests:, docs/pipeline-testing.md), run it with `sluice run FILE`. Every component',
    '# and field: `sluice docs`. `${NAME:default}` reads the environment.',
    '',
    `# ${input.summary}`,
    exampleInContext(input),
    '',
  ];
  if (processors.length > 0) {
    lines.push('# Processors run in order on every record; a record that fails one goes to the DLQ.', 'pipeline:', '  processors:');
    for (const p of processors) lines.push(`    # ${p.summary}`, processorItem(p.example));
    lines.push('');
  }
  lines.push(`# ${output.summary}`, exampleInContext(output), '', `# ${dlqSection.summary}`, exampleInContext(dlqSection), '');
  lines.push('# Optional: http (health and metrics port) and logger (level, progress) sections, see `sluice docs`.', '');
  return lines.join('\n');
}

function pick(kind: 'input' | 'processor' | 'output', name: string, specs: readonly ComponentSpec[]): ComponentSpec {
  const spec = specs.find((s) => s.name === name);
  if (spec) return spec;
  const names = specs.map((s) => s.name);
  const where = kind === 'input' ? 'the first name is the input' : kind === 'output' ? 'the last name is the output' : 'names between are processors';
  throw new CreateError(`unknown ${kind} "${name}" (${where}): ${redpandaComponentHint(kind, name) ?? suggestion(name, names, `${kind}s are`)}`);
}
