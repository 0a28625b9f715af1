import { ISO_WITH_ZONE } from './timestamp.js';
import { CHANNELS, EVENT_TYPES, INT64_MAX, MAX_ID_LENGTH, MONEY_TYPES, UUID } from './validation.js';
import { KEY_IN_QUERY_REFUSAL } from '../core/http/api-key.js';
import { ERROR_KINDS, FIELD_ERROR_CODES, MAX_LISTED_ERRORS } from './responses.js';

/**
 * The OpenAPI 3.1 description of the API, served at GET /openapi.json. Written here
 * rather than generated: the API validates with its own rules (lossless numbers,
 * field-level 422s), which route JSON schemas cannot express. The integration test
 * checks that every documented status is answered and no undocumented one is.
 */

export interface OpenApiOptions {
  baseCurrency: string;
  maxBatchEvents: number;
  bodyLimit: number;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, example?: unknown) => ({ 'application/json': { schema, ...(example === undefined ? {} : { example }) } });
const errorResponse = (description: string, example?: unknown) => ({ description, content: json(ref('Error'), example) });
const id = (description: string) => ({
  type: 'string',
  minLength: 1,
  maxLength: MAX_ID_LENGTH,
  description: `${description} No leading or trailing white space, no control characters.`,
});

export function buildOpenApiDocument(options: OpenApiOptions): Record<string, unknown> {
  const money = [...MONEY_TYPES];
  const exampleEvent = {
    event_id: '0b4e7f1c-2d9a-4f7e-9c1a-3b5d7e9f1a2c',
    event_type: 'deposit_made',
    customer_id: 'customer-42',
    amount_minor: '9007199254740993',
    currency: options.baseCurrency,
    occurred_at: '2026-11-01T10:00:00Z',
    metadata: { branch: 'north' },
  };
  const common = {
    401: errorResponse('No X-API-Key header, or not a configured key.', { error: 'unauthorized', message: 'send the API key in the X-API-Key header' }),
    503: {
      description: 'PostgreSQL is unavailable. Nothing to fix in the request: retry it later (retries are idempotent).',
      headers: { 'Retry-After': { description: 'seconds to wait', schema: { type: 'integer' } } },
      content: json(ref('Error')),
    },
  };
  const jsonBodyErrors = {
    413: errorResponse(`The body is larger than ${options.bodyLimit} bytes (or, for POST /events, holds more than ${options.maxBatchEvents} events).`),
    415: errorResponse('The body is not sent as Content-Type: application/json.'),
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice ingest API',
      version: '1',
      description: [
        'The validating front door of `staging.agent_events` (the CDC boundary of the agent-commissions use case).',
        'Events are validated, enriched (received_at from the server clock; source, session_id and correlation_id from headers when the event has none; agent_id from the customer\'s assigned agent when the event has none) and inserted idempotently by event_id.',
        '',
        'Checks, in order: route (404), a key in the query string (400), API key (401), media type (415), body size (413), JSON syntax and shape (400), number of events (413), content (422).',
        'A batch is all-or-nothing: one invalid event and the request answers 422 and stores nothing.',
        'Numbers are read exactly as written. `amount_minor` is a JSON integer up to 9007199254740991 or a decimal string up to "9223372036854775807".',
      ].join('\n'),
    },
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: KEY_IN_QUERY_REFUSAL } },
      schemas: {
        Event: {
          type: 'object',
          additionalProperties: false,
          required: ['event_id', 'event_type', 'customer_id', 'occurred_at'],
          description: `One agent event (docs/domain.md). Money types (${money.join(', ')}) also require amount_minor and currency; customer_onboarded must not carry them. Unknown fields are refused (put extra context in metadata); received_at is set by the server.`,
          properties: {
            event_id: {
              type: 'string',
              format: 'uuid',
              pattern: UUID.source,
              description: 'The client\'s idempotency key (either case; answered in lower case): posting the same event_id again stores nothing new and answers `duplicate`.',
            },
            event_type: { type: 'string', enum: [...EVENT_TYPES] },
            agent_id: { ...id('The agent credited. When absent, the customer\'s assigned agent (PUT /customers/{customer_id}); 422 unknown_customer when there is none.') },
            customer_id: id('Required for every event type.'),
            amount_minor: {
              description: `Money types only: integer minor units (cents), > 0. A JSON number up to ${Number.MAX_SAFE_INTEGER}; larger amounts as a decimal string up to "${INT64_MAX}". Fractions (1.00) and exponents (1e3) are refused.`,
              oneOf: [
                { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
                { type: 'string', pattern: '^[0-9]+$', maxLength: 19 },
              ],
            },
            currency: { type: 'string', enum: [options.baseCurrency], description: 'Money types only: the deployment\'s base currency.' },
            occurred_at: {
              type: 'string',
              pattern: ISO_WITH_ZONE.source,
              description: 'When it happened: ISO-8601 with a time zone (Z or ±hh:mm), seconds optional, stored to the microsecond. At most 24 h after the server receives it.',
            },
            source: { type: 'string', enum: [...CHANNELS], description: 'The channel; default: the X-Sluice-Channel header.' },
            session_id: id('Default: the X-Session-Id header.'),
            correlation_id: id('Default: the X-Correlation-Id header, else the trace id of a W3C traceparent header.'),
            metadata: { type: 'object', description: 'Free-form context, stored as jsonb. investment_made may name metadata.product (a non-empty string).' },
          },
          example: exampleEvent,
        },
        EventResult: {
          type: 'object',
          required: ['event_id', 'status', 'agent_id'],
          properties: {
            event_id: { type: 'string', format: 'uuid', description: 'Lower case.' },
            status: { type: 'string', enum: ['inserted', 'duplicate'], description: '`duplicate`: the event_id was already stored, or appeared earlier in the same batch; the stored row stands.' },
            agent_id: { type: 'string', description: 'The agent the stored row credits.' },
          },
        },
        IngestResponse: {
          type: 'object',
          required: ['results', 'inserted', 'duplicates', 'received_at'],
          properties: {
            results: { type: 'array', items: ref('EventResult'), description: 'One per event, in request order (a single event gives one).' },
            inserted: { type: 'integer', minimum: 0 },
            duplicates: { type: 'integer', minimum: 0 },
            received_at: { type: 'string', format: 'date-time', description: 'The server time stamped on the inserted rows.' },
          },
        },
        FieldError: {
          type: 'object',
          required: ['field', 'code', 'message'],
          properties: {
            index: { type: 'integer', minimum: 0, description: 'Position of the event in the batch (0 for a single event); absent when a header is at fault.' },
            field: { type: 'string', description: 'The event field, or the header (X-Sluice-Channel, X-Session-Id, X-Correlation-Id).' },
            code: { type: 'string', enum: [...FIELD_ERROR_CODES] },
            message: { type: 'string' },
          },
        },
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: { type: 'string', enum: [...ERROR_KINDS] },
            message: { type: 'string' },
            errors: { type: 'array', items: ref('FieldError'), maxItems: MAX_LISTED_ERRORS, description: `422 only: the problems (the first ${MAX_LISTED_ERRORS}).` },
            error_count: { type: 'integer', description: '422 only: how many problems in all.' },
          },
        },
        CustomerAssignment: {
          type: 'object',
          additionalProperties: false,
          required: ['agent_id'],
          properties: { agent_id: id('The agent the customer is assigned to.') },
        },
        Customer: {
          type: 'object',
          required: ['customer_id', 'agent_id', 'created_at', 'updated_at'],
          properties: {
            customer_id: { type: 'string' },
            agent_id: { type: 'string' },
            created_at: { type: 'string', format: 'date-time' },
            updated_at: { type: 'string', format: 'date-time', description: 'Last change of the assigned agent.' },
          },
        },
      },
    },
    paths: {
      '/events': {
        post: {
          operationId: 'ingestEvents',
          summary: 'Validate, enrich and store one event or a batch, idempotently by event_id',
          security: [{ apiKey: [] }],
          parameters: [
            { name: 'X-Sluice-Channel', in: 'header', required: false, schema: { type: 'string', enum: [...CHANNELS] }, description: 'Source channel of events without `source`.' },
            { name: 'X-Session-Id', in: 'header', required: false, schema: id('session'), description: 'session_id of events without one.' },
            { name: 'X-Correlation-Id', in: 'header', required: false, schema: id('correlation'), description: 'correlation_id of events without one.' },
            { name: 'traceparent', in: 'header', required: false, schema: { type: 'string' }, description: 'W3C trace context: its trace id is the correlation_id when neither the event nor X-Correlation-Id gives one.' },
          ],
          requestBody: {
            required: true,
            description: `One event as a JSON object, or a batch as a JSON array of 1 to ${options.maxBatchEvents} events.`,
            content: json({ oneOf: [ref('Event'), { type: 'array', minItems: 1, maxItems: options.maxBatchEvents, items: ref('Event') }] }, [exampleEvent]),
          },
          responses: {
            201: { description: 'Stored: at least one event was new.', content: json(ref('IngestResponse')) },
            200: { description: 'Every event was a duplicate: nothing new stored.', content: json(ref('IngestResponse')) },
            400: errorResponse(`Not JSON (malformed_json), or not an event object / a non-empty array of event objects (invalid_shape); or a key in the query string (bad_request): ${KEY_IN_QUERY_REFUSAL}`),
            ...common,
            413: jsonBodyErrors[413],
            415: jsonBodyErrors[415],
            422: errorResponse('Invalid content: the field-level problems of every event. Nothing was stored.', {
              error: 'validation_failed',
              message: '1 problem in the request; nothing was stored (a batch is all-or-nothing)',
              errors: [{ index: 0, field: 'amount_minor', code: 'invalid_amount', message: 'amount_minor 0 must be greater than 0' }],
              error_count: 1,
            }),
          },
        },
      },
      '/customers/{customer_id}': {
        parameters: [{ name: 'customer_id', in: 'path', required: true, schema: id('The customer.') }],
        put: {
          operationId: 'assignCustomer',
          summary: 'Assign a customer to an agent (creates or replaces the assignment)',
          description: 'Events that name no agent_id are credited to this agent from now on; events already stored keep theirs.',
          security: [{ apiKey: [] }],
          requestBody: { required: true, content: json(ref('CustomerAssignment'), { agent_id: 'agent-7' }) },
          responses: {
            201: { description: 'A new customer was assigned.', content: json(ref('Customer')) },
            200: { description: 'The assignment was replaced (or was already this agent).', content: json(ref('Customer')) },
            400: errorResponse(`Not JSON, or not a JSON object; or a key in the query string (bad_request): ${KEY_IN_QUERY_REFUSAL}`),
            ...common,
            413: jsonBodyErrors[413],
            415: jsonBodyErrors[415],
            422: errorResponse('No agent_id, an invalid id, or an unknown field.'),
          },
        },
        get: {
          operationId: 'getCustomer',
          summary: 'The agent a customer is assigned to',
          security: [{ apiKey: [] }],
          responses: {
            200: { description: 'The assignment.', content: json(ref('Customer')) },
            400: errorResponse(`A key in the query string (bad_request): ${KEY_IN_QUERY_REFUSAL}`),
            ...common,
            404: errorResponse('The customer has no assignment.'),
          },
        },
      },
      '/openapi.json': {
        get: { operationId: 'openApi', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } },
      },
      '/healthz': {
        get: { operationId: 'health', summary: 'Liveness', responses: { 200: { description: 'The process is alive.', content: json({ type: 'object' }) } } },
      },
      '/readyz': {
        get: {
          operationId: 'ready',
          summary: 'Readiness: PostgreSQL answers and the staging tables exist',
          responses: {
            200: { description: 'Ready.', content: json({ type: 'object' }) },
            503: { description: 'Not ready; `checks` says why.', content: json({ type: 'object' }) },
          },
        },
      },
      '/metrics': {
        get: { operationId: 'metrics', summary: 'Prometheus metrics', responses: { 200: { description: 'Text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } } } },
      },
    },
  };
}
