/**
 * Entry of the ingest API as its own process: `node dist/processors/ingest-api/main.js`
 * (settings from the environment, or a YAML file in SLUICE_CONFIG_FILE). The same run as
 * `sluice ingest-api`; SIGTERM/SIGINT stop it gracefully.
 */
import { ConfigError, SluiceError } from '../core/errors/errors.js';
import { startIngestApi } from './ingest-api.js';

try {
  await startIngestApi({ handleSignals: true, ...(process.env.SLUICE_CONFIG_FILE ? { configFile: process.env.SLUICE_CONFIG_FILE } : {}) });
} catch (error) {
  if (error instanceof SluiceError) {
    console.error(`sluice ingest-api: ${error.message}`);
    process.exit(error instanceof ConfigError ? 78 : 1);
  }
  console.error(error);
  process.exit(1);
}
