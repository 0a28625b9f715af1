import { KEY_IN_QUERY_REFUSAL } from '../core/http/api-key.js';
import { REPORT_COLUMNS } from './render.js';
import { REPORT_FORMATS, REPORT_TYPES } from './request.js';

/** The REST shim's OpenAPI 3.1 document, served at /openapi.json. */
export function reportsOpenApi(linkExpirySeconds: number): object {
  const error = { type: 'object', required: ['error', 'message'], properties: { error: { type: 'string' }, message: { type: 'string' } } };
  const request = {
    type: 'object',
    additionalProperties: false,
    required: ['report_type', 'month'],
    properties: {
      request_id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', description: "the client's id, for idempotency: the same id is the same report; generated when absent" },
      report_type: { type: 'string', enum: [...REPORT_TYPES] },
      month: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$', examples: ['2026-10'], description: 'calendar month, UTC, of occurred_at' },
      agent_ids: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, maxItems: 10000, description: 'only these agents (default: every agent with an event in the month)' },
      format: { type: 'string', enum: [...REPORT_FORMATS], default: 'csv' },
      notify: {
        type: 'object',
        additionalProperties: false,
        description: 'who gets the download link (never the file) when the report is ready',
        properties: {
          email: { oneOf: [{ type: 'string', format: 'email' }, { type: 'array', items: { type: 'string', format: 'email' }, minItems: 1, maxItems: 50 }] },
          webhook: { type: 'string', format: 'uri', description: 'Slack-compatible incoming webhook; receives {"text": ...}' },
        },
      },
    },
  };
  const security = [{ apiKey: [] }];
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice reports',
      version: '1.0.0',
      description: `Commission reports (docs/domain.md): the columns are ${REPORT_COLUMNS.join(', ')}. Requests are queued on the report-requests topic and answered at once; state changes are published on report-status.`,
    },
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: KEY_IN_QUERY_REFUSAL } },
      schemas: {
        ReportRequest: request,
        Accepted: { type: 'object', required: ['request_id', 'state', 'status_url'], properties: { request_id: { type: 'string' }, state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed'] }, status_url: { type: 'string', format: 'uri-reference', description: 'SLUICE_REPORTS_PUBLIC_URL + /reports/{request_id}, or /reports/{request_id} (relative to this server) when it is unset' } } },
        ValidationFailed: {
          type: 'object',
          required: ['error', 'message', 'errors'],
          properties: {
            error: { const: 'validation_failed' },
            message: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', required: ['field', 'code', 'message'], properties: { field: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
        Status: {
          type: 'object',
          required: ['request_id', 'state', 'updated_at', 'request'],
          properties: {
            request_id: { type: 'string' },
            state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed'] },
            updated_at: { type: 'string', format: 'date-time' },
            request: { $ref: '#/components/schemas/ReportRequest' },
            error: { type: 'object', properties: { reason: { type: 'string' }, message: { type: 'string' } } },
            result: { type: 'object', properties: { rows: { type: 'integer' }, bytes: { type: 'integer' }, format: { type: 'string' }, rules_version: { type: 'string' }, generated_at: { type: 'string', format: 'date-time' } } },
            download: {
              type: 'object',
              description: `on success: a presigned GET link, valid ${linkExpirySeconds} s from this answer`,
              properties: { url: { type: 'string', format: 'uri' }, expires_at: { type: 'string', format: 'date-time' } },
            },
            notifications: { type: 'array', items: { type: 'object', properties: { channel: { type: 'string' }, target: { type: 'string' }, ok: { type: 'boolean' }, error: { type: 'string' } } } },
          },
        },
        Error: error,
      },
    },
    paths: {
      '/reports/generate': {
        post: {
          summary: 'Request a report; answered at once',
          security,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ReportRequest' } } } },
          responses: {
            '202': { description: 'queued (or, for a known request_id, its current state)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Accepted' } } } },
            '400': {
              description: `invalid request, with field errors (ValidationFailed); or a key in the query string (Error, \`bad_request\`): ${KEY_IN_QUERY_REFUSAL}`,
              content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/ValidationFailed' }, { $ref: '#/components/schemas/Error' }] } } },
            },
            '401': { description: 'missing or wrong X-API-Key', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
            '503': { description: 'Kafka unavailable; retry after the Retry-After seconds', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
          },
        },
      },
      '/reports/{request_id}': {
        get: {
          summary: "A request's state and, on success, a download link",
          security,
          parameters: [{ name: 'request_id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'the state', content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } } },
            '400': { description: `a key in the query string (\`bad_request\`): ${KEY_IN_QUERY_REFUSAL}`, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
            '401': { description: 'missing or wrong X-API-Key', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
            '404': { description: 'unknown request id', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
          },
        },
      },
    },
  };
}
