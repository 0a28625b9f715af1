import { describe, expect, it } from 'vitest';
import { KEY_IN_QUERY_REFUSAL, keyParameterIn } from '../../processors/core/http/api-key.js';
import { buildOpenApiDocument } from '../../processors/ingest-api/openapi.js';
import { ERROR_KINDS } from '../../processors/ingest-api/responses.js';
import { reportsOpenApi } from '../../processors/reports/openapi.js';

type Operation = { security?: unknown[]; responses: Record<string, { description: string }> };
type Doc = { info: { description?: string }; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, { in: string; description?: string }> } };

const documents: [string, Doc][] = [
  ['ingest API', buildOpenApiDocument({ baseCurrency: 'USD', maxBatchEvents: 50, bodyLimit: 2048 }) as Doc],
  ['reports shim', reportsOpenApi(900) as Doc],
];

/** The operations that take an API key (the ones refuseKeyInQuery guards). */
const securedOperations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method, op]) => ['get', 'put', 'post', 'delete', 'patch'].includes(method) && (op.security?.length ?? 0) > 0)
      .map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as const),
  );

describe('OpenAPI documents: an API key in the query string is refused with 400', () => {
  for (const [name, doc] of documents) {
    it(`${name}: every operation that takes a key documents the 400, and the key scheme says header only`, () => {
      const operations = securedOperations(doc);
      expect(operations.length).toBeGreaterThanOrEqual(2);
      for (const [label, op] of operations) {
        expect(op.responses['400']?.description ?? '', label).toContain(KEY_IN_QUERY_REFUSAL);
      }
      expect(doc.components.securitySchemes.apiKey).toMatchObject({ in: 'header', description: KEY_IN_QUERY_REFUSAL });
    });
  }

  it('names parameters the refusal really refuses, and the ingest API lists the refusal among its checks', () => {
    for (const name of ['api_key', 'apiKey', 'key', 'token', 'access_token']) {
      expect(KEY_IN_QUERY_REFUSAL).toContain(name);
      expect(keyParameterIn(`/reports/r-1?${name}=secret`)).toBe(name);
    }
    expect(ERROR_KINDS).toContain('bad_request');
    expect(documents[0]![1].info.description).toContain('a key in the query string (400)');
  });
});
