import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { stackCommand } from './commands/stack.js';
import { connectorsCommand } from './commands/connectors.js';
import { configCommand } from './commands/config.js';
import { demoCommand } from './commands/demo.js';
import { schemasCommand } from './commands/schemas.js';
import { normalizerCommand } from './commands/normalizer.js';
import { liveCommand, reconcileCommand } from './commands/live.js';
import { ingestApiCommand } from './commands/ingest-api.js';
import { lintCommand } from './commands/lint.js';
import { docsCommand } from './commands/docs.js';
import { runCommand } from './commands/run.js';
import { testCommand } from './commands/test.js';
import { createCommand } from './commands/create.js';
import { reportsCommand } from './commands/reports.js';
import { lagCommand } from './commands/lag.js';
import { dlqCommand } from './commands/dlq.js';
import { replayCommand } from './commands/replay.js';
import { lifecycleCommand } from './commands/lifecycle.js';
import { pruneCommand } from './commands/prune.js';
import { compactCommand } from './commands/compact.js';
import { topicsCommand } from './commands/topics.js';
import { filesCommand } from './commands/files.js';
import { ConfigError, SluiceError } from '../core/errors/errors.js';
import { useStackEnv } from './context.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Sluice: Kafka-native stream processing from CDC events to a Parquet lake and reports')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .option('-c, --config <file>', 'YAML config file (env vars win over it); also SLUICE_CONFIG_FILE')
    // Every command but `stack` (which writes the file) talks to the local stack that
    // `stack up` started when its .sluice/stack.env exists; explicit env vars win.
    .hook('preAction', (_program, action) => {
      let top = action;
      while (top.parent && top.parent !== program) top = top.parent;
      if (top.name() !== 'stack') useStackEnv();
    });
  program.addCommand(stackCommand());
  program.addCommand(connectorsCommand());
  program.addCommand(topicsCommand());
  program.addCommand(configCommand());
  program.addCommand(schemasCommand());
  program.addCommand(ingestApiCommand());
  program.addCommand(normalizerCommand());
  program.addCommand(liveCommand());
  program.addCommand(reconcileCommand());
  program.addCommand(lintCommand());
  program.addCommand(runCommand());
  program.addCommand(testCommand());
  program.addCommand(createCommand());
  program.addCommand(reportsCommand());
  program.addCommand(lagCommand());
  program.addCommand(dlqCommand());
  program.addCommand(replayCommand());
  program.addCommand(lifecycleCommand());
  program.addCommand(pruneCommand());
  program.addCommand(filesCommand());
  program.addCommand(compactCommand());
  program.addCommand(docsCommand());
  program.addCommand(demoCommand());
  return program;
}

export async function run(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    if (error instanceof ConfigError || error instanceof SluiceError) {
      console.error(`sluice: ${error.message}`);
      process.exit(error instanceof ConfigError ? 78 : 1);
    }
    console.error(error);
    process.exit(1);
  }
}
