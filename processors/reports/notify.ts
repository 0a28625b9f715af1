import nodemailer, { type Transporter } from 'nodemailer';
import type { OutboundGuard } from '../core/http/outbound-guard.js';
import { redactWebhook, type NotifyTarget } from './request.js';
import type { NotificationOutcome } from './status.js';
import { postWebhook } from './webhook.js';

/**
 * Tells a request's target that its report is ready: the link, never the file. Email
 * through SMTP (nodemailer), and/or a Slack-compatible incoming webhook (`{"text": ...}`).
 * A failed notification does not fail the report: its outcome is recorded in the status.
 * Webhooks go only where the outbound guard allows (webhook.ts), and are shown by their
 * origin only: a webhook URL's path is its secret.
 */

export interface ReadyReport {
  requestId: string;
  reportType: string;
  month: string;
  format: string;
  rows: number;
  url: string;
  expiresAt: string;
}

export interface NotifierOptions {
  smtpUrl?: string | undefined;
  from: string;
  /** Which webhook targets may be called (allow-listed hosts, public addresses). */
  webhooks: OutboundGuard;
  /** Timeout of one webhook call. */
  webhookTimeoutMs?: number;
  /** The env var that configures the SMTP server, named when it is missing (default SLUICE_REPORTS_SMTP_URL). */
  smtpSetting?: string;
}

/** One message for every channel of a target. */
export interface Notification {
  subject: string;
  text: string;
  html?: string;
  /** The webhook's JSON body; `text` in it is what Slack shows. */
  webhookPayload: { text: string } & Record<string, unknown>;
}

export class Notifier {
  private readonly mail: Transporter | undefined;

  constructor(private readonly options: NotifierOptions) {
    this.mail = options.smtpUrl ? nodemailer.createTransport(options.smtpUrl) : undefined;
  }

  async notify(target: NotifyTarget | undefined, report: ReadyReport): Promise<NotificationOutcome[]> {
    const text = message(report);
    return this.send(target, {
      subject: `Sluice report ready: ${report.reportType} ${report.month}`,
      text,
      html: `<p>The ${escapeHtml(report.reportType)} report for ${escapeHtml(report.month)} is ready (${report.rows} rows, ${escapeHtml(report.format)}).</p><p><a href="${escapeHtml(report.url)}">Download it</a> before ${escapeHtml(report.expiresAt)}.</p><p>Request ${escapeHtml(report.requestId)}</p>`,
      webhookPayload: { text, request_id: report.requestId, month: report.month, url: report.url, expires_at: report.expiresAt },
    });
  }

  /**
   * Any notification (a ready report, a failed partner file): an email with the subject,
   * text and HTML, and a webhook POST of the payload (which carries `text` for Slack).
   */
  async send(target: NotifyTarget | undefined, note: Notification): Promise<NotificationOutcome[]> {
    const outcomes: NotificationOutcome[] = [];
    if (!target) return outcomes;
    if (target.email && target.email.length > 0) {
      const to = target.email.join(', ');
      if (!this.mail) {
        outcomes.push({ channel: 'email', target: to, ok: false, error: `no SMTP server configured: set ${this.options.smtpSetting ?? 'SLUICE_REPORTS_SMTP_URL'}` });
      } else {
        try {
          await this.mail.sendMail({ from: this.options.from, to, subject: note.subject, text: `${note.text}\n`, ...(note.html ? { html: note.html } : {}) });
          outcomes.push({ channel: 'email', target: to, ok: true });
        } catch (error) {
          outcomes.push({ channel: 'email', target: to, ok: false, error: (error as Error).message });
        }
      }
    }
    if (target.webhook) {
      const outcome = await postWebhook(this.options.webhooks, target.webhook, note.webhookPayload, this.options.webhookTimeoutMs ?? 10_000);
      outcomes.push({ channel: 'webhook', target: redactWebhook(target.webhook), ...outcome });
    }
    return outcomes;
  }

  close(): void {
    this.mail?.close();
  }
}

function message(r: ReadyReport): string {
  return `Report ${r.reportType} for ${r.month} is ready (${r.rows} rows, ${r.format}): ${r.url} (link valid until ${r.expiresAt}; request ${r.requestId})`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
