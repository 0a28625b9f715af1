import type { ComponentSpec } from '../../core/pipeline/component.js';

/**
 * An input component, declared in one file (processors/export/inputs/<name>.ts): its spec
 * (the config fields lint, load and docs read) beside what builds it, and one line in the
 * list of processors/export/inputs/index.ts. Today the one input, kafka, is consumed by the
 * export runner itself (a consumer group, runner.ts); the Input abstraction of issue 17
 * (stdin, generate) adds the constructor here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface InputComponent<Config = any> {
  readonly spec: ComponentSpec<unknown, Config>;
}
