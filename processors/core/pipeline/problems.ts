import { ConfigError } from '../errors/errors.js';

/** One thing wrong with a pipeline file: where, which setting, what and how to fix it. */
export interface PipelineProblem {
  file: string;
  /** 1-based line of the offending value (or of its parent when the value is missing). */
  line: number;
  /** 1-based column. */
  column: number;
  /** Config path, e.g. `output.s3.batching.period` or `pipeline.processors[1].mapping`; empty for the whole file. */
  path: string;
  message: string;
  fix: string;
}

/** `file:line:col path: message (fix)`, the lint output and editor-clickable. */
export function formatProblem(p: PipelineProblem): string {
  return `${p.file}:${p.line}:${p.column} ${p.path || '(file)'}: ${p.message} (${p.fix})`;
}

/** Every problem of a pipeline file at once; a ConfigError, so the CLI exits 78 with the list. */
export class PipelineConfigError extends ConfigError {
  constructor(readonly pipelineProblems: readonly PipelineProblem[]) {
    super(
      pipelineProblems.map((p) => ({
        source: `file ${p.file}:${p.line}:${p.column}`,
        setting: p.path || '(file)',
        message: p.message,
        fix: p.fix,
      })),
    );
  }
}
