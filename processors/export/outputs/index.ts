import type { OutputComponent } from './output.js';
import { fileOutput } from './file.js';
import { kafkaOutput } from './kafka.js';
import { s3Output } from './s3.js';
import { sqlComponent } from './sql.js';
import { stdoutOutput } from './stdout.js';
import { switchOutput } from './switch.js';

/**
 * Every output component (spec and constructor, one file each): the list lint, load and
 * docs read (core/pipeline/components/index.ts takes the specs from here) and the export
 * runner builds its output from. A new output is one file plus a line here.
 */
export const OUTPUT_COMPONENTS = [s3Output, sqlComponent, kafkaOutput, switchOutput, fileOutput, stdoutOutput] as const satisfies readonly OutputComponent[];

/** The component of an output type (`s3`, `sql`...), as the pipeline's `output` names it. */
export function outputComponent(type: string): OutputComponent {
  const found = OUTPUT_COMPONENTS.find((c) => c.spec.name === type);
  if (!found) throw new Error(`no output component "${type}" (outputs are: ${OUTPUT_COMPONENTS.map((c) => c.spec.name).join(', ')})`);
  return found;
}
