import type { InputComponent } from './input.js';
import { kafkaInput } from './kafka.js';

/**
 * Every input component (one file each): the list lint, load and docs read
 * (core/pipeline/components/index.ts takes the specs from here). A new input is one file
 * plus a line here.
 */
export const INPUT_COMPONENTS = [kafkaInput] as const satisfies readonly InputComponent[];
