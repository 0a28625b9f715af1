import type { ComponentSpec } from '../component.js';
import { dedupeProcessor } from './dedupe.js';
import { dlqSection } from './dlq.js';
import { dropProcessor } from './drop.js';
import { filterProcessor } from './filter.js';
import { httpSection } from './http.js';
import { kafkaInput } from './kafka-input.js';
import { loggerSection } from './logger.js';
import { mappingProcessor } from './mapping.js';
import { OUTPUT_COMPONENTS } from '../../../export/outputs/index.js';
import { INPUT_COMPONENTS } from '../../../export/inputs/index.js';
import { s3OutputSpec } from '../../../export/outputs/s3.js';
import { selectProcessor } from './select.js';
import { logProcessor } from './log.js';
import { sqlOutput } from './sql-output.js';

/** Every component, by kind: the catalogue lint, load and docs read. A new component is one file plus a line here. */
/** The inputs' specs, from the input components' list (processors/export/inputs/index.ts: spec and constructor in one file each). */
export const INPUTS: readonly ComponentSpec[] = INPUT_COMPONENTS.map((c) => c.spec);
export const PROCESSORS = [mappingProcessor, filterProcessor, dedupeProcessor, selectProcessor, dropProcessor, logProcessor] as const satisfies readonly ComponentSpec[];
/** The outputs' specs, from the output components' list (processors/export/outputs/index.ts: spec and constructor in one file each). */
export const OUTPUTS: readonly ComponentSpec[] = OUTPUT_COMPONENTS.map((c) => c.spec);
export const SECTIONS = [dlqSection, httpSection, loggerSection] as const satisfies readonly ComponentSpec[];

export const ALL_COMPONENTS: readonly ComponentSpec[] = [...INPUTS, ...PROCESSORS, ...OUTPUTS, ...SECTIONS];

export { logProcessor, dedupeProcessor, dlqSection, dropProcessor, filterProcessor, httpSection, kafkaInput, loggerSection, mappingProcessor, s3OutputSpec, selectProcessor, sqlOutput };
export type { DedupeConfig } from './dedupe.js';
export type { DlqConfig } from './dlq.js';
export type { DropConfig } from './drop.js';
export type { FilterConfig } from './filter.js';
export type { HttpConfig } from './http.js';
export type { KafkaInputConfig } from './kafka-input.js';
export type { LoggerConfig } from './logger.js';
export type { MappingConfig } from './mapping.js';
export type { S3Column, S3OutputConfig } from '../../../export/outputs/s3.js';
export type { SelectConfig } from './select.js';
export type { LogConfig } from './log.js';
export type { SqlColumn, SqlOutputConfig } from './sql-output.js';
