import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../core/log/logger.js';
import { refuseKeyInQuery, type ApiKeyCheck } from '../core/http/api-key.js';
import { withoutQuery } from '../core/http/url.js';
import { isJsonObject, MalformedJsonError, parseJsonBody } from './body.js';
import type { IngestService } from './ingest.js';
import type { IngestApiMetrics } from './metrics.js';
import type { IngestRepository } from './repository.js';
import { isTransientDbError } from './repository.js';
import { errorBody, validationFailed } from './responses.js';
import { validateAssignment } from './validation.js';

export interface RouteDependencies {
  service: IngestService;
  repository: IngestRepository;
  apiKeys: ApiKeyCheck;
  metrics: IngestApiMetrics;
  logger: Logger;
  bodyLimit: number;
  openApi: object;
  /** Aborted when the shutdown begins. */
  shuttingDown: AbortSignal;
}

/** Route templates as the OpenAPI document and the metrics name them. */
export const ROUTES = {
  events: '/events',
  customer: '/customers/{customer_id}',
  openApi: '/openapi.json',
} as const;

/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_SECONDS = 2;

/**
 * The API on the processor's HTTP port, beside /healthz, /readyz and /metrics:
 * POST /events, PUT and GET /customers/{customer_id} (behind X-API-Key), and the
 * OpenAPI document. Order of checks: route (404), key (401), media type (415), body
 * size (413), JSON syntax and shape (400), number of events (413), then the content (422).
 */
export async function registerIngestRoutes(app: FastifyInstance, deps: RouteDependencies): Promise<void> {
  const { metrics, logger } = deps;
  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody('not_found', `no route ${request.method} ${withoutQuery(request.url)}`)));
  app.addHook('onResponse', async (request, reply) => {
    const route = routeLabel(request);
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  // While shutting down, answer the requests in flight with Connection: close, so a
  // client's keep-alive connection does not hold the server open until its timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (deps.shuttingDown.aborted) reply.header('connection', 'close');
  });

  app.get(ROUTES.openApi, async () => deps.openApi);

  await app.register(async (api) => {
    // JSON only, parsed without losing digits; every other media type is a 415.
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, parseJsonBody(body as string));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
    refuseKeyInQuery(api, (message) => errorBody('bad_request', message));
    api.addHook('onRequest', async (request, reply) => {
      if (!deps.apiKeys.accepts(request.headers['x-api-key'])) {
        return reply.code(401).send(errorBody('unauthorized', 'send the API key in the X-API-Key header'));
      }
    });
    api.addHook('onResponse', async (request, reply) => {
      const line = { method: request.method, url: withoutQuery(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime), reqId: request.id };
      if (reply.statusCode >= 500) logger.error(line, 'request failed');
      else if (reply.statusCode >= 400) logger.info(line, 'request refused');
      else logger.debug(line, 'request');
    });
    api.setErrorHandler((error: FastifyError, request, reply) => replyWithError(error, request, reply, deps));

    api.post(ROUTES.events, { bodyLimit: deps.bodyLimit }, async (request, reply) => {
      const receivedAt = new Date();
      if (!isJson(request)) return unsupportedMediaType(reply);
      const outcome = await deps.service.ingest(request.body, request.headers, receivedAt);
      switch (outcome.kind) {
        case 'invalid_shape':
          return reply.code(400).send(errorBody('invalid_shape', outcome.message));
        case 'too_many_events':
          return reply.code(413).send(errorBody('payload_too_large', outcome.message));
        case 'invalid':
          return reply.code(422).send(validationFailed(outcome.errors));
        case 'stored':
          return reply.code(outcome.response.inserted > 0 ? 201 : 200).send(outcome.response);
      }
    });

    // A wildcard, not :customer_id: the router caps named parameters at 100 characters
    // (and answers 404 beyond), while customer ids may be up to MAX_ID_LENGTH.
    api.put('/customers/*', { bodyLimit: deps.bodyLimit }, async (request, reply) => {
      const customerId = customerIdOf(request);
      if (customerId === '') return reply.callNotFound();
      if (!isJson(request)) return unsupportedMediaType(reply);
      if (!isJsonObject(request.body)) return reply.code(400).send(errorBody('invalid_shape', 'the body must be a JSON object: {"agent_id": "..."}'));
      const checked = validateAssignment(customerId, request.body);
      if (!checked.ok) return reply.code(422).send(validationFailed(checked.errors));
      const { customer, created } = await deps.repository.assignCustomer(checked.customerId, checked.agentId);
      return reply.code(created ? 201 : 200).send(customer);
    });

    api.get('/customers/*', async (request, reply) => {
      const customerId = customerIdOf(request);
      const customer = customerId === '' ? undefined : await deps.repository.findCustomer(customerId);
      if (!customer) return reply.code(404).send(errorBody('not_found', `customer ${JSON.stringify(customerId)} has no assigned agent`));
      return customer;
    });
  });
}

function customerIdOf(request: FastifyRequest): string {
  return (request.params as { '*'?: string })['*'] ?? '';
}

function isJson(request: FastifyRequest): boolean {
  const type = request.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

function unsupportedMediaType(reply: FastifyReply): FastifyReply {
  return reply.code(415).send(errorBody('unsupported_media_type', 'send the body as JSON with Content-Type: application/json'));
}

function routeLabel(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  if (url === undefined) return 'unmatched';
  return url === '/customers/*' ? ROUTES.customer : url;
}

/** Fastify's own errors (body too large, media type, content length) and ours, in the API's error shape. */
function replyWithError(error: FastifyError, request: FastifyRequest, reply: FastifyReply, deps: RouteDependencies): FastifyReply {
  if (error instanceof MalformedJsonError) return reply.code(400).send(errorBody('malformed_json', error.message));
  const status = error.statusCode ?? 500;
  if (status === 413) return reply.code(413).send(errorBody('payload_too_large', `the body is larger than ${deps.bodyLimit} bytes; split the batch`));
  if (status === 415) return reply.code(415).send(errorBody('unsupported_media_type', 'send the body as JSON with Content-Type: application/json'));
  // Fastify's other client errors (a Content-Length that does not match the body...).
  if (status >= 400 && status < 500) return reply.code(400).send(errorBody('bad_request', error.message));
  if (isTransientDbError(error)) {
    deps.logger.warn({ err: error, reqId: request.id }, 'database unavailable');
    return reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_SECONDS))
      .send(errorBody('unavailable', 'the database is unavailable: retry the same request later (retries are idempotent)'));
  }
  deps.logger.error({ err: error, reqId: request.id }, 'request failed');
  return reply.code(500).send(errorBody('internal', 'internal error: retrying the same request is safe (retries are idempotent)'));
}
