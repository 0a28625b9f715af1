/**
 * Entry of the normalizer as its own process: `node dist/processors/normalizer/main.js`
 * (settings from the environment, or a YAML file in SLUICE_CONFIG_FILE). The same run as
 * `sluice normalizer`.
 */
import { ConfigError, SluiceError } from '../core/errors/errors.js';
import { runNormalizer } from './normalizer.js';

try {
  await runNormalizer(process.env.SLUICE_CONFIG_FILE ? { configFile: process.env.SLUICE_CONFIG_FILE } : {});
} catch (error) {
  if (error instanceof SluiceError) {
    console.error(`sluice normalizer: ${error.message}`);
    process.exit(error instanceof ConfigError ? 78 : 1);
  }
  console.error(error);
  process.exit(1);
}
