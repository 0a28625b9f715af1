import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestApiCommand } from '../../processors/cli/commands/ingest-api.js';
import { loadSettings } from '../../processors/core/config/settings.js';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { ApiKeyCheck } from '../../processors/core/http/api-key.js';
import { eventsOf, parseJsonBody } from '../../processors/ingest-api/body.js';
import { requestContext } from '../../processors/ingest-api/enrichment.js';
import { buildOpenApiDocument } from '../../processors/ingest-api/openapi.js';
import { ERROR_KINDS, FIELD_ERROR_CODES } from '../../processors/ingest-api/responses.js';
import { ingestApiSettings } from '../../processors/ingest-api/settings.js';
import { EVENT_FIELDS, validateEvent } from '../../processors/ingest-api/validation.js';
import { openApiSchemaCheck, type OpenApiSchemaCheck } from '../support/openapi-schemas.js';

const KEY = 'a-key-of-sixteen-chars';

describe('ingest API settings', () => {
  it('has the documented defaults once a key is set', () => {
    const s = loadSettings(ingestApiSettings, { env: { SLUICE_INGEST_API_KEY: KEY } }).ingestApi;
    expect(s).toEqual({ port: 8080, apiKey: [KEY], bodyLimit: 1048576, maxBatchEvents: 1000, baseCurrency: 'USD', dbPoolMax: 10 });
  });

  it('requires an API key, naming the env var and never echoing a secret', () => {
    expect(() => loadSettings(ingestApiSettings, { env: {} })).toThrow(ConfigError);
    expect(() => loadSettings(ingestApiSettings, { env: {} })).toThrow(/ingestApi.apiKey: is required.*SLUICE_INGEST_API_KEY/);
    let message = '';
    try {
      loadSettings(ingestApiSettings, { env: { SLUICE_INGEST_API_KEY: 'short-secret' } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/at least 16 characters/);
    expect(message).not.toContain('short-secret');
  });

  it('accepts several keys for a rotation and validates the rest', () => {
    expect(loadSettings(ingestApiSettings, { env: { SLUICE_INGEST_API_KEY: `${KEY}, ${KEY}-next` } }).ingestApi.apiKey).toEqual([KEY, `${KEY}-next`]);
    expect(() => loadSettings(ingestApiSettings, { env: { SLUICE_INGEST_API_KEY: KEY, SLUICE_INGEST_API_BASE_CURRENCY: 'usd' } })).toThrow(/SLUICE_INGEST_API_BASE_CURRENCY/);
    expect(() => loadSettings(ingestApiSettings, { env: { SLUICE_INGEST_API_KEY: KEY, SLUICE_INGEST_API_BODY_LIMIT: 'lots' } })).toThrow(/SLUICE_INGEST_API_BODY_LIMIT/);
  });
});

describe('API key check', () => {
  it('accepts exactly the configured keys', () => {
    const check = new ApiKeyCheck([KEY, 'another-key-0123456789']);
    expect(check.accepts(KEY)).toBe(true);
    expect(check.accepts('another-key-0123456789')).toBe(true);
    for (const wrong of [undefined, '', `${KEY} `, KEY.slice(0, -1), KEY.toUpperCase(), [KEY, KEY]]) expect(check.accepts(wrong)).toBe(false);
  });
});

describe('sluice ingest-api', () => {
  it('documents its options and settings in --help', () => {
    const cmd = ingestApiCommand();
    let help = '';
    cmd.configureOutput({ writeOut: (s) => void (help += s) });
    cmd.outputHelp();
    expect(help).toContain('run the ingest API');
    for (const text of ['--port', '--config', 'SLUICE_INGEST_API_PORT', 'SLUICE_INGEST_API_KEY', 'SLUICE_INGEST_API_BODY_LIMIT', 'SLUICE_INGEST_API_MAX_BATCH_EVENTS', 'SLUICE_INGEST_API_BASE_CURRENCY', 'SLUICE_INGEST_API_DB_POOL_MAX']) {
      expect(help).toContain(text);
    }
  });

  it('refuses a port that is no port', async () => {
    const program = new Command('sluice').exitOverride().option('-c, --config <file>');
    const cmd = ingestApiCommand().exitOverride().configureOutput({ writeErr: () => undefined });
    program.addCommand(cmd);
    await expect(program.parseAsync(['node', 'sluice', 'ingest-api', '--port', 'http'])).rejects.toThrow(/a port number/);
  });

  it('reads --config given to the command or to sluice', async () => {
    for (const argv of [
      ['ingest-api', '--config', '/nonexistent/ingest.yaml'],
      ['--config', '/nonexistent/ingest.yaml', 'ingest-api'],
    ]) {
      const program = new Command('sluice').exitOverride().option('-c, --config <file>');
      program.addCommand(ingestApiCommand().exitOverride());
      await expect(program.parseAsync(['node', 'sluice', ...argv])).rejects.toThrow(/file \/nonexistent\/ingest.yaml: \(file\): cannot read it/);
    }
  });
});

describe('OpenAPI document', () => {
  const doc = buildOpenApiDocument({ baseCurrency: 'EUR', maxBatchEvents: 50, bodyLimit: 2048 }) as {
    openapi: string;
    info: { title: string; version: string };
    paths: Record<string, Record<string, { responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }> }>>;
    components: { schemas: Record<string, { properties?: Record<string, { enum?: unknown[] }> }> };
  };

  it('is OpenAPI 3.1 with a described response for every operation', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\//);
      const operations = Object.entries(item).filter(([method]) => ['get', 'put', 'post', 'delete', 'patch'].includes(method));
      expect(operations.length).toBeGreaterThan(0);
      for (const [method, op] of operations) {
        expect(Object.keys(op.responses ?? {}).length, `${method} ${path}`).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(op.responses!)) {
          expect(status, `${method} ${path}`).toMatch(/^[1-5]\d\d$/);
          expect(response.description, `${method} ${path} ${status}`).toBeTruthy();
          expect(Object.keys(response.content ?? {}).length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        }
      }
    }
  });

  it('resolves every $ref', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) {
      const target = ref.replace(/^#\//, '').split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
      expect(target, ref).toBeTruthy();
    }
  });

  it('documents exactly the fields, codes and settings the API uses', () => {
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas.Event!.properties!).sort()).toEqual([...EVENT_FIELDS].sort());
    expect(schemas.Event!.properties!.currency!.enum).toEqual(['EUR']);
    expect(schemas.FieldError!.properties!.code!.enum).toEqual([...FIELD_ERROR_CODES]);
    expect(schemas.Error!.properties!.error!.enum).toEqual([...ERROR_KINDS]);
    expect(JSON.stringify(doc.paths['/events'])).toContain('"maxItems":50');
  });
});

