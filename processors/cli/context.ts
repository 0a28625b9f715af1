import type { Command } from 'commander';
import { coreSettings, type CoreSettings } from '../core/config/core-settings.js';
import { loadSettings } from '../core/config/settings.js';

/** The core settings for a CLI command: env, then the --config / SLUICE_CONFIG_FILE file. */
export function cliSettings(command: Command): CoreSettings {
  const file = (command.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
  return loadSettings(coreSettings, file ? { file } : {});
}
