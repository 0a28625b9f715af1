import { readFileSync } from 'node:fs';
import { jsonataLanguage, type ExpressionLanguage } from './expressions.js';
import { ParseContext } from './fields.js';
import type { Env } from './interpolation.js';
import { parsePipeline, type PipelineConfig } from './pipeline.js';
import { PipelineConfigError, type PipelineProblem } from './problems.js';
import { parseYamlSource } from './source.js';
import { applyOverrides, type Override } from './overrides.js';

export interface LintOptions {
  /** Values for `${ENV}` and env-var defaults; process.env when absent. */
  env?: Env;
  /**
   * How expressions are compiled at lint time: JSONata when installed (the default), a
   * stand-in, or null to skip the check.
   */
  expressions?: ExpressionLanguage | null;
  /** `--set path=value` changes applied to the file before it is checked (overrides.ts). */
  overrides?: readonly Override[];
}

export interface LintResult {
  problems: PipelineProblem[];
  /** The loaded config, when there are no problems. */
  config?: PipelineConfig;
}

/** Lints pipeline YAML text; `file` is only used to name it in problems. */
export function lintPipelineText(text: string, file: string, options: LintOptions = {}): LintResult {
  const expressions = options.expressions === null ? undefined : (options.expressions ?? jsonataLanguage());
  const ctx = new ParseContext(file, options.env ?? process.env, expressions);
  const source = parseYamlSource(text);
  for (const e of source.errors) ctx.report(e.pos, [], `YAML: ${e.message}`, 'correct the YAML syntax here');
  if (source.errors.length > 0) return { problems: sorted(ctx.problems) };
  const root = source.root;
  if (!root) {
    ctx.report({ line: 1, column: 1 }, [], 'the file is empty', 'write the input, pipeline, output and dlq sections (see sluice docs)');
    return { problems: sorted(ctx.problems) };
  }
  if (root.kind !== 'map') {
    ctx.report(root.pos, [], 'a pipeline file is a mapping of sections', 'write input:, pipeline:, output: and dlq: at the top level');
    return { problems: sorted(ctx.problems) };
  }
  if (options.overrides?.length) applyOverrides(root, options.overrides, ctx);
  const config = parsePipeline(root, ctx);
  return config && ctx.problems.length === 0 ? { problems: [], config } : { problems: sorted(ctx.problems) };
}

/** Every problem of a pipeline file, in file order; empty when it is valid. */
export function lintPipelineFile(file: string, options: LintOptions = {}): PipelineProblem[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return [{ file, line: 1, column: 1, path: '', message: `cannot read the file (${(error as Error).message})`, fix: 'check the path' }];
  }
  return lintPipelineText(text, file, options).problems;
}

/** The typed, defaulted config of a pipeline file; throws PipelineConfigError listing every problem. */
export function loadPipeline(file: string, env: Env = process.env, options: Omit<LintOptions, 'env'> = {}): PipelineConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new PipelineConfigError([{ file, line: 1, column: 1, path: '', message: `cannot read the file (${(error as Error).message})`, fix: 'check the path' }]);
  }
  const result = lintPipelineText(text, file, { ...options, env });
  if (!result.config) throw new PipelineConfigError(result.problems);
  return result.config;
}

function sorted(problems: PipelineProblem[]): PipelineProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
}
