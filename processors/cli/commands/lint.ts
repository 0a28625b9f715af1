import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonataLanguage } from '../../core/pipeline/expressions.js';
import { lintPipelineFile } from '../../core/pipeline/lint.js';
import { formatProblem } from '../../core/pipeline/problems.js';

/** The shipped export pipelines (from dist/processors/cli/commands, as CONNECTORS_DIR is). */
export const EXPORTS_DIR = fileURLToPath(new URL('../../../../connectors/exports', import.meta.url));

export function exportPipelineFiles(dir: string = EXPORTS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => relative(process.cwd(), join(dir, f)) || join(dir, f));
}

export function lintCommand(): Command {
  return new Command('lint')
    .description('check export pipeline files against the component specs: prints `file:line:col path: message (fix)` per problem, exit 1 on any')
    .argument('[files...]', 'pipeline files (default: every connectors/exports/*.yaml)')
    .addHelpText('after', '\n${ENV} references are resolved from this environment; an unset variable without a default is a problem.\nReference of every component and field: sluice docs')
    .action((files: string[]) => {
      const targets = files.length > 0 ? files : exportPipelineFiles();
      const expressions = jsonataLanguage();
      if (!expressions) console.error('sluice lint: note: the jsonata package is not installed, so expressions were not compiled');
      let problems = 0;
      for (const file of targets) {
        const found = lintPipelineFile(file, { env: process.env, expressions: expressions ?? null });
        if (found.length === 0) console.log(`${file}: ok`);
        for (const p of found) console.log(formatProblem(p));
        problems += found.length;
      }
      if (problems > 0) {
        console.error(`sluice lint: ${problems} problem${problems === 1 ? '' : 's'}`);
        process.exitCode = 1;
      }
    });
}
