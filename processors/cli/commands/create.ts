import { Command } from 'commander';
import { ALL_COMPONENTS } from '../../core/pipeline/components/index.js';
import { createPipeline, CreateError } from '../../core/pipeline/create.js';

export function createCommand(): Command {
  return new Command('create')
    .description('print a commented starter pipeline made of the named components: input,processor...,output (e.g. kafka,mapping,s3)')
    .argument('<components>', 'comma-separated: the input first, processors in order, the output last')
    .addHelpText('after', `\nExample: sluice create kafka,mapping,dedupe,s3 > connectors/exports/mine.yaml && sluice lint connectors/exports/mine.yaml\nComponents: ${ALL_COMPONENTS.filter((c) => c.kind !== 'section').map((c) => `${c.name} (${c.kind})`).join(', ')}`)
    .action((list: string) => {
      try {
        process.stdout.write(createPipeline(list));
      } catch (error) {
        if (!(error instanceof CreateError)) throw error;
        console.error(`sluice create: ${error.message}`);
        process.exitCode = 1;
      }
    });
}
