import { Command, Option } from 'commander';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPipelineTests, type PipelineResult } from '../../export/pipeline-test/run.js';
import { isTestFile, pipelineOfTestFile } from '../../export/pipeline-test/spec.js';
import { junitReport, tapReport, textReport, totals } from '../../export/pipeline-test/report.js';
import { EXPORTS_DIR } from './lint.js';

/** The pipeline files a `sluice test` argument names: a pipeline, its _test.yaml, or a directory of them. */
export function pipelinesToTest(targets: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of targets) {
    if (existsSync(t) && statSync(t).isDirectory()) {
      for (const f of readdirSync(t).sort()) if (/\.ya?ml$/.test(f) && !isTestFile(f)) out.push(join(t, f));
    } else out.push(isTestFile(t) ? pipelineOfTestFile(t) : t);
  }
  return [...new Set(out)];
}

export function testCommand(): Command {
  return new Command('test')
    .description('run pipeline unit tests with no server: each test record goes through the real decode -> processors -> object key / DLQ path; one line per case, a diff on a mismatch, exit 1 on any failure')
    .argument('[targets...]', 'pipeline files, their <name>_test.yaml, or directories (default: connectors/exports)')
    .addOption(new Option('--format <format>', 'report format').choices(['text', 'tap', 'junit']).default('text'))
    .option('--output <file>', 'write the report to a file (the text summary still goes to stdout)')
    .addHelpText(
      'after',
      [
        '',
        'Tests live under `tests:` in the pipeline file or in <name>_test.yaml beside it:',
        '  tests:',
        '    - name: a deposit becomes one row',
        '      input:',
        '        avro: { schema: ../../schemas/agent-event/v1.avsc, value: {...} }   # or value: (JSON), raw:, raw_base64:, tombstone: true',
        '        key: agent-7          # optional: headers, topic, partition, offset, timestamp',
        '      expect:',
        '        contains: { event_type: deposit_made }   # or row: (equals), check: <JSONata predicate>, key: <object key>',
        '        # or dlq: <reason>, or dropped: true (or the label of the processor)',
        '  `inputs:` (a list, each with its own expect) runs several records through one partition (a dedupe remembers).',
        'Avro records are encoded with the schema file and decoded as the pipeline would (the schema is the newest of <topic>-value).',
        'Reference: docs/pipeline-testing.md',
      ].join('\n'),
    )
    .action(async (targets: string[], options: { format: 'text' | 'tap' | 'junit'; output?: string }) => {
      const files = pipelinesToTest(targets.length > 0 ? targets : [EXPORTS_DIR]);
      const results: PipelineResult[] = [];
      for (const file of files) {
        if (!existsSync(file)) results.push({ pipeline: file, errors: [`${file}: no such file`], cases: [] });
        else results.push(await runPipelineTests(file));
      }
      const report = options.format === 'tap' ? tapReport(results) : options.format === 'junit' ? junitReport(results) : textReport(results);
      if (options.output) {
        writeFileSync(options.output, `${report}\n`);
        if (options.format !== 'text') console.log(textReport(results));
      } else console.log(report);
      const t = totals(results);
      if (t.failed > 0 || t.errors > 0) process.exitCode = 1;
    });
}
