import { dedupe } from './dedupe.js';
import { drop } from './drop.js';
import { filter } from './filter.js';
import { log } from './log.js';
import { mapping } from './mapping.js';
import type { ProcessorComponent } from './processor.js';
import { select } from './select.js';

/**
 * Every processor component (spec and constructor, one file each): the list lint, load and
 * docs read (core/pipeline/components/index.ts takes the specs from here, in this order) and
 * the export's processor chain (steps.ts) builds its steps from. A new processor is one file
 * plus a line here.
 */
export const PROCESSOR_COMPONENTS = [mapping, filter, dedupe, select, drop, log] as const satisfies readonly ProcessorComponent[];

/** The component of a processor type (`mapping`, `filter`...), as a pipeline's processor item names it. */
export function processorComponent(type: string): ProcessorComponent {
  const found = PROCESSOR_COMPONENTS.find((c) => c.spec.name === type);
  if (!found) throw new Error(`no processor component "${type}" (processors are: ${PROCESSOR_COMPONENTS.map((c) => c.spec.name).join(', ')})`);
  return found;
}
