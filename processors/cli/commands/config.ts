import { Command } from 'commander';
import { coreSettings } from '../../core/config/core-settings.js';
import { describeSettings } from '../../core/config/settings.js';
import { cliSettings } from '../context.js';

export function configCommand(): Command {
  const config = new Command('config').description('the settings every processor shares');
  config
    .command('docs')
    .description('print every setting with its env name, file path, default and meaning (Markdown)')
    .action(() => {
      console.log(describeSettings(coreSettings));
    });
  config
    .command('check')
    .description('load and validate the settings from env and --config; exit 78 naming each bad setting')
    .action((_opts, cmd: Command) => {
      const s = cliSettings(cmd);
      console.log(`configuration valid: kafka ${s.kafka.brokers.join(',')}, registry ${s.registry.url}, s3 ${s.s3.endpoint ?? 'AWS'}/${s.s3.bucket}`);
    });
  return config;
}
