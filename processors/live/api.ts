import type { FastifyInstance } from 'fastify';
import { refuseKeyInQuery, type ApiKeyCheck } from '../core/http/api-key.js';
import type { Logger } from '../core/log/logger.js';
import type { LiveMetrics } from './metrics.js';
import { MONTH_PATTERN } from './months.js';
import type { LiveTotals } from './output.js';
import type { LiveView } from './view.js';

export interface LiveApiDeps {
  view: LiveView;
  apiKeys: ApiKeyCheck;
  pageSize: number;
  metrics: LiveMetrics;
  logger: Logger;
}

export const LIVE_ROUTES = { agentMonth: '/live/agents/{agent_id}/months/{month}', month: '/live/months/{month}', stream: '/live/stream', openApi: '/openapi.json' } as const;

/** SSE keep-alive comment: proxies drop a silent connection. */
const KEEPALIVE_MS = 15_000;

/**
 * The /live API, served from the view of the compacted output topic (any instance
 * answers for any agent). Every route but /openapi.json needs the X-API-Key header.
 */
export async function registerLiveRoutes(app: FastifyInstance, d: LiveApiDeps): Promise<void> {
  app.get(LIVE_ROUTES.openApi, async () => liveOpenApi(d.pageSize));
  const streams = new Set<() => void>();
  // Graceful shutdown: open streams end first, or the server would wait for them.
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });
  app.addHook('onResponse', async (request, reply) => {
    const url = request.routeOptions.url;
    const route = url === '/live/agents/:agent_id/months/:month' ? LIVE_ROUTES.agentMonth : url === '/live/months/:month' ? LIVE_ROUTES.month : undefined;
    if (route) d.metrics.api.observe({ route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  await app.register(async (api) => {
    refuseKeyInQuery(api, (message) => ({ error: 'bad_request', message }));
    api.addHook('onRequest', async (request, reply) => {
      if (!d.apiKeys.accepts(request.headers['x-api-key'])) return reply.code(401).send({ error: 'unauthorized', message: 'send the API key in the X-API-Key header' });
      if (!d.view.ready) return reply.code(503).header('retry-after', '2').send({ error: 'unavailable', message: 'the live view is starting (reading agent-commissions.live); retry' });
    });

    api.get<{ Params: { agent_id: string; month: string } }>('/live/agents/:agent_id/months/:month', async (request, reply) => {
      const { agent_id: agentId, month } = request.params;
      if (!MONTH_PATTERN.test(month)) return reply.code(400).send({ error: 'bad_request', message: 'month must be YYYY-MM' });
      const t = d.view.get(agentId, month);
      if (!t) return reply.code(404).send({ error: 'not_found', message: `no event of agent ${JSON.stringify(agentId)} in ${month} has been counted` });
      return t;
    });

    api.get<{ Params: { month: string }; Querystring: { limit?: string; after?: string } }>('/live/months/:month', async (request, reply) => {
      const { month } = request.params;
      if (!MONTH_PATTERN.test(month)) return reply.code(400).send({ error: 'bad_request', message: 'month must be YYYY-MM' });
      const limit = request.query.limit === undefined ? d.pageSize : Number(request.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > d.pageSize) return reply.code(400).send({ error: 'bad_request', message: `limit must be an integer from 1 to ${d.pageSize}` });
      const { rows, next } = d.view.page(month, request.query.after, limit);
      return { month, rows, ...(next === undefined ? {} : { next_after: next }) };
    });

    api.get<{ Querystring: { agent_id?: string } }>('/live/stream', async (request, reply) => {
      const only = request.query.agent_id;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': live totals of agent-commissions.live\n\n');
      const onChange = (t: LiveTotals) => {
        if (only !== undefined && t.agent_id !== only) return;
        res.write(`event: totals\nid: ${t.agent_id}|${t.month}|${t.updated_at}\ndata: ${JSON.stringify(t)}\n\n`);
      };
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
      d.metrics.streams.inc();
      const end = () => {
        if (!streams.delete(end)) return;
        clearInterval(keepAlive);
        d.view.off('change', onChange);
        d.metrics.streams.dec();
        res.end();
      };
      streams.add(end);
      d.view.on('change', onChange);
      request.raw.on('close', end);
    });
  });
}

/** The /live API's OpenAPI 3.1 document, served at /openapi.json. */
export function liveOpenApi(pageSize: number): object {
  const money = { type: 'string', pattern: '^-?\\d+$', description: 'integer minor units as decimal text (exact: sums can exceed 2^63)' };
  const totals = {
    type: 'object',
    required: ['agent_id', 'month', 'events', 'customers_onboarded', 'deposits_minor', 'withdrawals_minor', 'investments_minor', 'net_inflow_minor', 'commission_minor', 'tier_reached', 'currency', 'rules_version', 'updated_at'],
    properties: {
      agent_id: { type: 'string' },
      month: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' },
      events: { type: 'integer', minimum: 1 },
      customers_onboarded: { type: 'integer', minimum: 0 },
      deposits_minor: money,
      withdrawals_minor: money,
      investments_minor: money,
      net_inflow_minor: money,
      commission_minor: money,
      tier_reached: { type: 'boolean' },
      currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      rules_version: { type: 'string' },
      updated_at: { type: 'integer', description: 'ms since the epoch: when the transaction that last changed it was built' },
    },
  };
  const error = { type: 'object', required: ['error', 'message'], properties: { error: { type: 'string' }, message: { type: 'string' } } };
  const monthParam = { name: 'month', in: 'path', required: true, schema: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' }, description: 'UTC month of occurred_at' };
  const errors = {
    '400': { description: 'bad parameter', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '401': { description: 'no or wrong X-API-Key', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '503': { description: 'the view is still reading the output topic; retry', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice live commissions',
      version: '1.0.0',
      description: 'Month-to-date totals per agent and UTC month, equal to the rows of the monthly commission report (docs/domain.md): served from the compacted topic agent-commissions.live.',
    },
    components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } }, schemas: { LiveTotals: totals, Error: error } },
    security: [{ apiKey: [] }],
    paths: {
      '/live/agents/{agent_id}/months/{month}': {
        get: {
          summary: "An agent's totals of a month",
          parameters: [{ name: 'agent_id', in: 'path', required: true, schema: { type: 'string' } }, monthParam],
          responses: { '200': { description: 'the totals', content: { 'application/json': { schema: { $ref: '#/components/schemas/LiveTotals' } } } }, '404': { description: 'no event of the agent counted in the month' }, ...errors },
        },
      },
      '/live/months/{month}': {
        get: {
          summary: 'Every agent of a month, in report order (agent_id by code point), a page at a time',
          parameters: [
            monthParam,
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: pageSize, default: pageSize } },
            { name: 'after', in: 'query', schema: { type: 'string' }, description: 'next_after of the previous page' },
          ],
          responses: {
            '200': {
              description: 'a page',
              content: { 'application/json': { schema: { type: 'object', required: ['month', 'rows'], properties: { month: { type: 'string' }, rows: { type: 'array', items: { $ref: '#/components/schemas/LiveTotals' } }, next_after: { type: 'string', description: 'absent on the last page' } } } } },
            },
            ...errors,
          },
        },
      },
      '/live/stream': {
        get: {
          summary: 'Server-Sent Events: every change of the totals (event `totals`, data = LiveTotals JSON)',
          parameters: [{ name: 'agent_id', in: 'query', schema: { type: 'string' }, description: "only this agent's changes" }],
          responses: { '200': { description: 'the stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, '401': errors['401'], '503': errors['503'] },
        },
      },
    },
  };
}