describe('the documented request body and the validator', () => {
  const doc = buildOpenApiDocument({ baseCurrency: 'USD', maxBatchEvents: 3, bodyLimit: 1 << 20 });
  const RECEIVED = new Date('2026-11-01T12:00:00Z');
  const event = (fields: Record<string, unknown>) =>
    JSON.stringify({ event_id: '0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c', event_type: 'deposit_made', customer_id: 'c-1', amount_minor: 100, currency: 'USD', occurred_at: '2026-11-01T10:00:00Z', ...fields });

  let schemas: OpenApiSchemaCheck;
  beforeAll(async () => {
    schemas = await openApiSchemaCheck(doc);
  });
  afterAll(() => schemas.close());

  /** Whether the OpenAPI document, and the API's own validation, take this POST /events body. */
  async function verdicts(json: string): Promise<{ documented: boolean; api: boolean }> {
    const documented = (await schemas.checkRequest('POST', '/events', json)) === undefined;
    const body = eventsOf(parseJsonBody(json));
    const { context } = requestContext({}, RECEIVED);
    const api = !('problem' in body) && body.events.length <= 3 && body.events.every((e, i) => validateEvent(e, i, { baseCurrency: 'USD', receivedAtMicros: context.receivedAt.micros }).ok);
    return { documented, api };
  }

  it.each([
    ['a deposit', event({})],
    ['a batch', `[${event({})},${event({ event_type: 'customer_onboarded', amount_minor: undefined, currency: undefined })}]`],
    ['an amount as a string beyond 2^53', event({ amount_minor: '9223372036854775807' })],
    ['an upper-case event_id', event({ event_id: '0B4E7F1C-2D9A-4F7E-9C1A-3B5D7E9F1A2C' })],
    ['occurred_at without seconds, with an offset', event({ occurred_at: '2026-11-01T10:00+02:00' })],
    ['every optional field', event({ agent_id: 'a', source: 'web', session_id: 's', correlation_id: 'c', metadata: { product: 'p' } })],
  ])('both take %s', async (_what, json) => {
    expect(await verdicts(json)).toEqual({ documented: true, api: true });
  });

  it.each([
    ['an unknown field', event({ amount: 5 })],
    ['another currency', event({ currency: 'EUR' })],
    ['a fractional amount', event({ amount_minor: 1.5 })],
    ['a zero amount', event({ amount_minor: 0 })],
    ['an amount string with a sign', event({ amount_minor: '-5' })],
    ['an unsafe JSON number', event({}).replace('"amount_minor":100', '"amount_minor":9007199254740993')],
    ['an event_id that is no UUID', event({ event_id: 'evt-1' })],
    ['a URN event_id', event({ event_id: 'urn:uuid:0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c' })],
    ['no customer_id', event({ customer_id: undefined })],
    ['occurred_at without a zone', event({ occurred_at: '2026-11-01T10:00:00' })],
    ['an unknown channel', event({ source: 'fax' })],
    ['an empty batch', '[]'],
    ['too many events', `[${[1, 2, 3, 4].map(() => event({})).join(',')}]`],
  ])('both refuse %s', async (_what, json) => {
    expect(await verdicts(json)).toEqual({ documented: false, api: false });
  });
});
