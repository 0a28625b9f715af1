import { z } from 'zod';
import { setting, type SettingsOf } from '../core/config/settings.js';
import { hostList, networkList, topicName } from '../core/config/values.js';
import { apiKeysSetting, MIN_API_KEY_LENGTH } from '../core/http/api-key.js';

const prefix = z.string().regex(/^([^/\s][^\s]*\/)?$/, 'a key prefix ending with "/" (or empty)');

/**
 * The report processor's own settings (env SLUICE_REPORTS_*), beside the core ones.
 * `sluice reports --help` prints them.
 */
export const reportsSettings = {
  reports: {
    role: setting(z.enum(['all', 'processor', 'shim']), {
      doc: 'what this instance runs: all (processor, REST shim and schedule), processor (requests in, reports out, schedule) or shim (the REST API only), to scale them apart',
      default: 'all',
    }),
    groupId: setting(z.string().min(1), { doc: 'consumer group of the requests topic', default: 'sluice-reports' }),
    requestsTopic: setting(topicName, { doc: 'topic of report requests (JSON, key = request_id)', default: 'report-requests' }),
    statusTopic: setting(topicName, { doc: 'topic of report state changes (JSON, key = request_id, compacted): queued, running, succeeded, failed', default: 'report-status' }),
    dlqTopic: setting(topicName, { doc: 'dead-letter topic of malformed requests', default: 'report-requests.dlq' }),
    lakePrefix: setting(prefix, { doc: 'key prefix of the Parquet lake (written by connectors/exports/lake.yaml)', default: 'lake/agent_events/' }),
    source: setting(z.enum(['lake', 'warehouse']), {
      doc: 'where a month is read from: lake (the Parquet lake on S3, connectors/exports/lake.yaml) or warehouse (the table connectors/exports/warehouse.yaml keeps, SLUICE_WAREHOUSE_URL); both give the same report, byte for byte',
      default: 'lake',
    }),
    warehouseUrl: setting(z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL').optional(), {
      doc: 'PostgreSQL URL of the warehouse (source warehouse); required then, no default',
      env: 'SLUICE_WAREHOUSE_URL',
      secret: true,
      example: 'postgres://reports:secret@warehouse.example.com:5432/warehouse?sslmode=require',
    }),
    warehouseTable: setting(z.string().regex(/^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$/, 'table or schema.table, lower-case'), {
      doc: 'the warehouse table of valid events (one row per event_id: connectors/exports/warehouse.yaml)',
      default: 'analytics.agent_events',
    }),
    reportsPrefix: setting(prefix, { doc: 'key prefix of report files: <prefix><report_type>/month=<YYYY-MM>/<request_id>.<format>', default: 'reports/' }),
    readerThreads: setting(z.coerce.number().int().min(1).max(64).optional(), { doc: 'threads that read a month of the lake side by side; default: one per core' }),
    baseCurrency: setting(z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code in capitals'), { doc: "the deployment's base currency, the report's currency column", default: 'USD', example: 'EUR' }),
    rulesFile: setting(z.string().optional(), { doc: 'commission rules YAML; default: connectors/reports/commission-rules.yaml (docs/domain.md defaults)' }),
    apiKey: setting(apiKeysSetting.optional(), {
      doc: `keys clients send in the X-API-Key header of the REST shim (at least ${MIN_API_KEY_LENGTH} characters); several comma-separated keys are all accepted, for a rotation; required unless role is processor`,
      secret: true,
      example: 'a-long-random-key-for-reports',
    }),
    linkExpirySeconds: setting(z.coerce.number().int().min(1).max(604_800), { doc: 'how long a download link (presigned GET) stays valid; S3 allows at most 7 days', default: 3600 }),
    publicUrl: setting(z.string().url().optional(), { doc: "the shim's base URL as clients see it (https://reports.example.com), for status URLs in 202 answers; unset: the status URL is relative (/reports/<id>), never built from the request's Host header" }),
    schedule: setting(z.string().optional(), {
      doc: 'cron schedule (UTC) that requests the previous month’s report, e.g. "0 6 1 * *" (06:00 on the 1st); unset: no scheduled reports',
      example: '0 6 1 * *',
    }),
    scheduleFormat: setting(z.enum(['csv', 'json']), { doc: 'format of scheduled reports', default: 'csv' }),
    scheduleNotifyEmail: setting(z.string().optional(), { doc: 'comma-separated addresses that get the scheduled reports’ links' }),
    scheduleNotifyWebhook: setting(z.string().url().optional(), { doc: 'Slack-compatible webhook that gets the scheduled reports’ links' }),
    smtpUrl: setting(z.string().regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL').optional(), {
      doc: 'SMTP server for email notifications, e.g. smtps://user:pass@mail.example.com:465; unset: email targets fail with a clear reason',
      secret: true,
    }),
    // Webhooks are requests to URLs that clients choose: none at all until hosts are listed.
    webhookAllowedHosts: setting(hostList, {
      doc: 'comma-separated host names report webhooks may call (`*.example.com` allows its subdomains), e.g. hooks.slack.com; unset or empty: no webhook is called (a request naming one gets 400 from the shim, a "refused" outcome from the topic)',
      default: '',
      example: 'hooks.slack.com,*.webhook.office.com',
    }),
    webhookAllowedNetworks: setting(networkList, {
      doc: 'comma-separated networks (CIDR) webhooks may reach although private, loopback or link-local (all refused otherwise, IPv4 and IPv6, IPv4-mapped included), e.g. 10.20.0.0/16 for an internal receiver',
      default: '',
      example: '10.20.0.0/16',
    }),
    webhookTimeoutMs: setting(z.coerce.number().int().min(100).max(120_000), { doc: 'how long one webhook call may take', default: 10_000 }),
    mailFrom: setting(z.string().min(3), { doc: 'sender address of notification emails', default: 'Sluice reports <reports@sluice.local>' }),
    publishTimeoutMs: setting(z.coerce.number().int().min(500).max(60_000), {
      doc: 'how long POST /reports/generate waits for Kafka to take the request; past it (or at once when Kafka refuses) it answers 503 with Retry-After, and the request is not sent again behind the answer (retry with the same request_id: idempotent)',
      default: 5000,
    }),
    httpPort: setting(z.coerce.number().int().min(0).max(65535), { doc: 'port of the REST shim, /healthz, /readyz and /metrics (0 picks a free one)', default: 9467 }),
  },
};

export type ReportsSettings = SettingsOf<typeof reportsSettings>['reports'];
