import type { Command } from 'commander';
import { coreSettings, type CoreSettings } from '../core/config/core-settings.js';
import { loadSettings } from '../core/config/settings.js';
import { describeStackEnv, loadStackEnv } from '../core/config/stack-env.js';

/**
 * Loads the local stack's env file into process.env (explicit variables win) and says which
 * file on stderr. Called before every command but `stack`, and again by the demo after
 * `stack up` (which may have rewritten it with other ports).
 */
export function useStackEnv(): void {
  const line = describeStackEnv(loadStackEnv());
  if (line) console.error(`sluice: ${line}`);
}

/** The core settings for a CLI command: env, then the --config / SLUICE_CONFIG_FILE file. */
export function cliSettings(command: Command): CoreSettings {
  const file = (command.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
  return loadSettings(coreSettings, file ? { file } : {});
}
