import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import { refuseKeyInQuery, type ApiKeyCheck } from '../core/http/api-key.js';
import type { OutboundGuard } from '../core/http/outbound-guard.js';
import type { Logger } from '../core/log/logger.js';
import { within } from '../core/runtime/timeouts.js';
import type { ReportsMetrics } from './metrics.js';
import { parseReportRequest, shownRequest, type FieldError } from './request.js';
import type { ReportsSettings } from './settings.js';
import type { ReportStatus, StatusStore } from './status.js';

export interface ShimDeps {
  producer: Producer;
  s3: S3Client;
  store: StatusStore;
  apiKeys: ApiKeyCheck;
  /** The webhook policy: a request naming a host off the allow list is refused at once (400). */
  webhooks: OutboundGuard;
  settings: ReportsSettings;
  metrics: ReportsMetrics;
  logger: Logger;
  openApi: object;
}

export const ROUTES = { generate: '/reports/generate', status: '/reports/{request_id}', openApi: '/openapi.json' } as const;

/**
 * The REST shim in front of the report topics. POST /reports/generate validates, publishes
 * the request on `report-requests` and its `queued` state, and answers 202 at once with the
 * request id and a status URL (a known request id answers its current state: idempotent).
 * GET /reports/{id} answers the state from the status view and, on success, a fresh
 * presigned download link with its expiry.
 */
export async function registerShimRoutes(app: FastifyInstance, d: ShimDeps): Promise<void> {
  app.get(ROUTES.openApi, async () => d.openApi);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url === '/reports/generate' ? ROUTES.generate : request.routeOptions.url === '/reports/:request_id' ? ROUTES.status : undefined;
    if (route) d.metrics.api.observe({ route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  await app.register(async (api) => {
    refuseKeyInQuery(api, (message) => ({ error: 'bad_request', message }));
    api.addHook('onRequest', async (request, reply) => {
      if (!d.apiKeys.accepts(request.headers['x-api-key'])) return reply.code(401).send({ error: 'unauthorized', message: 'send the API key in the X-API-Key header' });
      // Until report-status is read to its end, a known request would look unknown.
      if (!d.store.ready) return reply.code(503).header('retry-after', '5').send({ error: 'unavailable', message: 'the shim is starting (reading report-status); retry' });
    });
    api.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
      if (error.statusCode && error.statusCode < 500) {
        return reply.code(error.statusCode).send({ error: error.statusCode === 415 ? 'unsupported_media_type' : 'bad_request', message: error.message });
      }
      d.logger.error({ err: error }, 'report shim request failed');
      return reply.code(503).header('retry-after', '2').send({ error: 'unavailable', message: 'the request could not be queued right now; retry' });
    });

    api.post(ROUTES.generate, async (request, reply) => {
      const parsed = parseReportRequest(request.body ?? null);
      if (!parsed.ok) return reply.code(400).send(validationFailed(parsed.errors));
      const req = { ...parsed.request, requested_via: 'rest' };
      if (req.notify?.webhook && !d.webhooks.hostAllowed(req.notify.webhook)) {
        return reply.code(400).send(
          validationFailed([{ field: 'notify.webhook', code: 'not_allowed', message: 'the webhook host is not on the allow list (SLUICE_REPORTS_WEBHOOK_ALLOWED_HOSTS)' }]),
        );
      }
      const known = d.store.get(req.request_id);
      if (known) return reply.code(202).send(accepted(known, statusUrl(d.settings, req.request_id)));
      // The request whole on the requests topic (the processor calls its webhook); the status shows it redacted.
      const queued: ReportStatus = { request_id: req.request_id, state: 'queued', at: new Date().toISOString(), request: shownRequest(req) };
      // The request and its queued state in one produce round trip, bounded: when Kafka
      // cannot take it in time the client hears 503 now, not a minute later.
      const sent = d.producer.sendBatch({
        acks: -1,
        timeout: Math.ceil(d.settings.publishTimeoutMs / 3), // the broker's wait for the replicas: one step of the budget
        topicMessages: [
          { topic: d.settings.requestsTopic, messages: [{ key: req.request_id, value: JSON.stringify(req) }] },
          { topic: d.settings.statusTopic, messages: [{ key: req.request_id, value: JSON.stringify(queued) }] },
        ],
      });
      // The send settles within the timeout (no retries, each step bounded: reports.ts); the
      // cap is a guard. Only a send that failed is answered 503, so no request is published
      // behind a 503 (a produce that timed out on the wire may still have been written, as
      // with any Kafka client: a retry with the same request_id is answered once).
      const outcome = await within(sent, d.settings.publishTimeoutMs + 2000);
      if (!outcome.settled || 'error' in outcome) {
        const late = !outcome.settled;
        if (late) sent.then(() => d.logger.warn({ requestId: req.request_id }, 'a report request answered 503 reached Kafka afterwards; a retry with its request_id is answered once'), () => undefined);
        d.logger.warn({ requestId: req.request_id, err: 'error' in outcome ? outcome.error : undefined, timeoutMs: d.settings.publishTimeoutMs }, 'Kafka did not take the report request: answered 503');
        return reply
          .code(503)
          .header('retry-after', '5')
          .send({ error: 'unavailable', message: `Kafka did not take the request within ${d.settings.publishTimeoutMs} ms; retry with the same request_id`, request_id: req.request_id });
      }
      d.store.apply(queued);
      return reply.code(202).send(accepted(queued, statusUrl(d.settings, req.request_id)));
    });

    api.get<{ Params: { request_id: string } }>('/reports/:request_id', async (request, reply) => {
      const status = d.store.get(request.params.request_id);
      if (!status) return reply.code(404).send({ error: 'not_found', message: `no report request ${request.params.request_id}` });
      const body: Record<string, unknown> = {
        request_id: status.request_id,
        state: status.state,
        updated_at: status.at,
        request: status.request,
        ...(status.error ? { error: status.error } : {}),
        ...(status.notifications ? { notifications: status.notifications } : {}),
      };
      if (status.state === 'succeeded' && status.result) {
        const expiresIn = d.settings.linkExpirySeconds;
        body.result = { rows: status.result.rows, bytes: status.result.bytes, format: status.result.format, rules_version: status.result.rules_version, generated_at: status.result.generated_at };
        body.download = {
          url: await getSignedUrl(d.s3, new GetObjectCommand({ Bucket: status.result.bucket, Key: status.result.key }), { expiresIn }),
          expires_at: new Date(Date.now() + expiresIn * 1000).toISOString(),
        };
      }
      return body;
    });
  });
}

function accepted(status: ReportStatus, url: string) {
  return { request_id: status.request_id, state: status.state, status_url: url };
}

function validationFailed(errors: FieldError[]) {
  return { error: 'validation_failed', message: `${errors.length} field${errors.length === 1 ? '' : 's'} invalid`, errors };
}

/**
 * From SLUICE_REPORTS_PUBLIC_URL, or relative to the shim's own origin: never from the
 * request's Host or X-Forwarded-* headers, which any client can forge (a status URL
 * pointing at a host of the attacker's choosing, handed on to whoever follows it).
 */
function statusUrl(s: ReportsSettings, id: string): string {
  const path = `/reports/${encodeURIComponent(id)}`;
  return s.publicUrl ? `${s.publicUrl.replace(/\/+$/, '')}${path}` : path;
}
