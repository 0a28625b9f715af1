/**
 * Entry of `sluice live` as its own process: `node dist/processors/live/main.js`
 * (settings from the environment, or a YAML file in SLUICE_CONFIG_FILE).
 */
import { ConfigError, SluiceError } from '../core/errors/errors.js';
import { runLive } from './live.js';

try {
  await runLive(process.env.SLUICE_CONFIG_FILE ? { configFile: process.env.SLUICE_CONFIG_FILE } : {});
} catch (error) {
  if (error instanceof SluiceError) {
    console.error(`sluice live: ${error.message}`);
    process.exit(error instanceof ConfigError ? 78 : 1);
  }
  console.error(error);
  process.exit(1);
}
