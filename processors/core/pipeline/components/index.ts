import type { ComponentSpec } from '../component.js';
import { dlqSection } from './dlq.js';
import { httpSection } from './http.js';
import { loggerSection } from './logger.js';
import { INPUT_COMPONENTS } from '../../../export/inputs/index.js';
import { PROCESSOR_COMPONENTS } from '../../../export/processors/index.js';
import { OUTPUT_COMPONENTS } from '../../../export/outputs/index.js';

/**
 * Every component, by kind: the catalogue lint, load and docs read. Inputs, processors and
 * outputs are declared with their constructors, one file each, and listed in
 * processors/export/{inputs,processors,outputs}/index.ts: this module reads their specs
 * from those lists (a new component is one file plus a line in its kind's list). The
 * top-level sections (dlq, http, logger) are declared here.
 */
export const INPUTS: readonly ComponentSpec[] = INPUT_COMPONENTS.map((c) => c.spec);
export const PROCESSORS: readonly ComponentSpec[] = PROCESSOR_COMPONENTS.map((c) => c.spec);
export const OUTPUTS: readonly ComponentSpec[] = OUTPUT_COMPONENTS.map((c) => c.spec);
export const SECTIONS = [dlqSection, httpSection, loggerSection] as const satisfies readonly ComponentSpec[];

export const ALL_COMPONENTS: readonly ComponentSpec[] = [...INPUTS, ...PROCESSORS, ...OUTPUTS, ...SECTIONS];

export { dlqSection, httpSection, loggerSection };
export type { DlqConfig } from './dlq.js';
export type { HttpConfig } from './http.js';
export type { LoggerConfig } from './logger.js';
export type { KafkaInputConfig } from '../../../export/inputs/kafka.js';
export type { DedupeConfig } from '../../../export/processors/dedupe.js';
export type { DropConfig } from '../../../export/processors/drop.js';
export type { FilterConfig } from '../../../export/processors/filter.js';
export type { LogConfig } from '../../../export/processors/log.js';
export type { MappingConfig } from '../../../export/processors/mapping.js';
export type { SelectConfig } from '../../../export/processors/select.js';
export type { S3Column, S3OutputConfig } from '../../../export/outputs/s3.js';
export type { SqlColumn, SqlOutputConfig } from '../../../export/outputs/sql.js';
