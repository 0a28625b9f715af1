import { Command } from 'commander';
import { ALL_COMPONENTS } from '../../core/pipeline/components/index.js';
import { renderComponentDocs } from '../../core/pipeline/docs.js';

export function docsCommand(): Command {
  return new Command('docs')
    .description('print the reference of export pipeline files (Markdown): layout, ${ENV} and path templates, every component and field with type, default and example')
    .option('--component <name>', `only this component: ${[...new Set(ALL_COMPONENTS.map((c) => c.name))].join(', ')} (input.kafka / output.kafka: one of the two kafka components)`)
    .action((opts: { component?: string }) => {
      process.stdout.write(renderComponentDocs(opts.component !== undefined ? { component: opts.component } : {}));
    });
}
