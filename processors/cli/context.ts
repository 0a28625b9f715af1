import type { Command } from 'commander';
import { coreSettings, type CoreSettings } from '../core/config/core-settings.js';
import { loadSettings } from '../core/config/settings.js';
import { createLogger, type Logger } from '../core/log/logger.js';
import { describeStackEnv, loadStackEnv } from '../core/config/stack-env.js';

/**
 * Loads the local stack's env file into process.env (explicit variables win) and says which
 * file on stderr. Called before every command but `stack`, and again by the demo after
 * `stack up` (which may have rewritten it with other ports).
 */
export function useStackEnv(): void {
  const line = describeStackEnv(loadStackEnv());
  // Said once a process: the demo's second read after `stack up` repeats it only when it changed.
  if (line && line !== lastStackEnvLine) console.error(`sluice: ${line}`);
  lastStackEnvLine = line ?? lastStackEnvLine;
}
let lastStackEnvLine: string | undefined;

/** The core settings for a CLI command: env, then the --config / SLUICE_CONFIG_FILE file. */
export function cliSettings(command: Command): CoreSettings {
  const file = (command.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
  return loadSettings(coreSettings, file ? { file } : {});
}

/**
 * The logger of a one-shot CLI command (and of the libraries it uses, kafkajs included):
 * JSON lines on stderr, so stdout holds only the command's answer; SLUICE_LOG_FILE sends
 * them to a file instead.
 */
export function cliLogger(settings: CoreSettings, name: string): Logger {
  return createLogger({ name, level: settings.log.level, ...(settings.log.file ? { file: settings.log.file } : { destination: process.stderr }) });
}
