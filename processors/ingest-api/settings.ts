import { z } from 'zod';
import { setting, type SettingsOf } from '../core/config/settings.js';

import { apiKeysSetting as apiKeys, MIN_API_KEY_LENGTH } from '../core/http/api-key.js';

export { MIN_API_KEY_LENGTH };

/**
 * The ingest API's own settings (env SLUICE_INGEST_API_*), beside the core ones every
 * processor shares (database.url is the staging database). `sluice ingest-api --help`
 * prints them.
 */
export const ingestApiSettings = {
  ingestApi: {
    port: setting(z.coerce.number().int().min(0).max(65535), {
      doc: 'port of the API, which also serves /healthz, /readyz and /metrics (0 picks a free one)',
      default: 8080,
    }),
    // Required, no default: an API that writes the staging table must not start open
    // or with a key published in this repository.
    apiKey: setting(apiKeys, {
      env: 'SLUICE_INGEST_API_KEY',
      doc: `key clients send in the X-API-Key header (at least ${MIN_API_KEY_LENGTH} characters); several comma-separated keys are all accepted, for a rotation`,
      secret: true,
      example: '$(openssl rand -hex 24)',
    }),
    bodyLimit: setting(z.coerce.number().int().min(1024).max(64 * 1024 * 1024), {
      doc: 'largest request body in bytes; a larger one gets 413',
      default: 1024 * 1024,
    }),
    maxBatchEvents: setting(z.coerce.number().int().positive().max(100_000), {
      doc: 'most events in one POST /events batch; more get 413',
      default: 1000,
    }),
    baseCurrency: setting(z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code in capitals'), {
      doc: 'the deployment base currency every money event must carry (keep it equal to SLUICE_NORMALIZER_BASE_CURRENCY)',
      default: 'USD',
      example: 'EUR',
    }),
    dbPoolMax: setting(z.coerce.number().int().positive().max(1000), {
      doc: 'most PostgreSQL connections of this instance (one per request in flight)',
      default: 10,
    }),
  },
};

export type IngestApiSettings = SettingsOf<typeof ingestApiSettings>['ingestApi'];
