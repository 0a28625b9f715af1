import { randomUUID } from 'node:crypto';
import { originOnly } from '../core/http/url.js';

/**
 * A report request (docs/domain.md ("The report")), as it travels on `report-requests` (JSON, key =
 * request_id) and as the REST shim takes it. One validator for both doors, so a request
 * refused by the shim with a 400 is exactly one the processor would dead-letter.
 */

export const REPORT_TYPES = ['agent_commissions'] as const;
export const REPORT_FORMATS = ['csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface NotifyTarget {
  /** Addresses that get the link by email. */
  email?: string[];
  /** A Slack-compatible incoming webhook URL that gets `{ "text": ... }` with the link. */
  webhook?: string;
}

export interface ReportRequest {
  request_id: string;
  report_type: 'agent_commissions';
  month: string;
  agent_ids?: string[];
  format: ReportFormat;
  notify?: NotifyTarget;
  /** When the request was made (ISO 8601), set by whoever publishes it. */
  requested_at: string;
  /** `rest`, `topic` or `schedule`. */
  requested_via?: string;
}

export interface FieldError {
  field: string;
  code: string;
  message: string;
}

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;
const EMAIL = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;
const KNOWN = new Set(['request_id', 'report_type', 'month', 'agent_ids', 'format', 'notify', 'requested_at', 'requested_via']);

export type Parsed = { ok: true; request: ReportRequest } | { ok: false; errors: FieldError[] };

/** Validates a request body; a missing request_id is generated, a missing format is csv. */
export function parseReportRequest(body: unknown, now: Date = new Date()): Parsed {
  const errors: FieldError[] = [];
  const err = (field: string, code: string, message: string) => errors.push({ field, code, message });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, errors: [{ field: '(body)', code: 'not_an_object', message: 'the request must be a JSON object' }] };
  }
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) if (!KNOWN.has(key)) err(key, 'unknown_field', `unknown field; the fields are ${[...KNOWN].join(', ')}`);

  let requestId: string = randomUUID();
  if (b.request_id !== undefined) {
    if (typeof b.request_id !== 'string' || !REQUEST_ID.test(b.request_id)) err('request_id', 'invalid', 'must be 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit');
    else requestId = b.request_id;
  }
  if (b.report_type !== 'agent_commissions') err('report_type', b.report_type === undefined ? 'required' : 'unsupported', `must be one of ${REPORT_TYPES.join(', ')}`);
  let month = '';
  if (typeof b.month !== 'string' || !MONTH.test(b.month)) err('month', b.month === undefined ? 'required' : 'invalid', 'must be YYYY-MM, e.g. 2026-10');
  else month = b.month;
  let format: ReportFormat = 'csv';
  if (b.format !== undefined) {
    if (!REPORT_FORMATS.includes(b.format as ReportFormat)) err('format', 'unsupported', `must be one of ${REPORT_FORMATS.join(', ')}`);
    else format = b.format as ReportFormat;
  }
  let agentIds: string[] | undefined;
  if (b.agent_ids !== undefined) {
    if (!Array.isArray(b.agent_ids) || b.agent_ids.length === 0 || b.agent_ids.length > 10_000 || !b.agent_ids.every((a) => typeof a === 'string' && a.length > 0 && a.length <= 200)) {
      err('agent_ids', 'invalid', 'must be a non-empty list (at most 10,000) of agent ids');
    } else agentIds = [...new Set(b.agent_ids as string[])];
  }
  let notify: NotifyTarget | undefined;
  if (b.notify !== undefined) {
    const n = b.notify as Record<string, unknown> | null;
    if (n === null || typeof n !== 'object' || Array.isArray(n)) err('notify', 'invalid', 'must be an object with email and/or webhook');
    else {
      notify = {};
      for (const key of Object.keys(n)) if (key !== 'email' && key !== 'webhook') err(`notify.${key}`, 'unknown_field', 'notify has email and webhook');
      if (n.email !== undefined) {
        const list = typeof n.email === 'string' ? [n.email] : n.email;
        if (!Array.isArray(list) || list.length === 0 || list.length > 50 || !list.every((e) => typeof e === 'string' && EMAIL.test(e))) {
          err('notify.email', 'invalid', 'must be an email address or a list of (at most 50) addresses');
        } else notify.email = list as string[];
      }
      if (n.webhook !== undefined) {
        if (typeof n.webhook !== 'string' || !isHttpUrl(n.webhook)) err('notify.webhook', 'invalid', 'must be an http(s) URL');
        else notify.webhook = n.webhook;
      }
      if (n.email === undefined && n.webhook === undefined) err('notify', 'empty', 'name an email and/or a webhook, or leave notify out');
    }
  }
  let requestedAt = now.toISOString();
  if (b.requested_at !== undefined) {
    if (typeof b.requested_at !== 'string' || Number.isNaN(Date.parse(b.requested_at))) err('requested_at', 'invalid', 'must be an ISO 8601 timestamp');
    else requestedAt = b.requested_at;
  }
  if (b.requested_via !== undefined && typeof b.requested_via !== 'string') err('requested_via', 'invalid', 'must be text');
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    request: {
      request_id: requestId,
      report_type: 'agent_commissions',
      month,
      ...(agentIds ? { agent_ids: agentIds } : {}),
      format,
      ...(notify ? { notify } : {}),
      requested_at: requestedAt,
      ...(typeof b.requested_via === 'string' ? { requested_via: b.requested_via } : {}),
    },
  };
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Webhook URLs carry their secret in the path or query: statuses, answers, files and logs show only the origin. */
export const redactWebhook = originOnly;

/**
 * The request as it may be shown (on report-status, in GET /reports/{id}, in the JSON
 * report): the webhook by its origin only. Only the requests topic holds it whole, for
 * the processor that calls it.
 */
export function shownRequest(r: ReportRequest): ReportRequest {
  if (!r.notify?.webhook) return r;
  return { ...r, notify: { ...r.notify, webhook: redactWebhook(r.notify.webhook) } };
}

/** The predictable S3 key of a request's report. */
export function reportKey(prefix: string, r: Pick<ReportRequest, 'report_type' | 'month' | 'request_id' | 'format'>): string {
  return `${prefix}${r.report_type}/month=${r.month}/${r.request_id}.${r.format}`;
}

/** The month before `now`'s month (UTC), for scheduled reports. */
export function previousMonth(now: Date): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}
