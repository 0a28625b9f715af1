import type { InputComponent } from './input.js';
import { generateInput } from './generate.js';
import { httpServerInput } from './http-server.js';
import { kafkaInput } from './kafka.js';
import { stdinInput } from './stdin.js';

/**
 * Every input component (spec and constructor, one file each): the list lint, load and docs
 * read (core/pipeline/components/index.ts takes the specs from here) and the export runner
 * builds its input from. A new input is one file plus a line here.
 */
export const INPUT_COMPONENTS = [kafkaInput, stdinInput, generateInput, httpServerInput] as const satisfies readonly InputComponent[];

/** The component of an input type (`kafka`, `stdin`...), as the pipeline's `input` names it. */
export function inputComponent(type: string): InputComponent {
  const found = INPUT_COMPONENTS.find((c) => c.spec.name === type);
  if (!found) throw new Error(`no input component "${type}" (inputs are: ${INPUT_COMPONENTS.map((c) => c.spec.name).join(', ')})`);
  return found;
}
